"""dlt source for DWD CDC hourly station observations.

``dwd_hourly`` has one resource per product (raw table named after the product), a
``station_lists`` resource, and routes quarantined rows to ``quarantine`` and one row per archive
and load to ``deliveries``. Every delivery is appended with its source file, release and file
version, so any window can be rebuilt from raw without refetching. Loader state (dlt's source
state) remembers each file's version (size, Last-Modified) and the time ranges already loaded from
it: a rerun fetches nothing unchanged and a wider window fetches only what is missing.

Like dlt's verified sources it is configured through dlt's config: ``[sources.dwd_hourly]`` in
``.dlt/config.toml`` (``base_url``, ``http_attempts``, ``http_backoff_seconds``), overridden by
environment variables such as ``SOURCES__DWD_HOURLY__BASE_URL``; run on its own it plans from the
server's listings and its own state::

    pipeline = dlt.pipeline("dwd", destination="postgres", dataset_name="raw_dwd")
    pipeline.run(dwd_hourly(products=["wind"], stations=[1975]), loader_file_format="csv")
    settle(connection)  # weatherinsight.dwd.settle: store what changed from incoming_wind

``weatherinsight load dwd`` (:mod:`weatherinsight.dwd.service`) plans first from the same state,
to show the plan, check the stations and draw a progress bar, and hands the plan in.

Product rows reach dlt as finished CSV load files (``dlt.mark.with_file_import``) with dlt's load id
filled in, up to a million rows each: dlt imports them into the load package as they are and
PostgreSQL's COPY reads them, so dlt's normalize step does not re-read and re-write every row (that
step was half the load time). The rows carry only ``delivery_id``; the per-file facts are one row of
``deliveries`` per archive and load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import dlt
import requests
from dlt.extract.resource import DltResource

from weatherinsight.dwd.archives import LoadFiles, empty_tables, file_rows
from weatherinsight.dwd.listing import make_client
from weatherinsight.dwd.plan import LoadPlan, load_window, plan_load
from weatherinsight.dwd.progress import LoadProgress, LoadStats
from weatherinsight.dwd.settings import PIPELINE_NAME, PRODUCTS, resolve_product
from weatherinsight.dwd.settle import incoming_table
from weatherinsight.dwd.tasks import FileTask

__all__ = ["dwd_hourly", "FileTask", "LoadPlan", "LoadProgress", "LoadStats"]


@dlt.source(name=PIPELINE_NAME, max_table_nesting=0)
def dwd_hourly(
    base_url: str = dlt.config.value,
    products: Sequence[str] | None = None,
    stations: Sequence[int] | None = None,
    start: date | None = None,
    end: date | None = None,
    plan: LoadPlan | None = None,
    session: requests.Session | None = None,
    stats: LoadStats | None = None,
    progress: LoadProgress | None = None,
    file_format: str = "csv",
    staged: bool = True,
) -> list[DltResource]:
    """DWD hourly observations of ``products`` (default: all) at ``stations`` (default: all), the
    hours [``start``, ``end``) (default: all time), from ``base_url`` (DWD's server or a mirror).

    Without a ``plan`` the source lists the server and keeps the files whose version or window its
    state has not loaded (:func:`weatherinsight.dwd.plan.plan_load`). Resources append
    (``write_disposition="append"``): every delivery is recorded, each version of an hour kept once
    (settling) and ranked downstream by dbt; the
    loader state, not a cursor column, decides what is fetched again. ``file_format`` is that of the
    product rows' load files: ``csv`` for PostgreSQL, ``parquet`` for a lake (dlt's filesystem
    destination; run the pipeline with ``loader_file_format="parquet"`` then). ``staged`` (the
    warehouse's way) loads product rows into ``incoming_<product>``, from which
    :func:`weatherinsight.dwd.settle.settle` stores what changed; a lake keeps every delivery
    (``staged=False``).
    """
    session = session or make_client()
    if plan is None:
        known = dict(dlt.current.source_state().get("files", {}))
        chosen = [resolve_product(name) for name in products] if products else list(PRODUCTS.values())
        window = load_window(start, end)
        plan = plan_load(session, base_url, chosen, set(stations) if stations else None, window, known)
    stats = stats if stats is not None else LoadStats()
    progress = progress or LoadProgress()
    by_resource: dict[str, list[FileTask]] = {}
    for task in plan.tasks:
        name = task.product.name if task.kind == "archive" else "station_lists"
        by_resource.setdefault(name, []).append(task)
    resources = [dlt.resource(empty_tables(), name="raw_tables", write_disposition="append")]
    for name, tasks in by_resource.items():
        rows = _task_rows(tasks, session, stats, progress, file_format)
        # a resource's rows go to the table of its name (rows marked for another table aside)
        table = incoming_table(name) if staged and name in PRODUCTS else name
        resources.append(dlt.resource(rows, name=table, write_disposition="append"))
    return resources


def _task_rows(
    tasks: Sequence[FileTask],
    session: requests.Session,
    stats: LoadStats,
    progress: LoadProgress,
    file_format: str = "csv",
) -> Iterator[Any]:
    load_files = LoadFiles(file_format=file_format)
    try:
        for task in tasks:
            yield from file_rows(task, session, stats, progress, load_files)
        yield from load_files.finish()
    finally:
        load_files.discard()
