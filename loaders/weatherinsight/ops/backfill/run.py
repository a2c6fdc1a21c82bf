"""Backfills as one command: load raw with dlt, plan the windows from every published layer and the
ledger, build each window with dbt into an audit schema, test it there, and publish it only when
its tests pass.

Per window (a batch: one time window, the products that need it):

1. take the window's locks (:mod:`weatherinsight.ops.backfill.locks`): a second run on an overlapping window
   waits (``--wait``) or refuses, and never interleaves;
2. stage the published rows of the window's quarters of every model involved in
   ``audit_r<run>_b<batch>`` (:mod:`weatherinsight.ops.backfill.publish`);
3. ``dbt build`` the products' hourly facts and their downstream marts there, with window vars and
   every data test that guards the rows (:mod:`weatherinsight.ops.backfill.build`), in a dbt worker that
   parsed the project once for the whole run (:mod:`weatherinsight.ops.dbt.worker`);
4. if every test passed: publish in one transaction (replaced rows kept in ``ops_backup``, ledger
   windows succeeded with row counts and checksums); else leave the marts untouched and mark the
   windows failed with the failing tests. Test results land in ``ops.data_quality_results``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.service import load_dwd, make_window, parse_products
from weatherinsight.openmeteo.service import load_openmeteo
from weatherinsight.ops.backfill.build import build_window, ensure_relations
from weatherinsight.ops.backfill.catalogue import Catalogue, load_catalogue
from weatherinsight.ops.backfill.changes import forget_audit_changes
from weatherinsight.ops.backfill.errors import BackfillFailed
from weatherinsight.ops.backfill.ledger import AUDIT_PREFIX, BUSY, INTERRUPTED, NOW, Ledger
from weatherinsight.ops.backfill.locks import WindowBusy, WindowLocks, window_lock_keys
from weatherinsight.ops.backfill.plan import BackfillPlan, WindowPlan, make_plan
from weatherinsight.ops.backfill.publish import Published, checksum, publish_window, stage_audit_schema
from weatherinsight.ops.backfill.request import Request
from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS
from weatherinsight.ops.dbt import DbtResult, backfill_target
from weatherinsight.ops.dbt.worker import DbtWorkers
from weatherinsight.windows import Window

#: how every statement dbt sends begins (dbt's default query comment): tells dbt's sessions apart
DBT_QUERY_COMMENT = '/* {"app": "dbt"'


@dataclass
class BatchOutcome:
    batch: int
    window: Window
    products: list[str]
    ok: bool
    rows_built: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    #: where the window's wall time went: stage, parse, dbt (its models, tests), publish, other
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: int
    plan: BackfillPlan
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


class BackfillProgress:
    """Callbacks of a run (the CLI draws a bar with them)."""

    def loading(self) -> None: ...

    def started(self, plan: BackfillPlan) -> None: ...

    def batch_done(self, outcome: BatchOutcome) -> None: ...


def run_backfill(
    connection: db.ConnectionSettings, request: Request, progress: BackfillProgress | None = None
) -> RunSummary:
    """Load, plan and build the request's windows; the ledger records every step."""
    progress = progress or BackfillProgress()
    started = time.perf_counter()
    with Ledger(connection) as ledger:
        ledger.ensure()
        ledger.reap()
        run_id = ledger.start_run("run", request.arguments())
        summary = RunSummary(run_id, plan=BackfillPlan(request, [], [], 0.0, False))
        run_dir = backfill_target(connection.database, f"run_{run_id}")
        try:
            with DbtWorkers(connection, run_dir, request.parallel) as workers:
                workers.start_parsing()  # dbt starts and parses while raw loads and the plan is made
                summary.rows_loaded, station_rows = load_raw(connection, ledger, run_id, request, progress)
                summary.load_seconds = time.perf_counter() - started
                catalogue = load_catalogue(connection)
                ensure_relations(connection, workers.first, catalogue, run_dir, station_rows > 0, request.products)
                summary.plan = make_plan(connection, request, ledger, catalogue)
                runner = Runner(connection, ledger, run_id, request, catalogue, workers)
                _build_batches(runner, summary, progress)
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
            if isinstance(error, KeyboardInterrupt):
                message = f"{INTERRUPTED}: stopped by Ctrl-C (SIGINT); `weatherinsight backfill resume` finishes it"
            else:
                message = (str(error).splitlines() or [type(error).__name__])[0]
            ledger.fail_run(run_id, message)
            raise
    return summary


