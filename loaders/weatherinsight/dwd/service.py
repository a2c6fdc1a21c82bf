"""The DWD load as one call: the warehouse's pipeline and state, a plan from the listings and that
state, the dlt run, the summary. The CLI imports only this module; what it shows (plans, progress,
files) is re-exported here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dlt
import requests
from dlt.common.pipeline import LoadInfo
from dlt.common.schema.typing import PIPELINE_STATE_TABLE_NAME
from dlt.common.storages.load_package import PackageStorage

from weatherinsight import db, lake
from weatherinsight.dwd import dwd_hourly
from weatherinsight.dwd.indexes import ensure_raw_indexes
from weatherinsight.dwd.listing import SourceUnreachable, make_client
from weatherinsight.dwd.parser import TimeWindow
from weatherinsight.dwd.plan import LoadPlan, load_window, plan_load
from weatherinsight.dwd.progress import LoadProgress, LoadStats
from weatherinsight.dwd.settings import (
    DATASET_NAME,
    DEFAULT_BASE_URL,
    PIPELINE_NAME,
    PRODUCTS,
    Product,
    resolve_product,
    source_config,
)
from weatherinsight.dwd.tasks import FileTask
from weatherinsight.dwd.upgrade import tables_missing_columns, tables_to_upgrade, upgrade_raw_tables
from weatherinsight.errors import RequestError

__all__ = [
    "FileTask",
    "LoadPlan",
    "LoadProgress",
    "LoadRequestError",
    "LoadResult",
    "SourceUnreachable",
    "inspect_command",
    "load_dwd",
    "make_window",
    "parse_products",
    "parse_stations",
]

log = logging.getLogger(__name__)

#: advisory lock (in the warehouse) that one load holds from planning to the end of its dlt run
LOAD_LOCK = "weatherinsight.load:dwd"


class LoadRequestError(RequestError):
    """The request itself is wrong (unknown product or station, bad window…): a usage error."""


@dataclass
class LoadResult:
    """What a load did, for the summary."""

    plan: LoadPlan
    stats: LoadStats = field(default_factory=LoadStats)
    seconds: float = 0.0
    load_info: LoadInfo | None = None
    dry_run: bool = False

    @property
    def rows_loaded(self) -> int:
        return sum(rows for table, rows in self.stats.rows_by_table.items() if table != "station_lists")


def configured_base_url() -> str:
    """Where the loader fetches from: ``[sources.dwd_hourly] base_url`` in dlt's config, else DWD's server."""
    return source_config("base_url", DEFAULT_BASE_URL)


def parse_products(names: str | Sequence[str] | None) -> list[Product]:
    if not names:
        return list(PRODUCTS.values())
    items = names.split(",") if isinstance(names, str) else list(names)
    products = []
    for name in (item for item in items if item.strip()):
        try:
            product = resolve_product(name)
        except KeyError:
            known = ", ".join(PRODUCTS)
            raise LoadRequestError(f"unknown product {name.strip()!r} (known: {known})") from None
        if product not in products:
            products.append(product)
    return products


def parse_stations(ids: str | Sequence[int] | None) -> set[int] | None:
    if not ids:
        return None
    items = ids.split(",") if isinstance(ids, str) else list(ids)
    stations = set()
    for item in items:
        text = str(item).strip()
        if not text.isdigit() or not 0 < int(text) < 100_000:
            raise LoadRequestError(f"invalid station id {text!r} (expected a DWD station number such as 44 or 01975)")
        stations.add(int(text))
    return stations


def make_window(start: date | None, end: date | None) -> TimeWindow:
    if start is not None and end is not None and end <= start:
        raise LoadRequestError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    return load_window(start, end)


def pipeline_name(connection: db.ConnectionSettings, source: str = PIPELINE_NAME) -> str:
    """``dwd_hourly_<warehouse>`` (or ``<source>_<warehouse>``): one pipeline per warehouse (server and
    database).

    dlt keeps a local copy of each pipeline's state; naming the pipeline after the warehouse's own
    id (see :func:`weatherinsight.db.warehouse_id`) means two servers, two databases of the same name,
    or a database dropped and made again never read each other's local state.
    """
    return f"{source}_{db.warehouse_id(connection).replace('-', '')[:8]}"


def make_pipeline(
    connection: db.ConnectionSettings,
    folder: str | Path | None = None,
    source: str = PIPELINE_NAME,
    dataset: str = DATASET_NAME,
) -> dlt.Pipeline:
    """This warehouse's pipeline of ``source`` (default DWD's), writing to its ``dataset``."""
    return dlt.pipeline(
        pipeline_name=pipeline_name(connection, source),
        destination=dlt.destinations.postgres(credentials=connection.dlt_credentials),
        dataset_name=dataset,
        pipelines_dir=str(folder or db.pipelines_dir()),
    )


def inspect_command(
    connection: db.ConnectionSettings | None, folder: str | Path | None = None, lake_url: str | None = None
) -> str:
    """The dlt command that shows this warehouse's (or lake's) pipeline."""
    name = lake.pipeline_name(lake_url, PIPELINE_NAME) if lake_url else pipeline_name(connection)
    return f"dlt pipeline --pipelines-dir {folder or db.pipelines_dir()} {name} info"


def state_from_warehouse(pipeline: dlt.Pipeline) -> dlt.Pipeline:
    """Make the warehouse's copy of the loader state the one this load plans with.

    dlt restores state from the destination only when the destination's version is higher than the
    local one, so a local copy written elsewhere could win. Packages of an interrupted load are
    loaded first (their rows and state belong to this warehouse); then the local working folder is
    dropped and the state restored from the warehouse.
    """
    if pipeline.has_pending_data:
        log.info("finishing the interrupted load of %s first", pipeline.pipeline_name)
        pipeline.normalize()  # packages killed before their load keep the file formats they were extracted in
        resumed, state_again = interrupted_jobs(pipeline)
        forget_state_rows_stored_again(pipeline, state_again)
        pipeline.load()
        drop_rows_stored_twice(pipeline, resumed)
    pipeline = pipeline.drop()
    pipeline.sync_destination()
    return pipeline


def interrupted_jobs(pipeline: dlt.Pipeline) -> tuple[dict[str, set[str]], list[str]]:
    """What dlt runs again of the pending loads, read once: per load, the data tables with a job
    under way when the load was interrupted (the destination may have committed it already: a kill
    between its commit and dlt noting it), and the loads whose state job runs again (not noted done,
    no pending-transition marker either: dlt notes a committed job with one before it moves it)."""
    started: dict[str, set[str]] = {}
    state_again: list[str] = []
    for load_id in pipeline.list_normalized_load_packages():
        package = pipeline.get_load_package_info(load_id)
        tables = {job.job_file_info.table_name for job in package.jobs.get("started_jobs", [])}
        if tables - {PIPELINE_STATE_TABLE_NAME}:
            started[load_id] = tables - {PIPELINE_STATE_TABLE_NAME}
        noted = Path(package.package_path) / PackageStorage.PENDING_TRANSITIONS_FOLDER
        state_jobs = [
            Path(job.file_path).name
            for state in ("new_jobs", "started_jobs")
            for job in package.jobs.get(state, [])
            if job.job_file_info.table_name == PIPELINE_STATE_TABLE_NAME
        ]
        if any(not (noted / name).exists() for name in state_jobs):
            state_again.append(load_id)
    return started, state_again


def forget_state_rows_stored_again(pipeline: dlt.Pipeline, loads: list[str]) -> None:
    """Remove the state row of each of ``loads``, whose state job dlt runs again: a kill between
    that job's commit and dlt noting it leaves the row stored, and the state table's unique
    ``_dlt_id`` would fail the job run again -- and every load after it. The row run again is the
    same one, from the same job file. Only on PostgreSQL (see drop_rows_stored_twice)."""
    if not loads or pipeline.destination.destination_name != "postgres":
        return
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(PIPELINE_STATE_TABLE_NAME)
        if client.execute_sql("select to_regclass(%s)", name)[0][0] is None:
            return
        for load_id in loads:
            client.execute_sql(f"delete from {name} where _dlt_load_id = %s", load_id)


def drop_rows_stored_twice(pipeline: dlt.Pipeline, started: dict[str, set[str]]) -> None:
    """Remove the second copy of rows a job run again has stored twice (identical in every column,
    load id included: within one load no two rows are alike, each carries its file and line or its
    request). Only on PostgreSQL: a file destination rewrites the job's file under the same name."""
    if not started or pipeline.destination.destination_name != "postgres":
        return
    with pipeline.sql_client() as client:
        for load_id, tables in started.items():
            for table in sorted(tables):
                name = client.make_qualified_table_name(table)
                removed = client.execute_sql(
                    f"""
                    with removed as (
                        delete from {name} where ctid in (
                            select ctid from (
                                select ctid, row_number() over (partition by stored::text) as copy
                                from {name} as stored where stored._dlt_load_id = %s
                            ) as copies
                            where copy > 1
                        )
                        returning 1
                    )
                    select count(*) from removed
                    """,
                    load_id,
                )[0][0]
                if removed:
                    log.warning("load %s: %d row(s) of %s were stored twice by the resumed load; removed", load_id,
                                removed, table)  # fmt: skip


