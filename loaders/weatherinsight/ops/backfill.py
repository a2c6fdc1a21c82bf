"""Backfills as one command: plan windows from the ledger and the data, load raw with dlt, build each
window with dbt into an audit schema, test it there, and publish it only when its tests pass.

Per window (a batch: one time window, the products that need it):

1. take the window's locks: one session-level advisory lock per (mart model, quarter) it writes, so
   a second run on an overlapping window waits (``--wait``) or refuses, and never interleaves;
2. copy the published rows of the window's quarters of every mart model the build reads or writes
   into ``audit_r<run>_b<batch>`` (so a month window still yields whole-quarter aggregates);
3. ``dbt build`` the products' hourly facts and their downstream marts there, with window vars
   (the ``audit_schema`` var sends the ``marts`` models to that schema) — data tests included;
4. if every test passed: in one transaction, keep the published rows of the window in
   ``ops_backup`` (for ``backfill restore``), replace them with the audit schema's, and mark the
   ledger windows succeeded with row counts and checksums; else leave the marts untouched and mark
   the windows failed with the failing tests. Test results land in ``ops.data_quality_results``.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.service import LoadRequestError, load_dwd, make_window, parse_products, parse_stations
from weatherinsight.ops.changes import adopt_audit_changes, forget_audit_changes, forget_processed
from weatherinsight.ops.dbt import DbtResult, run_dbt
from weatherinsight.ops.ledger import AUDIT_PREFIX, BACKUP_SCHEMA, BUSY, NOW, Ledger
from weatherinsight.ops.windows import (
    GRAINS,
    MARTS_SCHEMA,
    Catalogue,
    MartModel,
    Window,
    diagnose,
    range_predicate,
    relation_exists,
    split,
    window_facts,
)

log = logging.getLogger(__name__)

MAX_PARALLEL = 4
#: seconds per window assumed before the ledger has any history
DEFAULT_SECONDS_PER_WINDOW = 20.0
TO_BUILD = ("missing", "partial", "stale")


class BackfillRequestError(ValueError):
    """The request is wrong (dates, products, run id…): one line, exit code 2, nothing changed."""


class WindowBusy(RuntimeError):
    """Another run writes an overlapping window."""


class BackfillFailed(RuntimeError):
    """The run could not go on (raw load failed…); the ledger says what is done."""


@dataclass
class Request:
    start: date
    end: date
    products: list[str]
    stations: list[int] | None = None
    by: str = "quarter"
    force: bool = False
    retry_failed: bool = False
    parallel: int = 1
    base_url: str | None = None
    load: bool = True
    wait: float = 0.0

    @classmethod
    def make(
        cls,
        start: date | None,
        end: date | None,
        products: str | Sequence[str] | None,
        stations: str | Sequence[int] | None,
        by: str = "quarter",
        **options,
    ) -> Request:
        if start is None or end is None:
            raise BackfillRequestError("give both --start and --end (YYYY-MM-DD)")
        if end <= start:
            raise BackfillRequestError(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
        if by not in GRAINS:
            raise BackfillRequestError(f"--by {by!r}: use one of {', '.join(GRAINS)}")
        parallel = options.get("parallel", 1)
        if not 1 <= parallel <= MAX_PARALLEL:
            raise BackfillRequestError(f"--parallel {parallel}: use 1 to {MAX_PARALLEL}")
        try:
            chosen = [product.name for product in parse_products(products)]
            chosen_stations = sorted(parse_stations(stations) or []) or None
        except LoadRequestError as error:
            raise BackfillRequestError(str(error)) from None
        return cls(start, end, chosen, chosen_stations, by, **options)

    def arguments(self) -> dict:
        values = asdict(self)
        values["start"], values["end"] = self.start.isoformat(), self.end.isoformat()
        return values

    @classmethod
    def from_arguments(cls, values: dict) -> Request:
        values = dict(values)
        values["start"], values["end"] = date.fromisoformat(values["start"]), date.fromisoformat(values["end"])
        return cls(**values)


@dataclass
class WindowPlan:
    """One (window, product) of a plan."""

    batch: int
    window: Window
    product: str
    state: str
    raw_hours: int
    built_hours: int
    action: str  # build | skip
    reason: str
    raw_watermark: float | None = None


@dataclass
class Plan:
    request: Request
    windows: list[Window]
    entries: list[WindowPlan]
    seconds_per_window: float
    history: bool

    def batches(self) -> dict[int, list[WindowPlan]]:
        batches: dict[int, list[WindowPlan]] = {}
        for entry in self.entries:
            if entry.action == "build":
                batches.setdefault(entry.batch, []).append(entry)
        return batches

    @property
    def estimated_seconds(self) -> float:
        parallel = min(self.request.parallel, max(len(self.batches()), 1))
        return len(self.batches()) * self.seconds_per_window / parallel

    @property
    def estimated_rows(self) -> int:
        return sum(entry.raw_hours for entry in self.entries if entry.action == "build")


@dataclass
class BatchOutcome:
    batch: int
    window: Window
    products: list[str]
    ok: bool
    rows_built: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    run_id: int
    plan: Plan
    outcomes: list[BatchOutcome] = field(default_factory=list)
    rows_loaded: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def windows_ok(self) -> int:
        return sum(len(o.products) for o in self.outcomes if o.ok)

    @property
    def windows_failed(self) -> int:
        return sum(len(o.products) for o in self.outcomes if not o.ok)

    @property
    def windows_skipped(self) -> int:
        return sum(1 for entry in self.plan.entries if entry.action == "skip")

    @property
    def rows_built(self) -> int:
        return sum(o.rows_built for o in self.outcomes)


class Progress:
    """Callbacks of a run (the CLI draws a bar with them)."""

    def loading(self) -> None: ...

    def started(self, plan: Plan) -> None: ...

    def batch_done(self, outcome: BatchOutcome) -> None: ...


# ---- the project's dbt artifacts ---------------------------------------------------------------


def backfill_target(*parts: str) -> Path:
    """dbt artifacts of backfills: ``target/backfill/...`` (one folder per database, run and window)."""
    return db.project_root() / "target" / "backfill" / Path(*parts)


def catalogue(connection: db.Connection) -> Catalogue:
    """The windowed mart models, from a manifest no older than the project's files (`dbt parse`)."""
    root = db.project_root()
    manifest = backfill_target("manifest.json")
    sources = [root / "dbt_project.yml", *(root / "models").rglob("*"), *(root / "macros").rglob("*")]
    newest = max(path.stat().st_mtime for path in sources if path.is_file())
    if not manifest.is_file() or manifest.stat().st_mtime < newest:
        # parse in a folder of our own and move the manifest in: two runs starting at once never
        # read a half-written one
        target = backfill_target(f"parse_{os.getpid()}_{threading.get_ident()}")
        result = run_dbt(connection, ["parse"], target)
        if not result.ok:
            raise BackfillFailed(f"dbt parse failed: {result.first_error_line()}")
        os.replace(target / "manifest.json", manifest)
        shutil.rmtree(target, ignore_errors=True)
    return Catalogue.from_manifest(manifest)


