"""What every source's pipeline shares, whichever source it loads and wherever it writes: its name
and creation (one pipeline per warehouse, or per lake), its state taken from the warehouse, the
recovery of a load interrupted by a kill, ``[sources.<name>]`` config and the seeds folder.

Sources (``weatherinsight.dwd``, ``weatherinsight.openmeteo``) import this module and never each
other; a third source needs its own package and nothing more here.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import dlt
from dlt.common.schema.typing import PIPELINE_STATE_TABLE_NAME
from dlt.common.storages.load_package import PackageStorage

from weatherinsight import db

log = logging.getLogger(__name__)


def seeds_folder() -> Path:
    """The seeds of the checkout this package comes from (code and catalogue of one version), else
    those of the project the command runs in."""
    own = Path(__file__).resolve().parents[2] / "seeds"
    return own if (own / "dwd_products.csv").is_file() else db.project_root() / "seeds"


def source_config(key: str, default: Any, source: str) -> Any:
    """``[sources.<source>] <key>`` from dlt's config (``.dlt/config.toml``, or the environment variable
    ``SOURCES__<SOURCE>__<KEY>``), read when asked, else ``default``."""
    value = dlt.config.get(f"sources.{source}.{key}")
    return default if value is None else type(default)(value)


def pipeline_name(connection: db.ConnectionSettings, source: str) -> str:
    """``<source>_<warehouse>``: one pipeline per warehouse (server and database).

    dlt keeps a local copy of each pipeline's state; naming the pipeline after the warehouse's own
    id (see :func:`weatherinsight.db.warehouse_id`) means two servers, two databases of the same name,
    or a database dropped and made again never read each other's local state.
    """
    return f"{source}_{db.warehouse_id(connection).replace('-', '')[:8]}"


def lake_pipeline_name(url: str, source: str) -> str:
    """``<source>_lake_<hash of the URL>``: one pipeline (and local state) per lake."""
    return f"{source}_lake_{hashlib.sha1(url.encode()).hexdigest()[:8]}"


def make_pipeline(
    connection: db.ConnectionSettings, source: str, dataset: str, folder: str | Path | None = None
) -> dlt.Pipeline:
    """This warehouse's pipeline of ``source``, writing to its ``dataset`` schema."""
    destination = dlt.destinations.postgres(credentials=connection.dlt_credentials)
    return _pipeline(pipeline_name(connection, source), destination, dataset, folder)


def make_lake_pipeline(url: str, source: str, dataset: str, folder: str | Path | None = None) -> dlt.Pipeline:
    """The lake's pipeline of ``source``: parquet files below ``url``/``dataset``."""
    destination = dlt.destinations.filesystem(bucket_url=url)
    return _pipeline(lake_pipeline_name(url, source), destination, dataset, folder)


def _pipeline(name: str, destination: Any, dataset: str, folder: str | Path | None) -> dlt.Pipeline:
    """dlt's pipeline ``name`` with its working folder in the checkout's (or ``folder``)."""
    return dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=dataset,
        pipelines_dir=str(folder or db.pipelines_dir()),
    )


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
