"""``weatherinsight update``: the everyday run in one command.

Load what is new for the configured scope (the ``[update]`` section of ``.dlt/config.toml``): DWD's
changed archives (``recent`` folders, new ``historical`` releases) for the configured products and
stations, and for the locations of ``seeds/locations.csv`` the Open-Meteo days that turned final
(``openmeteo_days`` days up to a week ago: the reanalysis no longer revises them, so each is fetched
once); then a plain ``dbt build`` — skipped when nothing is new (nothing loaded, no delivery any
model has not processed, the project's files as at the last good update); then ``validate``. One
update at a time per warehouse (a second waits), recorded in the ledger as a run of command
``update`` with its counts.

Exit codes for alerting: 0 ok; 1 a data problem (files or locations that could not be fetched, a
failed build or data test, a problem ``validate`` found); 2 a usage error (a bad configuration);
3 the source or the database unreachable (nothing half-published: a load commits whole packages).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dlt
import psycopg2
import requests

from weatherinsight import db
from weatherinsight.dwd.listing import SourceUnreachable
from weatherinsight.dwd.service import configured_base_url, load_dwd, make_window, parse_products
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, Catalogue, load_catalogue
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS, product_source
from weatherinsight.ops.dbt import run_dbt
from weatherinsight.ops.reports.status import data_range
from weatherinsight.ops.reports.validate import validate

log = logging.getLogger(__name__)

UPDATE_LOCK = "weatherinsight.update"
EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
#: Open-Meteo's archive revises its last days for about this long (see openmeteo.settings)
FINAL_AFTER_DAYS = 7
#: the project files whose change makes a build necessary although nothing new was loaded
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "snapshots")


class UpdateError(RuntimeError):
    """The update stopped; ``exit_code`` says why (one of the EXIT_* codes)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class UpdateScope:
    """What the everyday run keeps up to date (``[update]`` in ``.dlt/config.toml``)."""

    dwd_products: tuple[str, ...]
    dwd_stations: tuple[int, ...] | None  # None: every station
    openmeteo_apis: tuple[str, ...]
    openmeteo_days: int

    def products(self) -> list[str]:
        """Ledger product names (DWD's, then Open-Meteo's)."""
        apis = {name: product for product, name in OPENMETEO_PRODUCTS.items()}
        return [*self.dwd_products, *(apis[api] for api in self.openmeteo_apis)]

    def as_json(self) -> dict:
        return {
            "dwd_products": list(self.dwd_products),
            "dwd_stations": list(self.dwd_stations) if self.dwd_stations is not None else "all",
            "openmeteo_apis": list(self.openmeteo_apis),
            "openmeteo_days": self.openmeteo_days,
        }


def _listed(value: object, name: str) -> list[str] | None:
    """A config value that is "all" (None), a list, or a comma-separated string."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [str(part).strip() for part in value]
    raise UpdateError(f'update.{name} must be "all" or a list, not {value!r}', EXIT_USAGE)


def configured_scope() -> UpdateScope:
    """The ``[update]`` section of ``.dlt/config.toml`` (environment variables such as
    ``UPDATE__DWD_STATIONS=44,1975`` override it), checked."""
    products = _listed(dlt.config.get("update.dwd_products"), "dwd_products")
    try:
        chosen = parse_products(products) if products != [] else []
    except Exception as error:  # noqa: BLE001 - the parser's one-line message is the answer
        raise UpdateError(f"update.dwd_products: {error}", EXIT_USAGE) from error
    stations = _listed(dlt.config.get("update.dwd_stations"), "dwd_stations")
    try:
        station_ids = tuple(sorted({int(station) for station in stations})) if stations is not None else None
    except ValueError as error:
        raise UpdateError(f'update.dwd_stations must be station ids or "all": {stations}', EXIT_USAGE) from error
    apis = _listed(dlt.config.get("update.openmeteo_apis"), "openmeteo_apis")
    known = set(OPENMETEO_PRODUCTS.values())
    apis = sorted(known) if apis is None else [api.replace("-", "_") for api in apis]
    unknown = [api for api in apis if api not in known]
    if unknown:
        raise UpdateError(
            f"update.openmeteo_apis: unknown {', '.join(unknown)} (known: {', '.join(known)})", EXIT_USAGE
        )
    days = dlt.config.get("update.openmeteo_days")
    try:
        days = int(days if days is not None else 14)
    except (TypeError, ValueError) as error:
        raise UpdateError(f"update.openmeteo_days must be a whole number, not {days!r}", EXIT_USAGE) from error
    if days < 0:
        raise UpdateError(f"update.openmeteo_days must be 0 or more, not {days}", EXIT_USAGE)
    return UpdateScope(tuple(product.name for product in chosen), station_ids, tuple(apis) if days else (), days)


def project_fingerprint(root: Path | None = None) -> str:
    """sha256 over the dbt project's files (names and contents): a changed model makes a build due."""
    root = root or db.project_root()
    digest = hashlib.sha256()
    for part in PROJECT_PARTS:
        path = root / part
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