def _build_batches(runner: Runner, summary: RunSummary, progress: BackfillProgress) -> None:
    """The plan's batches, in ledger windows, built by ``--parallel`` workers; batches sharing a
    quarter one after another."""
    plan, ledger, request = summary.plan, runner.ledger, runner.request
    batches = plan.batches()
    window_ids = {
        batch: {
            entry.product: ledger.add_window(
                runner.run_id,
                batch,
                entry.product,
                request.ids_for(entry.product),
                "marts",
                entry.window.start,
                entry.window.end,
            )
            for entry in entries
        }
        for batch, entries in batches.items()
    }
    ledger.set_run_plan(runner.run_id, len(plan.entries), plan.estimated_seconds)
    progress.started(plan)

    stopping = threading.Event()

    def run_group(group: list[int]) -> None:
        for batch in group:
            if stopping.is_set():  # Ctrl-C or a failed lane: start no further window
                return
            outcome = runner.batch(batch, batches[batch], window_ids[batch])
            with runner.ledger_lock:
                summary.outcomes.append(outcome)
            progress.batch_done(outcome)

    with ThreadPoolExecutor(max_workers=request.parallel) as pool:
        try:
            for future in as_completed([pool.submit(run_group, group) for group in _groups(batches)]):
                future.result()
        except BaseException as error:
            stopping.set()
            if isinstance(error, KeyboardInterrupt):  # stop now, not after the windows under way
                runner.stop_now()
            raise


def _groups(batches: dict[int, list[WindowPlan]]) -> list[list[int]]:
    """Batches that share a quarter run one after another (they write the same quarterly rows)."""
    groups: dict[date, list[int]] = {}
    for batch, entries in sorted(batches.items()):
        groups.setdefault(entries[0].window.quarters()[0], []).append(batch)
    return list(groups.values())


class Runner:
    """Executes a plan's batches for one run: locks, stage, build, test, publish or fail."""

    def __init__(
        self,
        connection: db.ConnectionSettings,
        ledger: Ledger,
        run_id: int,
        request: Request,
        catalogue: Catalogue,
        workers: DbtWorkers,
    ) -> None:
        self.connection, self.ledger, self.run_id, self.request = connection, ledger, run_id, request
        self.catalogue, self.workers = catalogue, workers
        self.run_dir = backfill_target(connection.database, f"run_{run_id}")
        self.ledger_lock = threading.Lock()
        self.connections: set = set()  # the windows' connections under way, to cancel on Ctrl-C

    def stop_now(self) -> None:
        """Ctrl-C: cancel the windows' statements (a publish rolls back, a lock wait ends) and stop
        dbt, so their threads end now instead of when the window would have. A killed dbt leaves its
        server session running (a session notices a dead client only when it next answers), holding
        locks in the audit schema the window then drops: those sessions are ended too."""
        for conn in list(self.connections):
            conn.cancel()
        self.workers.kill()
        conn = db.connect(self.connection)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                # dbt's sessions only (its statements open with its query comment): the windows' own
                # connections are dropping their audit schemas right now
                cursor.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database()"
                    " and pid <> pg_backend_pid() and starts_with(query, %s) and query like %s",
                    (DBT_QUERY_COMMENT, f"%{AUDIT_PREFIX}{self.run_id}_b%"),
                )
        finally:
            conn.close()

    def ledger_do(self, method: Callable, *args, **kwargs):
        with self.ledger_lock:  # one ledger connection, shared by the worker threads
            return method(*args, **kwargs)

    def batch(self, batch: int, entries: list[WindowPlan], window_ids: dict[str, int]) -> BatchOutcome:
        started = time.perf_counter()
        window = entries[0].window
        products = [entry.product for entry in entries]
        ids = [window_ids[product] for product in products]
        selected = self.catalogue.selection(products)
        outcome = BatchOutcome(batch, window, products, ok=False)
        conn = db.connect(self.connection)
        conn.autocommit = True
        self.connections.add(conn)
        audit = f"{AUDIT_PREFIX}{self.run_id}_b{batch}"
        what = f"window {window.label} ({', '.join(products)})"
        try:
            keys = window_lock_keys([model.name for model in selected], window)
            with WindowLocks(conn, keys, what, self.request.wait):
                self.ledger_do(self.ledger.update_windows, ids, status="running", started_at=NOW)
                staged = time.perf_counter()
                stage_audit_schema(conn, audit, selected + self.catalogue.inputs(selected), window)
                outcome.timings["stage"] = time.perf_counter() - staged
                target = self.run_dir / f"batch_{batch}"
                with self.workers.lane() as worker:
                    result = build_window(worker, selected, window, products, self.request.ids(), audit, target)
                outcome.timings.update(
                    parse=result.parse_seconds,
                    dbt=result.seconds - result.parse_seconds,
                    dbt_execution=result.execution_seconds or 0.0,
                    models=result.model_seconds(),
                )
                self.ledger_do(
                    self.ledger.record_test_results,
                    self.run_id, batch, products, window.start, window.end, result.invocation_id, result.tests(),
                )  # fmt: skip
                outcome.seconds = time.perf_counter() - started
                if result.ok:
                    published = time.perf_counter()
                    outcome.rows_built = self._publish(conn, audit, entries, ids, result, started)
                    outcome.timings["publish"] = time.perf_counter() - published
                    outcome.ok = True
                else:
                    outcome.problems = result.problems() or [result.first_error_line()]
                    self._fail(ids, outcome, result)
        except WindowBusy as error:
            outcome.problems = [f"{BUSY}: {error}"]
            self._fail(ids, outcome, None)
        finally:
            self.connections.discard(conn)
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(audit)))
                forget_audit_changes(cursor, audit)
            conn.close()
        outcome.seconds = time.perf_counter() - started
        return outcome

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
        self, conn, audit: str, entries: list[WindowPlan], ids: list[int], result: DbtResult, started: float
    ) -> int:
        """Publish the window and mark its ledger windows succeeded, in one transaction; the hourly
        rows published."""
        window, scope = entries[0].window, self.request.ids()
        products = [entry.product for entry in entries]
        selected = self.catalogue.selection(products)

        def record(cursor, published: Published) -> None:
            for entry, window_id in zip(entries, ids, strict=True):
                product_models = [model for model in selected if model.product == entry.product]
                self.ledger.update_windows(
                    [window_id],
                    cursor=cursor,
                    status="succeeded",
                    rows_built=published.rows_by_model.get(self.catalogue.hourly_fact(entry.product).name, 0),
                    checksum="".join(checksum(cursor, model, window, scope) for model in product_models),
                    raw_watermark=entry.raw_watermark,
                    finished_at=NOW,
                    seconds=round(time.perf_counter() - started, 3),
                    dbt_invocation_id=result.invocation_id,
                    published=published.models,
                    error=None,
                )

        published = publish_window(conn, audit, selected, window, scope, f"r{self.run_id}_b{entries[0].batch}", record)
        return sum(published.rows_by_model.get(self.catalogue.hourly_fact(p).name, 0) for p in products)


