"""``weatherinsight doctor``: database reachable, versions, disk space, pending dlt packages and
whether this checkout's loader state is the warehouse's (for every source's pipeline: DWD and
Open-Meteo), unsettled DWD loads, Open-Meteo locations whose last load failed and how much of the
provider's budget is used, dead runs, locks, leftover audit schemas and backups. Read only."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from importlib import metadata

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd import settings as dwd_settings
from weatherinsight.openmeteo import settings as openmeteo_settings
from weatherinsight.ops.backfill.ledger import Ledger

#: every source's dlt pipeline and the dataset it writes
PIPELINES = (
    (dwd_settings.PIPELINE_NAME, dwd_settings.DATASET_NAME),
    (openmeteo_settings.PIPELINE_NAME, openmeteo_settings.DATASET_NAME),
)


@dataclass
class Finding:
    check: str
    level: str  # ok | warn | error
    detail: str


def doctor(connection_factory, pipelines_dir: str | None = None) -> list[Finding]:
    """Database reachable, versions, disk space, pending dlt packages, stale runs, locks and schemas."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("weatherinsight", "dbt-core", "dbt-postgres", "dlt")
    )
    findings = [Finding("versions", "ok", f"Python {platform.python_version()}, {versions}")]
    try:
        connection = connection_factory()
        findings.extend(_database(connection))
    except db.DatabaseError as error:
        findings.append(Finding("database", "error", str(error)))
        return findings
    folder = db.pgdata_dir() if connection.embedded else db.project_root()
    usage = shutil.disk_usage(folder if folder.exists() else db.project_root())
    free_gib, total_gib = usage.free / 2**30, usage.total / 2**30
    findings.append(
        Finding("disk space", "warn" if free_gib < 2 else "ok", f"{free_gib:.1f} GiB free of {total_gib:.0f} GiB")
    )
    for source, dataset in PIPELINES:
        findings.extend(_pending_packages(connection, pipelines_dir, source, dataset))
    findings.extend(_unsettled(connection))
    findings.extend(_openmeteo(connection))
    findings.extend(_ledger(connection))
    return findings


def _unsettled(connection: db.ConnectionSettings) -> list[Finding]:
    """DWD loads whose dlt run completed but whose rows are not settled into raw yet."""
    from weatherinsight.dwd.settle import pending_loads

    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            pending = pending_loads(cursor)
    finally:
        conn.close()
    if not pending:
        return [Finding("settled loads", "ok", "every DWD load is settled into raw")]
    loads = sorted({load_id for load_id, _ in pending})
    return [
        Finding(
            "settled loads",
            "warn",
            f"{len(loads)} DWD load(s) not settled yet (from {loads[0]}): dbt does not see them; "
            "the next `weatherinsight load dwd` or `update` settles them",
        )
    ]