@dataclass
class UpdateOutcome:
    run_id: int
    rows_loaded: int = 0
    rows_by_source: dict[str, int] = field(default_factory=dict)
    built: bool = False
    build_reason: str = ""
    rows_built: int = 0
    models_built: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: wall seconds per phase: DWD fetch + parse + dlt load, DWD settle (compare + store), Open-Meteo,
    #: the plain build (models and the tests of what they changed), validate
    phases: dict[str, float] = field(default_factory=dict)
    #: the plain build's dbt artifacts folder (run_results.json), when it ran
    build_target: Path | None = None
    #: first and last day (UTC) of what this run stored, when it stored anything
    changed_days: tuple[date, date] | None = None

    def changed(self, first: date, last: date) -> None:
        known = self.changed_days
        self.changed_days = (first, last) if known is None else (min(known[0], first), max(known[1], last))

    @property
    def exit_code(self) -> int:
        return EXIT_DATA if self.problems else EXIT_OK


def build_due(
    connection: db.ConnectionSettings, catalogue: Catalogue, rows_loaded: int, fingerprint: str, last: str | None
) -> str | None:
    """Why a plain build is due, or None when everything built is up to date with raw and the project."""
    if rows_loaded:
        return f"{rows_loaded:,} new raw rows"
    if last != fingerprint:
        return "the project's files changed since the last good update" if last else "no update has built yet"
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            missing = [m for m in catalogue.models if not db.relation_exists(cursor, MARTS_SCHEMA, m)]
            if missing:
                return f"{len(missing)} models not built yet ({', '.join(sorted(missing)[:3])})"
            cursor.execute("select to_regprocedure('ops.pending_changes(text, text[])') is not null")
            if not cursor.fetchone()[0]:
                return "change tracking not set up yet"
            for model in catalogue.models.values():
                inputs = [f"{MARTS_SCHEMA}.{parent}" for parent in model.parents if parent in catalogue.models]
                if model.grain == "hour" and model.product:
                    source = product_source(model.product)
                    if db.relation_exists(cursor, source.raw_schema, model.product):
                        inputs.append(f"{source.raw_schema}.{model.product}")
                if not inputs:
                    continue
                cursor.execute(
                    "select count(*) from ops.pending_changes(%s, %s)", (f"{MARTS_SCHEMA}.{model.name}", inputs)
                )
                pending = cursor.fetchone()[0]
                if pending:
                    return f"{model.name} has {pending} change(s) to process"
    finally:
        conn.close()
    return None