# ---- plan ---------------------------------------------------------------------------------------


def seconds_per_window(ledger: Ledger) -> tuple[float, bool]:
    """Median wall time of past succeeded windows (one dbt build each), or a default."""
    rows = ledger.all(
        "select max(seconds) from ops.backfill_windows where layer = 'marts' and status = 'succeeded'"
        " and seconds is not null group by run_id, batch order by max(window_id) desc limit 50"
    )
    values = [float(row[0]) for row in rows]
    return (statistics.median(values), True) if values else (DEFAULT_SECONDS_PER_WINDOW, False)


def make_plan(connection: db.Connection, request: Request, ledger: Ledger, catalogue_: Catalogue | None = None) -> Plan:
    """Each (window, product): its state from every published layer and the ledger, and whether a
    run builds it."""
    catalogue_ = catalogue_ or catalogue(connection)
    windows = split(request.start, request.end, request.by)
    attempts = ledger.latest_attempts(request.products)
    stations_key = tuple(request.stations or ())
    entries = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in request.products:
                hourly, *downstream = catalogue_.selection([product])
                facts = window_facts(cursor, product, hourly.name, windows, request.stations, downstream)
                for batch, (window, fact) in enumerate(zip(windows, facts, strict=True), start=1):
                    attempt = attempts.get((product, window.start, window.end, stations_key))
                    state, why = diagnose(
                        fact, attempt.status if attempt else None, attempt.interrupted if attempt else False
                    )
                    action, reason = _decide(state, why, request, attempt.run_id if attempt else None)
                    entries.append(
                        WindowPlan(
                            batch,
                            window,
                            product,
                            state,
                            fact.raw_hours,
                            fact.built_hours,
                            action,
                            reason,
                            fact.raw_watermark,
                        )
                    )
    finally:
        conn.close()
    per_window, history = seconds_per_window(ledger)
    entries.sort(key=lambda entry: (entry.batch, entry.product))
    return Plan(request, windows, entries, per_window, history)