def _database(connection: db.ConnectionSettings) -> list[Finding]:
    """The server, its version and the database's size; advisory locks held and how long."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute("select version(), pg_size_pretty(pg_database_size(current_database()))")
            version, size = cursor.fetchone()
            cursor.execute(
                "select count(*), coalesce(max(extract(epoch from now() - a.state_change)), 0) from pg_locks as l"
                " join pg_stat_activity as a on a.pid = l.pid where l.locktype = 'advisory' and l.granted"
                " and a.pid <> pg_backend_pid()"
            )
            held, oldest = cursor.fetchone()
    finally:
        conn.close()
    return [
        Finding("database", "ok", f"{connection.describe()}: {version.split(',')[0]}, {size}"),
        Finding(
            "advisory locks",
            "warn" if held and oldest > 3600 else "ok",
            f"{held} held" + (f", oldest session idle {oldest / 60:.0f} min" if held else ""),
        ),
    ]


def _ledger(connection: db.ConnectionSettings) -> list[Finding]:
    """Runs marked running whose process is gone, audit schemas left over, restore backups."""
    with Ledger(connection) as ledger:
        if not ledger.exists():
            return [Finding("ledger", "ok", "no backfill has run yet")]
        dead = ledger.dead_runs()
        running = ledger.running_run_ids()
        leftover = [s for s in ledger.audit_schemas() if int(s.split("_")[1][1:]) not in running - set(dead)]
        backups, backup_bytes = ledger.backup_tables()
    return [
        Finding(
            "stale runs",
            "warn" if dead else "ok",
            f"runs {', '.join(map(str, dead))} are marked running but their process is gone "
            "(the next backfill command marks them failed)"
            if dead
            else "no run marked running without a live process",
        ),
        Finding(
            "audit schemas",
            "warn" if leftover else "ok",
            f"left over: {', '.join(leftover)}" if leftover else "none left over",
        ),
        Finding("restore backups", "ok", f"{backups} tables, {backup_bytes / 2**20:.1f} MiB"),
    ]


def _openmeteo(connection: db.ConnectionSettings) -> list[Finding]:
    """Locations whose latest Open-Meteo load failed, and how much of the provider's budget the
    recorded attempts used (warn above 80 % of a window: the next load waits)."""
    from weatherinsight.openmeteo.plan import failed_locations
    from weatherinsight.openmeteo.service import budget_used

    findings = []
    failed = sorted(failed_locations(connection))
    if failed:
        listed = ", ".join(f"{api} {location}" for api, location in failed[:5])
        findings.append(
            Finding(
                "Open-Meteo locations",
                "warn",
                f"{len(failed)} failed in their last load ({listed}): weatherinsight load openmeteo --reset-failed …",
            )
        )
    else:
        findings.append(Finding("Open-Meteo locations", "ok", "no location failed in its last load"))
    budget = budget_used(connection)
    full = [window for window, limit in budget.limits.items() if budget.used[window] > 0.8 * limit]
    findings.append(Finding("Open-Meteo budget", "warn" if full else "ok", budget.describe()))
    return findings


def _pending_packages(
    connection: db.ConnectionSettings, pipelines_dir: str | None, source: str, dataset: str
) -> list[Finding]:
    """Pending dlt packages of ``source``'s pipeline, and whether this checkout's copy of its state
    is the warehouse's."""
    import dlt

    from weatherinsight.pipelines import pipeline_name

    name = pipeline_name(connection, source)
    folder = pipelines_dir or str(db.pipelines_dir())
    remote = _warehouse_state(connection, name, dataset)
    try:
        pipeline = dlt.attach(pipeline_name=name, pipelines_dir=folder)
    except Exception:  # noqa: BLE001 - dlt raises several kinds when no local state exists
        nothing = f"no local state for pipeline {name} in {folder} (nothing pending)"
        taken = f"no local copy; the next load takes the warehouse's ({remote or 'none'})"
        return [
            Finding(f"dlt packages ({source})", "ok", nothing),
            Finding(f"loader state ({source})", "ok", taken),
        ]
    findings = []
    extracted = pipeline.list_extracted_load_packages()
    normalized = pipeline.list_normalized_load_packages()
    if extracted or normalized:
        findings.append(
            Finding(
                f"dlt packages ({source})",
                "warn",
                f"pipeline {name}: {len(extracted)} extracted and {len(normalized)} normalized packages not loaded "
                "(the next load finishes them)",
            )
        )
    else:
        findings.append(Finding(f"dlt packages ({source})", "ok", f"pipeline {name}: nothing pending"))
    local = f"version {pipeline.state['_state_version']} ({pipeline.state.get('_version_hash', '?')[:12]})"
    if remote is not None and remote != local:
        findings.append(
            Finding(
                f"loader state ({source})",
                "warn",
                f"local copy in {folder} is {local}, the warehouse holds {remote}: "
                "the next load replaces the local copy with the warehouse's",
            )
        )
    else:
        findings.append(Finding(f"loader state ({source})", "ok", f"local copy is the warehouse's: {local}"))
    return findings


def _warehouse_state(connection: db.ConnectionSettings, name: str, dataset: str) -> str | None:
    """The newest loader state the warehouse holds for pipeline ``name`` (in ``dataset``), described
    like the local one."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            if not db.relation_exists(cursor, dataset, "_dlt_pipeline_state"):
                return None
            cursor.execute(
                sql.SQL(
                    "select version, version_hash from {} where pipeline_name = %s order by version desc limit 1"
                ).format(sql.Identifier(dataset, "_dlt_pipeline_state")),
                (name,),
            )
            row = cursor.fetchone()
    finally:
        conn.close()
    return f"version {row[0]} ({(row[1] or '?')[:12]})" if row else None
