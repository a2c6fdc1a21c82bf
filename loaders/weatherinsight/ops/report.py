"""Read-only reports over the warehouse and the ledger: the coverage matrix (``status``), the
validation report (``validate``) and the health check (``doctor``). None of them builds anything."""

from __future__ import annotations

import html
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.settings import DATASET_NAME
from weatherinsight.ops.backfill import catalogue
from weatherinsight.ops.ledger import Ledger
from weatherinsight.ops.windows import MARTS_SCHEMA, Window, diagnose, relation_exists, split, window_facts

STATES = ("complete", "partial", "stale", "missing", "failed", "empty", "none")
GLYPHS = {
    "complete": "█",
    "partial": "▒",
    "stale": "s",
    "missing": "·",
    "failed": "x",
    "empty": "○",
    "none": " ",
}
COLOURS = {
    "complete": "#2e7d32",
    "partial": "#f9a825",
    "stale": "#1565c0",
    "missing": "#c62828",
    "failed": "#6a1b9a",
    "empty": "#9e9e9e",
    "none": "#eeeeee",
}


@dataclass
class Cell:
    """One (product, quarter[, station]) of the coverage matrix."""

    product: str
    quarter: Window
    station: int | None
    state: str
    raw_hours: int
    built_hours: int
    #: why the cell has its state (which layer lacks or has not processed what)
    detail: str = ""

    @property
    def coverage(self) -> float | None:
        """Published share of the raw station-hours."""
        return self.built_hours / self.raw_hours if self.raw_hours else None


@dataclass
class Coverage:
    start: date
    end: date
    products: list[str]
    cells: list[Cell] = field(default_factory=list)

    def counts(self, product: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for cell in self.cells:
            if cell.product == product:
                counts[cell.state] += 1
        return counts

    def problems(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.state in ("missing", "partial", "stale", "failed")]


def data_range(connection: db.Connection, products: Sequence[str]) -> tuple[date, date] | None:
    """First and last day with raw or published data for ``products``."""
    conn = db.connect(connection)
    bounds = []
    try:
        with conn.cursor() as cursor:
            for product in products:
                for schema, table in ((DATASET_NAME, product), (MARTS_SCHEMA, f"fct_hourly_{product}")):
                    if relation_exists(cursor, schema, table):
                        cursor.execute(
                            sql.SQL("select min(observed_at), max(observed_at) from {}").format(
                                sql.Identifier(schema, table)
                            )
                        )
                        low, high = cursor.fetchone()
                        if low is not None:
                            bounds.append((low, high))
    finally:
        conn.close()
    if not bounds:
        return None
    low = min(b[0] for b in bounds)
    high = max(b[1] for b in bounds)
    return low.date(), high.date()


def _spans(cursor, product: str, by_station: bool) -> dict[int | None, tuple]:
    """First and last observation per station (or overall), over raw and published rows: the span in
    which a quarter without rows counts as missing rather than as no data expected."""
    key = sql.SQL("station_id") if by_station else sql.SQL("null::integer")
    parts = []
    for schema, table in ((DATASET_NAME, product), (MARTS_SCHEMA, f"fct_hourly_{product}")):
        if relation_exists(cursor, schema, table):
            parts.append(
                sql.SQL("select {key} as k, min(observed_at) as lo, max(observed_at) as hi from {t} group by 1").format(
                    key=key, t=sql.Identifier(schema, table)
                )
            )
    if not parts:
        return {}
    cursor.execute(
        sql.SQL("select k, min(lo), max(hi) from ({}) as spans group by k").format(sql.SQL(" union all ").join(parts))
    )
    return {k: (lo.date(), hi.date()) for k, lo, hi in cursor.fetchall()}


def coverage(
    connection: db.Connection,
    products: Sequence[str],
    start: date,
    end: date,
    stations: Sequence[int] | None = None,
    by_station: bool = False,
) -> Coverage:
    """The product × quarter (× station) matrix of window states, every published layer compared."""
    quarters = [quarter.widened("quarter") for quarter in split(start, end, "quarter")]
    result = Coverage(quarters[0].start, quarters[-1].end, list(products))
    models = catalogue(connection)
    with Ledger(connection) as ledger:
        attempts = ledger.latest_attempts(products)
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in products:
                spans = _spans(cursor, product, by_station)
                keys: list[int | None] = sorted(k for k in spans if k is not None) if by_station else [None]
                if by_station and stations:
                    keys = [k for k in keys if k in stations]
                hourly, *downstream = models.selection([product])
                for key in keys:
                    scope = [key] if key is not None else stations
                    facts = window_facts(cursor, product, hourly.name, quarters, scope, downstream)
                    span = spans.get(key)
                    for quarter, fact in zip(quarters, facts, strict=True):
                        overlapping = [
                            attempt
                            for (name, low, high, _), attempt in attempts.items()
                            if name == product and Window(low, high).overlaps(quarter) and not attempt.interrupted
                        ]
                        latest = None
                        if any(attempt.status == "failed" for attempt in overlapping):
                            latest = "failed"
                        elif any(attempt.status == "succeeded" for attempt in overlapping):
                            latest = "succeeded"
                        state, why = diagnose(fact, latest, False)
                        expected = span is not None and span[0] < quarter.end and quarter.start <= span[1]
                        if state == "missing" and not expected:
                            state = "none"
                        result.cells.append(Cell(product, quarter, key, state, fact.raw_hours, fact.built_hours, why))
    finally:
        conn.close()
    return result


def quarter_label(quarter: Window) -> str:
    return f"{quarter.start.year}-Q{(quarter.start.month - 1) // 3 + 1}"


def coverage_html(result: Coverage) -> str:
    """A self-contained HTML page: one row of coloured quarter cells per product (and station)."""
    rows: dict[tuple[str, int | None], list[Cell]] = {}
    for cell in result.cells:
        rows.setdefault((cell.product, cell.station), []).append(cell)
    quarters = sorted({cell.quarter for cell in result.cells})
    years = sorted({quarter.start.year for quarter in quarters})
    header = "".join(f'<th colspan="{sum(1 for q in quarters if q.start.year == year)}">{year}</th>' for year in years)
    body = []
    for (product, station), cells in rows.items():
        name = html.escape(product + (f" / station {station}" if station is not None else ""))
        tds = []
        for cell in cells:
            coverage_text = f", coverage {cell.coverage:.1%}" if cell.coverage is not None else ""
            title = (
                f"{product} {quarter_label(cell.quarter)}: {cell.state} ({cell.detail}); raw station-hours "
                f"{cell.raw_hours:,}, published {cell.built_hours:,}{coverage_text}"
            )
            tds.append(f'<td class="{cell.state}" title="{html.escape(title)}"></td>')
        body.append(f"<tr><th class='name'>{name}</th>{''.join(tds)}</tr>")
    legend = "".join(f'<span><i class="{state}"></i>{state}</span>' for state in STATES)
    styles = "".join(f".{state}{{background:{colour}}}" for state, colour in COLOURS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WeatherInsight coverage</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:separate;border-spacing:2px}}