def _decide(state: str, why: str, request: Request, run_id: int | None) -> tuple[str, str]:
    if state in TO_BUILD:
        return "build", why
    if request.force:
        return "build", f"{state}, --force"
    if state == "failed":
        if request.retry_failed:
            return "build", "failed, --retry-failed"
        return "skip", f"failed in run {run_id}: rerun with --retry-failed"
    return "skip", state


# ---- run ----------------------------------------------------------------------------------------


def window_lock_keys(models: Sequence[str], window: Window) -> list[str]:
    """One key per (mart model, quarter) the window writes."""
    return sorted({f"weatherinsight.window:{model}:{quarter}" for model in models for quarter in window.quarters()})


class WindowLocks:
    """Session-level advisory locks on (mart model, quarter): all or none, waiting up to ``wait`` s."""

    def __init__(self, conn, keys: Sequence[str], what: str, wait: float) -> None:
        self.conn, self.keys, self.what, self.wait = conn, list(keys), what, wait

    def __enter__(self) -> WindowLocks:
        deadline = time.monotonic() + self.wait
        while True:
            held = []
            with self.conn.cursor() as cursor:
                for key in self.keys:
                    cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (key,))
                    if not cursor.fetchone()[0]:
                        break
                    held.append(key)
                if len(held) == len(self.keys):
                    return self
                for key in held:
                    cursor.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
            if time.monotonic() >= deadline:
                raise WindowBusy(
                    f"{self.what} is being written by another run; wait for it (see: weatherinsight status) "
                    "or pass --wait SECONDS"
                )
            time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        with self.conn.cursor() as cursor:
            for key in self.keys:
                cursor.execute("select pg_advisory_unlock(hashtext(%s))", (key,))


def ensure_relations(connection: db.Connection, catalogue_: Catalogue, run_dir: Path, refresh_stations: bool) -> None:
    """Build what a window build reads but does not build, where missing: seeds, staging views, the
    station snapshot and dimension, and the windowed marts (created empty)."""
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            # one preparer at a time: two runs on a fresh database would create the same views at once
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.prepare'))")
            missing_marts = [name for name in catalogue_.models if not relation_exists(cursor, MARTS_SCHEMA, name)]
            base_missing = not relation_exists(cursor, MARTS_SCHEMA, "dim_station") or not relation_exists(
                cursor, "staging", "stg_dwd__station_list_entries"
            )
            if base_missing or refresh_stations:
                exclude = ["--exclude", *catalogue_.models]
                # seeds, views, the station snapshot and dimension; their tests run in the user's own builds
                no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
                result = run_dbt(connection, ["build", *exclude, *no_tests], run_dir / "prepare")
                if not result.ok:
                    problems = "; ".join(result.problems()[:3]) or result.first_error_line()
                    raise BackfillFailed(f"preparing the project failed: {problems}")
            if missing_marts:
                # a windowed build of a missing model creates it with the window's rows: none here
                # (dbt's --empty cannot be used: its limit-0 subqueries break `ref(...) as alias`)
                result = run_dbt(
                    connection,
                    ["run", "--select", *missing_marts],
                    run_dir / "create",
                    variables={"start_date": "1900-01-01", "end_date": "1900-01-02"},
                )
                if not result.ok:
                    raise BackfillFailed(f"creating the marts failed: {result.first_error_line()}")
    finally:
        conn.close()  # releases the lock


