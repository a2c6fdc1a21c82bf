"""``weatherinsight pipeline``: dlt's own `dlt pipeline` command on this warehouse's DWD pipeline."""

from __future__ import annotations

import subprocess

import click

from weatherinsight import db, pipelines
from weatherinsight.cli.common import user_errors
from weatherinsight.dwd.service import LOAD_LOCK
from weatherinsight.dwd.settings import DATASET_NAME, PIPELINE_NAME
from weatherinsight.ops.dbt import venv_executable


@click.command("pipeline", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dlt_args", nargs=-1, type=click.UNPROCESSED)
@user_errors()
def pipeline_command(dlt_args: tuple[str, ...]) -> None:
    """Run `dlt pipeline … <name> ARGS` (default: info) on the DWD pipeline of this warehouse.

    Loader state is kept per warehouse: the pipeline is named after the warehouse's id and its
    working folder is .dlt/pipelines/ in the checkout, which this command finds for you.

    Example: weatherinsight pipeline info
             weatherinsight pipeline trace
    """
    connection = db.resolve(start=True)
    db.apply_env(connection)
    name = pipelines.pipeline_name(connection, PIPELINE_NAME)
    if not (db.pipelines_dir() / name).is_dir():
        # a fresh checkout (or a new warehouse): bring the warehouse's state here first
        with db.advisory_lock(connection, LOAD_LOCK):
            pipelines.make_pipeline(connection, PIPELINE_NAME, DATASET_NAME).sync_destination()
    command = [
        venv_executable("dlt"),
        "pipeline",
        "--pipelines-dir",
        str(db.pipelines_dir()),
        name,
        *(dlt_args or ("info",)),
    ]
    raise SystemExit(subprocess.run(command, cwd=db.project_root(), check=False).returncode)
