"""``weatherinsight dbt``: run dbt in the project against the resolved database."""

from __future__ import annotations

import subprocess

import click

from weatherinsight import db
from weatherinsight.cli.common import user_errors
from weatherinsight.ops.dbt import dbt_executable


@click.command("dbt", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@user_errors()
def dbt_command(dbt_args: tuple[str, ...]) -> None:
    """Run dbt with the warehouse's connection (starting the embedded server when needed).

    Example: weatherinsight dbt build --select marts --vars '{start_date: 2021-01-01, end_date: 2021-04-01}'
    """
    connection = db.resolve(start=True)
    db.apply_env(connection)
    root = db.project_root()
    completed = subprocess.run([dbt_executable(), *dbt_args], cwd=root, check=False)
    raise SystemExit(completed.returncode)