def writer_locks(cursor, models: Sequence[str]) -> None:
    """The transaction-level locks dbt's ``window_replace`` takes per model (macros/window.sql), so no
    plain dbt build interleaves with a publish or a restore."""
    for model in sorted(set(models)):
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"weatherinsight.writer:{MARTS_SCHEMA}.{model}",))


def _checksum(cursor, model: MartModel, window: Window, stations: Sequence[int] | None) -> str:
    """md5 over the published rows of ``model`` in ``window``."""
    cursor.execute(
        sql.SQL("select coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from {} as t where {}").format(
            sql.Identifier(MARTS_SCHEMA, model.name), model.predicate(window, stations)
        )
    )
    return cursor.fetchone()[0]


def _columns(cursor, schema: str, table: str) -> sql.Composed:
    cursor.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
        " order by ordinal_position",
        (schema, table),
    )
    return sql.SQL(", ").join(sql.Identifier(row[0]) for row in cursor.fetchall())


class Runner:
    """Executes a plan's batches for one run."""

    def __init__(
        self, connection: db.Connection, ledger: Ledger, run_id: int, request: Request, catalogue_: Catalogue
    ) -> None:
        self.connection, self.ledger, self.run_id, self.request = connection, ledger, run_id, request
        self.catalogue = catalogue_
        self.run_dir = backfill_target(connection.database, f"run_{run_id}")
        self.ledger_lock = threading.Lock()

    def ledger_do(self, method: Callable, *args, **kwargs):
        with self.ledger_lock:  # one ledger connection, shared by the worker threads
            return method(*args, **kwargs)

    def batch(self, batch: int, entries: list[WindowPlan], window_ids: dict[str, int]) -> BatchOutcome:
        started = time.perf_counter()
        window = entries[0].window
        products = [entry.product for entry in entries]
        ids = [window_ids[product] for product in products]
        selected = self.catalogue.selection(products)
        inputs = self.catalogue.inputs(selected)
        outcome = BatchOutcome(batch, window, products, ok=False)
        conn = db.connect(self.connection)
        conn.autocommit = True
        audit = f"{AUDIT_PREFIX}{self.run_id}_b{batch}"
        what = f"window {window.label} ({', '.join(products)})"
        try:
            with WindowLocks(
                conn, window_lock_keys([model.name for model in selected], window), what, self.request.wait
            ):
                self.ledger_do(self.ledger.update_windows, ids, status="running", started_at=NOW)
                self._stage(conn, audit, selected + inputs, window)
                result = run_dbt(
                    self.connection,
                    [
                        "build",
                        "--select",
                        *(model.name for model in selected),
                        "--exclude-resource-type",
                        "unit_test",
                        # every test that guards the window's rows, relationships to dim_station and
                        # the seeds included (cautious selection leaves out tests with an unselected parent)
                        "--indirect-selection",
                        "eager",
                    ],
                    self.run_dir / f"batch_{batch}",
                    variables={
                        "start_date": window.start.isoformat(),
                        "end_date": window.end.isoformat(),
                        "products": products,
                        **({"stations": self.request.stations} if self.request.stations else {}),
                        "audit_schema": audit,
                    },
                )
                self.ledger_do(
                    self.ledger.record_test_results,
                    self.run_id,
                    batch,
                    products,
                    window.start,
                    window.end,
                    result.invocation_id,
                    result.tests(),
                )
                outcome.seconds = time.perf_counter() - started
                if result.ok:
                    outcome.rows_built = self._publish(conn, audit, selected, entries, ids, result, outcome)
                    outcome.ok = True
                else:
                    outcome.problems = result.problems() or [result.first_error_line()]
                    self._fail(ids, outcome, result)
        except WindowBusy as error:
            outcome.problems = [f"{BUSY}: {error}"]
            self._fail(ids, outcome, None)
        finally:
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(audit)))
                forget_audit_changes(cursor, audit)
            conn.close()
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _stage(self, conn, audit: str, models: Sequence[MartModel], window: Window) -> None:
        """The audit schema with the published rows of the window's quarters of every model involved."""
        quarters = window.widened("quarter")
        with conn.cursor() as cursor:
            schema = sql.Identifier(audit)
            cursor.execute(sql.SQL("drop schema if exists {0} cascade; create schema {0}").format(schema))
            for model in models:
                published = sql.Identifier(MARTS_SCHEMA, model.name)
                staged = sql.Identifier(audit, model.name)
                cursor.execute(sql.SQL("create table {} (like {} including defaults)").format(staged, published))
                cursor.execute(
                    sql.SQL("insert into {} select * from {} where {}").format(
                        staged, published, range_predicate(model.column, model.column_type, quarters, None)
                    )
                )

    def _fail(self, ids: list[int], outcome: BatchOutcome, result: DbtResult | None) -> None:
        error = "; ".join(outcome.problems)[:2000]
        self.ledger_do(
            self.ledger.update_windows,
            ids,
            status="failed",
            error=error,
            finished_at=NOW,
            seconds=round(outcome.seconds, 3),
            dbt_invocation_id=result.invocation_id if result else None,
        )

    def _publish(
        self,
        conn,
        audit: str,
        selected: Sequence[MartModel],
        entries: list[WindowPlan],
        ids: list[int],
        result: DbtResult,
        outcome: BatchOutcome,
    ) -> int:
        """Replace the window's published rows with the tested ones, keep the old ones, update the
        ledger: one transaction."""
        outcome_started = time.perf_counter() - outcome.seconds
        window, stations = entries[0].window, self.request.stations
        published = []
        inserted_by_model: dict[str, int] = {}
        conn.autocommit = False
        try:
            with conn.cursor() as cursor:
                # the same writer locks dbt's window_replace takes: no plain dbt build interleaves
                writer_locks(cursor, [model.name for model in selected])
                for model in selected:
                    bounds = window.widened(model.grain)
                    predicate = range_predicate(model.column, model.column_type, bounds, stations)
                    target = sql.Identifier(MARTS_SCHEMA, model.name)
                    backup_name = f"r{self.run_id}_b{outcome.batch}__{model.name}"[:63]
                    backup = sql.Identifier(BACKUP_SCHEMA, backup_name)
                    cursor.execute(sql.SQL("drop table if exists {}").format(backup))
                    keep = sql.SQL("create table {} as select * from {} where {}").format(backup, target, predicate)
                    cursor.execute(keep)
                    replaced = cursor.rowcount
                    cursor.execute(sql.SQL("delete from {} where {}").format(target, predicate))
                    columns = _columns(cursor, MARTS_SCHEMA, model.name)
                    cursor.execute(
                        sql.SQL("insert into {} ({cols}) select {cols} from {} where {}").format(
                            target, sql.Identifier(audit, model.name), predicate, cols=columns
                        )
                    )
                    inserted_by_model[model.name] = cursor.rowcount
                    published.append(
                        {
                            "model": model.name,
                            "column": model.column,
                            "column_type": model.column_type,
                            "start": bounds.start.isoformat(),
                            "end": bounds.end.isoformat(),
                            "stations": stations,
                            "backup": backup_name,
                            "rows_replaced": replaced,
                            "rows_inserted": cursor.rowcount,
                        }
                    )
                # what dbt recorded for the audit schema is now the published models' record
                adopt_audit_changes(cursor, audit, MARTS_SCHEMA)
                for entry, window_id in zip(entries, ids, strict=True):
                    product_models = [m for m in selected if m.product == entry.product]
                    checksum = "".join(_checksum(cursor, m, window, stations) for m in product_models)
                    hourly = self.catalogue.hourly_fact(entry.product).name
                    self.ledger.update_windows(
                        [window_id],
                        cursor=cursor,
                        status="succeeded",
                        rows_built=inserted_by_model.get(hourly, 0),
                        checksum=checksum,
                        raw_watermark=entry.raw_watermark,
                        finished_at=NOW,
                        seconds=round(time.perf_counter() - outcome_started, 3),
                        dbt_invocation_id=result.invocation_id,
                        published=published,
                        error=None,
                    )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True
        return sum(inserted_by_model.get(self.catalogue.hourly_fact(entry.product).name, 0) for entry in entries)


