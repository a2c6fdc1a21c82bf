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

from weatherinsight import db, lake, pipelines
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
from weatherinsight.dwd.settle import SettleStats, settle
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
    settled: SettleStats = field(default_factory=SettleStats)
    #: of ``seconds``, those spent settling (comparing with the previous versions and storing)
    settle_seconds: float = 0.0

    @property
    def rows_loaded(self) -> int:
        """Product rows the load took from the archives (delivered)."""
        return sum(rows for table, rows in self.stats.rows_by_table.items() if table != "station_lists")

    @property
    def rows_stored(self) -> int:
        """Product rows raw gained: in the warehouse those that differ from the archive's previous
        version (the rest were confirmed unchanged); in a lake every delivered row."""
        return sum(self.settled.stored.values()) if self.settled.loads else self.rows_loaded


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


def inspect_command(
    connection: db.ConnectionSettings | None, folder: str | Path | None = None, lake_url: str | None = None
) -> str:
    """The dlt command that shows this warehouse's (or lake's) pipeline."""
    name = (
        pipelines.lake_pipeline_name(lake_url, PIPELINE_NAME)
        if lake_url
        else pipelines.pipeline_name(connection, PIPELINE_NAME)
    )
    return f"dlt pipeline --pipelines-dir {folder or db.pipelines_dir()} {name} info"


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
            pipeline = pipelines.make_lake_pipeline(lake_url, PIPELINE_NAME, DATASET_NAME, pipelines_dir)
        else:
            pipeline = pipelines.make_pipeline(connection, PIPELINE_NAME, DATASET_NAME, pipelines_dir)
        pipeline = pipelines.state_from_warehouse(pipeline)
        if lake_url is None and not dry_run:
            # a load whose dlt run completed but whose settling was cut off is settled first
            settle(connection)
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
            base_url,
            plan=plan,
            session=session,
            stats=result.stats,
            progress=progress,
            file_format=file_format,
            staged=lake_url is None,
        )
        result.load_info = pipeline.run(source, loader_file_format=file_format)
        if lake_url is None:
            settling = time.perf_counter()
            result.settled = settle(connection)
            result.settle_seconds = time.perf_counter() - settling
            if old_layout:
                upgrade_raw_tables(connection, old_layout)
            ensure_raw_indexes(connection, analyze=[*result.stats.rows_by_table, *old_layout])
    result.seconds = time.perf_counter() - started
    return result