def known_files(pipeline: dlt.Pipeline) -> dict:
    """Files already loaded, per the loader state (the source's state keeps its name, ``dwd_hourly``)."""
    return dict(pipeline.state.get("sources", {}).get(PIPELINE_NAME, {}).get("files", {}))


def load_dwd(
    base_url: str,
    products: list[Product],
    stations: set[int] | None,
    window: TimeWindow,
    connection: db.ConnectionSettings | None,
    dry_run: bool = False,
    progress_factory: Callable[[LoadPlan], LoadProgress] | None = None,
    pipelines_dir: str | Path | None = None,
    session: requests.Session | None = None,
    lake_url: str | None = None,
) -> LoadResult:
    """Load DWD hourly observations for ``products``, ``stations`` and ``window`` into ``raw_dwd``:
    the warehouse's (``connection``), or a lake's (``lake_url``: parquet through dlt's filesystem
    destination, for the ``spark`` target)."""
    started = time.perf_counter()
    if lake_url is not None:
        lake.check_writable(lake_url)  # one line before anything is fetched
        lock = lake.load_lock(lake_url)
    else:
        db.connect(connection).close()  # fail fast, with one line, before touching anything
        # one load at a time per warehouse: a second one (another checkout, a backfill) waits here and
        # then plans from the state the first one left in the warehouse
        lock = db.advisory_lock(connection, LOAD_LOCK, on_wait=lambda: log.warning("waiting for another load"))
    session = session or make_client()
    with lock:
        # the pipeline's local folder is set up only under the lock: two loads making it at once
        # would each see the other's half-written folder
        if lake_url is not None:
            pipeline = lake.make_pipeline(lake_url, PIPELINE_NAME, DATASET_NAME, pipelines_dir)
        else:
            pipeline = make_pipeline(connection, pipelines_dir)
        pipeline = state_from_warehouse(pipeline)
        known = known_files(pipeline)
        plan = plan_load(session, base_url, products, stations, window, known)
        unknown = sorted(stations - plan.stations_seen) if stations else []
        if unknown:
            names = ", ".join(product.name for product in products)
            raise LoadRequestError(
                f"no archives for station(s) {', '.join(map(str, unknown))} in {names} on {base_url}"
            )
        result = LoadResult(plan=plan, dry_run=dry_run)
        first_load = not known
        # raw tables of an earlier layout: the run below adds delivery_id, then their rows are keyed
        old_layout = tables_to_upgrade(connection) if lake_url is None else []
        behind = lake_url is None and not first_load and not plan.tasks and tables_missing_columns(connection)
        if dry_run or (not plan.tasks and not first_load and not old_layout and not behind):
            result.seconds = time.perf_counter() - started
            return result
        progress = progress_factory(plan) if progress_factory else LoadProgress()
        file_format = "csv" if lake_url is None else "parquet"
        source = dwd_hourly(
            base_url, plan=plan, session=session, stats=result.stats, progress=progress, file_format=file_format
        )
        result.load_info = pipeline.run(source, loader_file_format=file_format)
        if lake_url is None:
            if old_layout:
                upgrade_raw_tables(connection, old_layout)
            ensure_raw_indexes(connection, analyze=[*result.stats.rows_by_table, *old_layout])
    result.seconds = time.perf_counter() - started
    return result