def run_backfill(connection: db.Connection, request: Request, progress: Progress | None = None) -> RunSummary:
    """Load, plan and build the request's windows; the ledger records every step."""
    progress = progress or Progress()
    started = time.perf_counter()
    with Ledger(connection) as ledger:
        ledger.ensure()
        ledger.reap()
        run_id = ledger.start_run("run", request.arguments())
        summary = RunSummary(run_id, plan=Plan(request, [], [], 0.0, False))
        try:
            rows_loaded, station_rows = _load(connection, ledger, run_id, request, progress)
            summary.rows_loaded = rows_loaded
            summary.load_seconds = time.perf_counter() - started
            catalogue_ = catalogue(connection)
            run_dir = backfill_target(connection.database, f"run_{run_id}")
            ensure_relations(connection, catalogue_, run_dir, refresh_stations=station_rows > 0)
            plan = make_plan(connection, request, ledger, catalogue_)
            summary.plan = plan
            batches = plan.batches()
            window_ids: dict[int, dict[str, int]] = {}
            for batch, entries in batches.items():
                window_ids[batch] = {
                    entry.product: ledger.add_window(
                        run_id, batch, entry.product, request.stations, "marts", entry.window.start, entry.window.end
                    )
                    for entry in entries
                }
            ledger.execute(
                "update ops.backfill_runs set windows_total = %s, estimated_seconds = %s where run_id = %s",
                (len(plan.entries), round(plan.estimated_seconds, 1), run_id),
            )
            progress.started(plan)
            runner = Runner(connection, ledger, run_id, request, catalogue_)
            with ThreadPoolExecutor(max_workers=request.parallel) as pool:
                futures = [
                    pool.submit(_run_group, runner, group, batches, window_ids, progress, summary)
                    for group in _groups(batches)
                ]
                for future in as_completed(futures):
                    future.result()
            summary.seconds = time.perf_counter() - started
            failed = summary.windows_failed > 0
            ledger.finish_run(
                run_id,
                "failed" if failed else "succeeded",
                error=f"{summary.windows_failed} window(s) failed" if failed else None,
                windows_succeeded=summary.windows_ok,
                windows_failed=summary.windows_failed,
                windows_skipped=summary.windows_skipped,
                rows_loaded=summary.rows_loaded,
                rows_built=summary.rows_built,
            )
        except BaseException as error:
            summary.seconds = time.perf_counter() - started
            interrupted = isinstance(error, KeyboardInterrupt)
            message = ("interrupted: " if interrupted else "") + (str(error).splitlines() or [type(error).__name__])[0]
            ledger.execute(
                "update ops.backfill_windows set status = 'failed', error = %s, finished_at = now()"
                " where run_id = %s and status in ('planned', 'running')",
                (message, run_id),
            )
            ledger.finish_run(run_id, "failed", error=message)
            raise
    return summary