def run_update(
    connection: db.ConnectionSettings,
    scope: UpdateScope,
    dwd_base_url: str | None = None,
    openmeteo_base_url: str | None = None,
    say: Callable[[str], None] = log.info,
    today: date | None = None,
) -> UpdateOutcome:
    """One everyday run; raises :class:`UpdateError` (with its exit code) when it cannot go on."""
    started = time.perf_counter()
    try:
        db.connect(connection).close()
    except db.DatabaseError as error:
        raise UpdateError(str(error), EXIT_UNREACHABLE) from error
    waiting = lambda: say("another update is running: waiting for it")  # noqa: E731
    with db.advisory_lock(connection, UPDATE_LOCK, on_wait=waiting), Ledger(connection) as ledger:
        ledger.ensure()
        ledger.reap()
        fingerprint = project_fingerprint()
        last = ledger.last_update_fingerprint()
        run_id = ledger.start_run("update", {**scope.as_json(), "project_fingerprint": fingerprint})
        outcome = UpdateOutcome(run_id)
        try:
            _update(connection, scope, dwd_base_url, openmeteo_base_url, say, today, fingerprint, last, outcome)
        except UpdateError as error:
            counts = {"rows_loaded": outcome.rows_loaded, "rows_built": outcome.rows_built}
            ledger.finish_run(run_id, "failed", error=str(error)[:2000], **counts)
            raise
        except (psycopg2.OperationalError, psycopg2.InterfaceError, db.DatabaseError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UpdateError(f"lost the database: {first}", EXIT_UNREACHABLE) from error
        except BaseException as error:
            ledger.finish_run(run_id, "failed", error=f"interrupted: {type(error).__name__}: {error}"[:2000])
            raise
        outcome.seconds = time.perf_counter() - started
        ledger.finish_run(
            run_id,
            "failed" if outcome.problems else "succeeded",
            error="; ".join(outcome.problems)[:2000] or None,
            rows_loaded=outcome.rows_loaded,
            rows_built=outcome.rows_built,
        )
    return outcome


def _update(
    connection: db.ConnectionSettings,
    scope: UpdateScope,
    dwd_base_url: str | None,
    openmeteo_base_url: str | None,
    say: Callable[[str], None],
    today: date | None,
    fingerprint: str,
    last: str | None,
    outcome: UpdateOutcome,
) -> None:
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        outcome.phases[phase] = outcome.phases.get(phase, 0.0) + now - clock
        clock = now

    if scope.dwd_products:
        _load_dwd(connection, scope, dwd_base_url, say, outcome)
        lap("dwd load")
    if scope.openmeteo_apis:
        _load_openmeteo(connection, scope, openmeteo_base_url, say, today, outcome)
        lap("openmeteo load")
    catalogue = load_catalogue(connection)
    reason = build_due(connection, catalogue, outcome.rows_loaded, fingerprint, last)
    if reason is None:
        outcome.build_reason = "nothing new: every model is up to date with raw and the project"
        say(f"dbt build skipped: {outcome.build_reason}")
    else:
        outcome.build_reason = reason
        say(f"dbt build ({reason})")
        target = db.project_root() / "target" / "update" / connection.database / f"run_{outcome.run_id}"
        built = run_dbt(connection, ["build"], target)
        outcome.built, outcome.build_target = True, target
        lap("build")
        models = [r for r in built.results if r["unique_id"].startswith("model.")]
        outcome.models_built = len(models)
        outcome.rows_built = sum(r.get("rows_affected") or 0 for r in models)
        if not built.ok:
            problems = built.problems() or [built.first_error_line()]
            outcome.problems.append(f"dbt build failed: {'; '.join(problems[:5])}")
            return
    published = _loaded_products(connection)
    products = [p for p in scope.products() if p in published]
    found = data_range(connection, products) if products else None
    if found is not None and outcome.changed_days is not None and last == fingerprint:
        # only new data since the last good update: validate the days it changed, not the archive
        found = (max(found[0], outcome.changed_days[0]), min(found[1], outcome.changed_days[1]))
    if found is not None and found[0] <= found[1]:
        say(f"validating {', '.join(products)} {found[0]} – {found[1]}")
        checked = validate(connection, products, found[0], found[1] + timedelta(days=1))
        outcome.problems.extend(f"validate: {error}" for error in checked.errors[:20])
        lap("validate")


def _load_dwd(
    connection: db.ConnectionSettings,
    scope: UpdateScope,
    dwd_base_url: str | None,
    say: Callable[[str], None],
    outcome: UpdateOutcome,
) -> None:
    """Load what DWD has new for the scope's products and stations; a file that failed is a problem."""
    base_url = dwd_base_url or configured_base_url()
    say(f"loading DWD {', '.join(scope.dwd_products)} from {base_url}")
    try:
        result = load_dwd(
            base_url,
            parse_products(",".join(scope.dwd_products)),
            set(scope.dwd_stations) if scope.dwd_stations is not None else None,
            make_window(None, None),
            connection,
        )
    except SourceUnreachable as error:
        raise UpdateError(f"DWD unreachable: {error}", EXIT_UNREACHABLE) from error
    # what raw gained: a re-delivered archive stores only its new and changed rows
    outcome.phases["dwd settle"] = result.settle_seconds
    if result.rows_stored and result.load_info is not None:
        days = _changed_days(connection, list(result.load_info.loads_ids))
        if days is not None:
            outcome.changed(*days)
    outcome.rows_by_source["dwd"] = result.rows_stored
    outcome.rows_loaded += result.rows_stored
    if result.stats.files_failed:
        outcome.problems.append(
            f"{len(result.stats.files_failed)} DWD file(s) could not be fetched"
            f" ({', '.join(result.stats.files_failed[:3])}); the next update retries them"
        )


def _load_openmeteo(
    connection: db.ConnectionSettings,
    scope: UpdateScope,
    openmeteo_base_url: str | None,
    say: Callable[[str], None],
    today: date | None,
    outcome: UpdateOutcome,
) -> None:
    """Load Open-Meteo's final days for the scope's APIs; every location failing means unreachable."""
    from weatherinsight.openmeteo.client import NotOpenMeteo
    from weatherinsight.openmeteo.service import load_openmeteo

    end = (today or datetime.now(timezone.utc).date()) - timedelta(days=FINAL_AFTER_DAYS)
    start = end - timedelta(days=scope.openmeteo_days)
    say(f"loading Open-Meteo {', '.join(scope.openmeteo_apis)} for {start} – {end} (final days)")
    try:
        result = load_openmeteo(connection, list(scope.openmeteo_apis), None, start, end, base_url=openmeteo_base_url)
    except (NotOpenMeteo, requests.ConnectionError, requests.Timeout) as error:
        raise UpdateError(f"Open-Meteo unreachable: {error}", EXIT_UNREACHABLE) from error
    outcome.rows_by_source["openmeteo"] = result.rows
    outcome.rows_loaded += result.rows
    if result.rows:
        outcome.changed(start, end)
    if result.failed:
        names = ", ".join(f"{o.api} location {o.location.location_id}" for o in result.failed[:3])
        if len(result.failed) == len(result.outcomes):
            raise UpdateError(f"Open-Meteo unreachable: every location failed ({names})", EXIT_UNREACHABLE)
        outcome.problems.append(f"{len(result.failed)} Open-Meteo location(s) failed ({names})")


def _changed_days(connection: db.ConnectionSettings, load_ids: list[str]) -> tuple[date, date] | None:
    """First and last day (UTC) of the hours the DWD loads ``load_ids`` stored."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select (min(first_observed_at) at time zone 'UTC')::date,"
                " (max(last_observed_at) at time zone 'UTC')::date"
                " from raw_dwd.changed_ranges where _dlt_load_id = any(%s)",
                (load_ids,),
            )
            first, last = cursor.fetchone()
    finally:
        conn.close()
    return (first, last) if first is not None else None


def _loaded_products(connection: db.ConnectionSettings) -> set[str]:
    """Products with a published hourly fact."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = %s"
                " and table_name like 'fct\\_hourly\\_%%'",
                (MARTS_SCHEMA,),
            )
            return {name.removeprefix("fct_hourly_") for (name,) in cursor.fetchall()}
    finally:
        conn.close()