td{{width:10px;height:18px;padding:0}}
th{{font-weight:normal;font-size:11px;color:#555;text-align:left}}
th.name{{padding-right:1em;white-space:nowrap}}
.legend span{{margin-right:1.2em}} .legend i{{display:inline-block;width:12px;height:12px;margin-right:4px}}
{styles}
</style></head><body>
<h1>Coverage by product and quarter</h1>
<p>{result.start} to {result.end} (UTC). Each cell is one quarter; hover for row counts.
States compare raw DWD deliveries with the published hourly facts and the backfill ledger.</p>
<p class="legend">{legend}</p>
<table><tr><th></th>{header}</tr>
{"".join(body)}
</table></body></html>
"""


# ---- validate -----------------------------------------------------------------------------------


@dataclass
class ProductCheck:
    product: str
    published_rows: int = 0
    raw_hours: int = 0
    expected_hours: int = 0
    duplicate_keys: int = 0
    unknown_stations: int = 0
    failed_tests: list[str] = field(default_factory=list)

    @property
    def completeness(self) -> float | None:
        return self.published_rows / self.expected_hours if self.expected_hours else None


@dataclass
class Validation:
    coverage: Coverage
    checks: list[ProductCheck]

    @property
    def errors(self) -> list[str]:
        errors = [
            f"{cell.product} {quarter_label(cell.quarter)}"
            + (f" station {cell.station}" if cell.station is not None else "")
            + f": {cell.state}"
            + (
                " (nothing in raw: not loaded yet, or a gap at the source)"
                if cell.raw_hours == 0
                else f" ({cell.detail})"
            )
            for cell in self.coverage.problems()
        ]
        for check in self.checks:
            if check.duplicate_keys:
                errors.append(f"{check.product}: {check.duplicate_keys} duplicate (station, hour) keys")
            errors.extend(f"{check.product}: data test failed: {test}" for test in check.failed_tests)
        return errors

    @property
    def warnings(self) -> list[str]:
        return [
            f"{check.product}: {check.unknown_stations} station(s) not in marts.dim_station"
            for check in self.checks
            if check.unknown_stations
        ]


def validate(connection: db.Connection, products: Sequence[str], start: date, end: date) -> Validation:
    """Row counts, completeness against expected hours, duplicate keys, stations, test results."""
    matrix = coverage(connection, products, start, end)
    window = Window(matrix.start, matrix.end)
    bounds = (f"{start} 00:00:00+00", f"{end} 00:00:00+00")
    checks = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            has_dim = relation_exists(cursor, MARTS_SCHEMA, "dim_station")
            has_results = relation_exists(cursor, "ops", "data_quality_results")
            for product in products:
                check = ProductCheck(product)
                checks.append(check)
                fact = sql.Identifier(MARTS_SCHEMA, f"fct_hourly_{product}")
                (totals,) = window_facts(cursor, product, f"fct_hourly_{product}", [Window(start, end)])
                check.raw_hours, check.published_rows = totals.raw_hours, totals.built_hours
                spans = _spans(cursor, product, by_station=True)
                # hours each station should have: its observation span clipped to the range
                check.expected_hours = sum(
                    max(0, (min(date.fromordinal(hi.toordinal() + 1), end) - max(lo, start)).days * 24)
                    for lo, hi in spans.values()
                )
                if relation_exists(cursor, MARTS_SCHEMA, f"fct_hourly_{product}"):
                    cursor.execute(
                        sql.SQL(
                            "select count(*) from (select 1 from {} where observed_at >= %s and observed_at < %s"
                            " group by station_id, observed_at having count(*) > 1) as duplicates"
                        ).format(fact),
                        bounds,
                    )
                    check.duplicate_keys = cursor.fetchone()[0]
                    if has_dim:
                        cursor.execute(
                            sql.SQL(
                                "select count(distinct f.station_id) from {} as f where f.observed_at >= %s"
                                " and f.observed_at < %s and not exists (select 1 from marts.dim_station as d"
                                " where d.station_id = f.station_id)"
                            ).format(fact),
                            bounds,
                        )
                        check.unknown_stations = cursor.fetchone()[0]
                if has_results:
                    cursor.execute(
                        "select test_name from (select distinct on (test_name, window_start, window_end) test_name,"
                        " status from ops.data_quality_results where %s = any(products) and window_start < %s"
                        " and window_end > %s order by test_name, window_start, window_end, result_id desc) as latest"
                        " where status in ('fail', 'error') order by 1",
                        (product, window.end, window.start),
                    )
                    check.failed_tests = sorted({row[0] for row in cursor.fetchall()})
    finally:
        conn.close()
    return Validation(matrix, checks)


# ---- doctor -------------------------------------------------------------------------------------


@dataclass
class Finding:
    check: str
    level: str  # ok | warn | error
    detail: str


def doctor(connection_factory, pipelines_dir: str | None = None) -> list[Finding]:
    """Database reachable, versions, disk space, pending dlt packages, stale runs, locks and schemas."""
    findings = []
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("weatherinsight", "dbt-core", "dbt-postgres", "dlt")
    )
    findings.append(Finding("versions", "ok", f"Python {platform.python_version()}, {versions}"))
    try:
        connection = connection_factory()
        conn = db.connect(connection)
    except db.DatabaseError as error:
        findings.append(Finding("database", "error", str(error)))
        return findings
    try:
        with conn.cursor() as cursor:
            cursor.execute("select version(), pg_size_pretty(pg_database_size(current_database()))")
            version, size = cursor.fetchone()
            findings.append(Finding("database", "ok", f"{connection.describe()}: {version.split(',')[0]}, {size}"))
            cursor.execute(
                "select count(*), coalesce(max(extract(epoch from now() - a.state_change)), 0) from pg_locks as l"
                " join pg_stat_activity as a on a.pid = l.pid where l.locktype = 'advisory' and l.granted"
                " and a.pid <> pg_backend_pid()"
            )
            held, oldest = cursor.fetchone()
            level = "warn" if held and oldest > 3600 else "ok"
            findings.append(
                Finding(
                    "advisory locks",
                    level,
                    f"{held} held" + (f", oldest session idle {oldest / 60:.0f} min" if held else ""),
                )
            )
    finally:
        conn.close()
    folder = db.pgdata_dir() if connection.embedded else db.project_root()
    usage = shutil.disk_usage(folder if folder.exists() else db.project_root())
    free_gib = usage.free / 2**30
    findings.append(
        Finding("disk space", "warn" if free_gib < 2 else "ok", f"{free_gib:.1f} GiB free of {usage.total / 2**30:.0f}")
    )
    findings.extend(_pending_packages(connection, pipelines_dir))
    with Ledger(connection) as ledger:
        if ledger.exists():
            dead = ledger.dead_runs()
            findings.append(
                Finding(
                    "stale runs",
                    "warn" if dead else "ok",
                    f"runs {', '.join(map(str, dead))} are marked running but their process is gone "
                    "(the next backfill command marks them failed)"
                    if dead
                    else "no run marked running without a live process",
                )
            )
            running = {row[0] for row in ledger.all("select run_id from ops.backfill_runs where status = 'running'")}
            leftover = [s for s in ledger.audit_schemas() if int(s.split("_")[1][1:]) not in running - set(dead)]
            findings.append(
                Finding(
                    "audit schemas",
                    "warn" if leftover else "ok",
                    f"left over: {', '.join(leftover)}" if leftover else "none left over",
                )
            )
            (backups, backup_bytes) = ledger.one(
                "select count(*), coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace where n.nspname = 'ops_backup' and c.relkind = 'r'"
            )
            findings.append(Finding("restore backups", "ok", f"{backups} tables, {backup_bytes / 2**20:.1f} MiB"))
        else:
            findings.append(Finding("ledger", "ok", "no backfill has run yet"))
    return findings


def _pending_packages(connection: db.Connection, pipelines_dir: str | None) -> list[Finding]:
    """Pending dlt packages, and whether this checkout's copy of the loader state is the warehouse's."""
    import dlt

    from weatherinsight.dwd.service import default_pipelines_dir, pipeline_name

    name = pipeline_name(connection)
    folder = pipelines_dir or str(default_pipelines_dir())
    remote = _warehouse_state(connection, name)
    try:
        pipeline = dlt.attach(pipeline_name=name, pipelines_dir=folder)
    except Exception:  # noqa: BLE001 - dlt raises several kinds when no local state exists
        return [
            Finding("dlt packages", "ok", f"no local state for pipeline {name} in {folder} (nothing pending)"),
            Finding("loader state", "ok", f"no local copy; the next load takes the warehouse's ({remote or 'none'})"),
        ]
    findings = []
    extracted = pipeline.list_extracted_load_packages()
    normalized = pipeline.list_normalized_load_packages()
    if extracted or normalized:
        findings.append(
            Finding(
                "dlt packages",
                "warn",
                f"pipeline {name}: {len(extracted)} extracted and {len(normalized)} normalized packages not loaded "
                "(the next load finishes them)",
            )
        )
    else:
        findings.append(Finding("dlt packages", "ok", f"pipeline {name}: nothing pending"))
    local = f"version {pipeline.state['_state_version']} ({pipeline.state.get('_version_hash', '?')[:12]})"
    if remote is not None and remote != local:
        findings.append(
            Finding(
                "loader state",
                "warn",
                f"local copy in {folder} is {local}, the warehouse holds {remote}: "
                "the next load replaces the local copy with the warehouse's",
            )
        )
    else:
        findings.append(Finding("loader state", "ok", f"local copy is the warehouse's: {local}"))
    return findings


def _warehouse_state(connection: db.Connection, name: str) -> str | None:
    """The newest loader state the warehouse holds for pipeline ``name``, described like the local one."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            if not relation_exists(cursor, DATASET_NAME, "_dlt_pipeline_state"):
                return None
            cursor.execute(
                sql.SQL(
                    "select version, version_hash from {} where pipeline_name = %s order by version desc limit 1"
                ).format(sql.Identifier(DATASET_NAME, "_dlt_pipeline_state")),
                (name,),
            )
            row = cursor.fetchone()
    finally:
        conn.close()
    return f"version {row[0]} ({(row[1] or '?')[:12]})" if row else None