def _groups(batches: dict[int, list[WindowPlan]]) -> list[list[int]]:
    """Batches that share a quarter run one after another (they write the same quarterly rows)."""
    groups: dict[date, list[int]] = {}
    for batch, entries in sorted(batches.items()):
        groups.setdefault(entries[0].window.quarters()[0], []).append(batch)
    return list(groups.values())


def _run_group(runner: Runner, group, batches, window_ids, progress: Progress, summary: RunSummary) -> None:
    for batch in group:
        outcome = runner.batch(batch, batches[batch], window_ids[batch])
        with runner.ledger_lock:
            summary.outcomes.append(outcome)
        progress.batch_done(outcome)


def _load(
    connection: db.Connection, ledger: Ledger, run_id: int, request: Request, progress: Progress
) -> tuple[int, int]:
    """The raw layer: one dlt load of the whole range (DWD archives hold whole station histories, so
    loading per window would fetch every archive once per window). Returns (rows, station-list rows)."""
    if not request.load:
        return 0, 0
    ids = {
        product: ledger.add_window(run_id, 0, product, request.stations, "raw", request.start, request.end, "running")
        for product in request.products
    }
    progress.loading()
    try:
        # one dlt load at a time per warehouse: load_dwd holds the warehouse's load lock
        result = load_dwd(
            request.base_url,
            parse_products(request.products),
            set(request.stations) if request.stations else None,
            make_window(request.start, request.end),
            connection,
        )
    except Exception as error:
        ledger.update_windows(list(ids.values()), status="failed", error=str(error)[:2000], finished_at=NOW)
        raise BackfillFailed(f"raw load failed: {str(error).splitlines()[0] if str(error) else error!r}") from error
    failed_files = result.stats.files_failed
    for product, window_id in ids.items():
        ledger.update_windows(
            [window_id],
            status="failed" if failed_files else "succeeded",
            rows_loaded=result.stats.rows_by_table.get(product, 0),
            finished_at=NOW,
            seconds=round(result.seconds, 3),
            error=f"{len(failed_files)} files could not be fetched" if failed_files else None,
        )
    if failed_files:
        raise BackfillFailed(
            f"raw load: {len(failed_files)} files could not be fetched ({', '.join(failed_files[:3])}); "
            "rerun the same command to retry them"
        )
    return result.rows_loaded, result.stats.rows_by_table.get("station_lists", 0)