def load_raw(
    connection: db.ConnectionSettings, ledger: Ledger, run_id: int, request: Request, progress: BackfillProgress
) -> tuple[int, int]:
    """The raw layer: one load of the whole range per source (DWD archives hold whole station
    histories, so loading per window would fetch every archive once per window; Open-Meteo loads
    fetch only the days the warehouse lacks). Returns (rows, station-list rows)."""
    if not request.load:
        return 0, 0
    ids = {
        product: ledger.add_window(
            run_id, 0, product, request.ids_for(product), "raw", request.start, request.end, "running"
        )
        for product in request.products
    }
    progress.loading()
    dwd = [product for product in request.products if product not in OPENMETEO_PRODUCTS]
    rows = station_rows = 0
    if dwd:
        rows, station_rows = _load_dwd(connection, ledger, request, dwd, {p: ids[p] for p in dwd})
    open_meteo = [product for product in request.products if product in OPENMETEO_PRODUCTS]
    if open_meteo:
        rows += _load_openmeteo(connection, ledger, request, open_meteo, {p: ids[p] for p in open_meteo})
    return rows, station_rows


def _load_dwd(
    connection: db.ConnectionSettings, ledger: Ledger, request: Request, products: list[str], ids: dict[str, int]
) -> tuple[int, int]:
    try:
        # one dlt load at a time per warehouse: load_dwd holds the warehouse's load lock
        result = load_dwd(
            request.base_url,
            parse_products(products),
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


def _load_openmeteo(
    connection: db.ConnectionSettings, ledger: Ledger, request: Request, products: list[str], ids: dict[str, int]
) -> int:
    """The Open-Meteo APIs of ``products`` over the request's range, from the real APIs or
    ``$WEATHERINSIGHT_OPENMETEO_BASE_URL``; the missing days only."""
    apis = [OPENMETEO_PRODUCTS[product] for product in products]
    locations = ",".join(map(str, request.locations)) if request.locations else None
    try:
        result = load_openmeteo(connection, apis, locations, request.start, request.end)
    except Exception as error:
        ledger.update_windows(list(ids.values()), status="failed", error=str(error)[:2000], finished_at=NOW)
        raise BackfillFailed(f"raw load failed: {str(error).splitlines()[0] if str(error) else error!r}") from error
    failed = result.failed
    for product, window_id in ids.items():
        api = OPENMETEO_PRODUCTS[product]
        api_failed = [outcome for outcome in failed if outcome.api == api]
        ledger.update_windows(
            [window_id],
            status="failed" if api_failed else "succeeded",
            rows_loaded=sum(outcome.rows for outcome in result.outcomes if outcome.api == api),
            finished_at=NOW,
            seconds=round(result.seconds, 3),
            error="; ".join(f"location {o.location.location_id}: {o.last_error}" for o in api_failed)[:2000] or None,
        )
    if failed:
        names = ", ".join(f"{outcome.api} location {outcome.location.location_id}" for outcome in failed[:3])
        raise BackfillFailed(f"raw load: {len(failed)} location(s) failed ({names}); rerun the same command")
    return result.rows