# ---- restore ------------------------------------------------------------------------------------


@dataclass
class RestoreSummary:
    run_id: int
    restore_run_id: int
    windows: int
    rows_restored: int
    rows_removed: int


def restore(connection: db.Connection, run_id: int, force: bool = False, wait: float = 0.0) -> RestoreSummary:
    """Put back the rows the run's published windows replaced (kept in ``ops_backup``)."""
    with Ledger(connection) as ledger:
        if not ledger.exists() or ledger.run(run_id) is None:
            raise BackfillRequestError(f"no backfill run {run_id} (list runs with: weatherinsight backfill runs)")
        ledger.reap()
        run = ledger.run(run_id)
        if run["command"] != "run":
            raise BackfillRequestError(f"run {run_id} is a {run['command']}, not a backfill run")
        rows = ledger.dicts(
            "select * from ops.backfill_windows where run_id = %s and layer = 'marts' and status = 'succeeded'"
            " order by batch desc, window_id desc",
            (run_id,),
        )
        if not rows:
            raise BackfillFailed(f"run {run_id} has no published windows to restore (status: {run['status']})")
        if not force:
            later = ledger.all(
                "select distinct later.run_id from ops.backfill_windows as later join ops.backfill_windows as mine"
                " on later.window_start < mine.window_end and mine.window_start < later.window_end"
                " where mine.run_id = %s and mine.status = 'succeeded' and mine.layer = 'marts'"
                " and later.run_id > %s and later.layer = 'marts' and later.status = 'succeeded' order by 1",
                (run_id, run_id),
            )
            if later:
                raise BackfillFailed(
                    f"run(s) {', '.join(str(r[0]) for r in later)} published overlapping windows after run {run_id}; "
                    "restore those first, or pass --force"
                )
        entries: dict[str, dict] = {}
        for row in rows:
            for item in row["published"] or []:
                entries.setdefault(item["backup"], item)
        restore_id = ledger.start_run("restore", {"run_id": run_id, "force": force})
        keys = sorted(
            {
                key
                for item in entries.values()
                for key in window_lock_keys(
                    [item["model"]], Window(date.fromisoformat(item["start"]), date.fromisoformat(item["end"]))
                )
            }
        )
        conn = db.connect(connection)
        conn.autocommit = True
        restored = removed = 0
        try:
            with WindowLocks(conn, keys, f"the windows of run {run_id}", wait):
                conn.autocommit = False
                with conn.cursor() as cursor:
                    writer_locks(cursor, [item["model"] for item in entries.values()])
                    for item in entries.values():
                        window = Window(date.fromisoformat(item["start"]), date.fromisoformat(item["end"]))
                        predicate = range_predicate(item["column"], item["column_type"], window, item["stations"])
                        target = sql.Identifier(MARTS_SCHEMA, item["model"])
                        cursor.execute(sql.SQL("delete from {} where {}").format(target, predicate))
                        removed += cursor.rowcount
                        columns = _columns(cursor, MARTS_SCHEMA, item["model"])
                        cursor.execute(
                            sql.SQL("insert into {} ({cols}) select {cols} from {}").format(
                                target, sql.Identifier(BACKUP_SCHEMA, item["backup"]), cols=columns
                            )
                        )
                        restored += cursor.rowcount
                    # what the restored builds processed counts as unprocessed again
                    forget_processed(cursor, [row["dbt_invocation_id"] for row in rows], MARTS_SCHEMA)
                    cursor.execute(
                        "update ops.backfill_windows set status = 'rolled back', error = %s"
                        " where run_id = %s and layer = 'marts' and status = 'succeeded'",
                        (f"restored by run {restore_id}", run_id),
                    )
                    cursor.execute(
                        "update ops.backfill_runs set status = 'rolled back', error = %s where run_id = %s",
                        (f"restored by run {restore_id}", run_id),
                    )
                conn.commit()
        except BaseException as error:
            conn.rollback()
            ledger.finish_run(restore_id, "failed", error=str(error).splitlines()[0] if str(error) else repr(error))
            raise
        finally:
            conn.close()
        ledger.finish_run(
            restore_id, "succeeded", windows_total=len(rows), windows_succeeded=len(rows), rows_built=restored
        )
    return RestoreSummary(run_id, restore_id, len(rows), restored, removed)


def resume_request(connection: db.Connection, run_id: int | None) -> tuple[int, Request] | None:
    """The request of ``run_id`` (default: the latest run if it failed or was interrupted), retrying
    failed windows; None when there is nothing to resume."""
    with Ledger(connection) as ledger:
        if not ledger.exists():
            if run_id is not None:
                raise BackfillRequestError(f"no backfill run {run_id}: no backfill has run yet")
            return None
        ledger.reap()
        if run_id is None:
            run = ledger.latest_unfinished_run()
            if run is None:
                return None
        else:
            run = ledger.run(run_id)
            if run is None:
                raise BackfillRequestError(f"no backfill run {run_id} (list runs with: weatherinsight backfill runs)")
        if run["command"] != "run":
            raise BackfillRequestError(f"run {run['run_id']} is a {run['command']}, not a backfill run")
        request = Request.from_arguments(run["arguments"])
        request.retry_failed = True
        return run["run_id"], request
