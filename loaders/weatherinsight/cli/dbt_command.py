"""``weatherinsight dbt``: run dbt in the project against the resolved database.

A window build (``build``, ``run``, ``test`` or ``compile`` whose ``--vars`` set only window vars)
runs in this process on a manifest parsed without vars (:mod:`weatherinsight.ops.dbt.session`),
so changing the window does not make dbt parse the whole project again; anything else runs the
``dbt`` command as it is."""

from __future__ import annotations

import os
import subprocess

import click
import yaml

from weatherinsight import db, lake
from weatherinsight.cli.common import user_errors
from weatherinsight.ops.dbt import dbt_executable, parse_folder, warm_parse_env
from weatherinsight.ops.dbt.session import RUNTIME_VARS, DbtSession

#: subcommands and options the in-process path knows; any other option runs dbt as a subprocess
IN_PROCESS_COMMANDS = ("build", "run", "test", "compile")
#: options taking values (every value up to the next option), and flags
VALUE_OPTIONS = ("--select", "-s", "--exclude", "--threads", "--indirect-selection", "--resource-type",
                 "--exclude-resource-type")  # fmt: skip
FLAG_OPTIONS = ("--full-refresh", "-f", "--fail-fast", "-x", "--quiet", "-q")


def window_invocation(dbt_args: tuple[str, ...]) -> tuple[list[str], dict] | None:
    """(arguments without ``--vars``, the vars) when the command can run on a manifest parsed
    without vars; None when it must run as the plain dbt command."""
    if not dbt_args or dbt_args[0] not in IN_PROCESS_COMMANDS:
        return None
    arguments, variables, taking_values = [dbt_args[0]], None, False
    rest = iter(dbt_args[1:])
    for argument in rest:
        if argument == "--vars":
            try:
                variables = yaml.safe_load(next(rest))
            except Exception:  # noqa: BLE001 - dbt reports bad vars in its own words
                return None
            taking_values = False
            continue
        if argument.startswith("-"):
            if argument not in VALUE_OPTIONS + FLAG_OPTIONS:
                return None
            taking_values = argument in VALUE_OPTIONS
        elif not taking_values:
            return None
        arguments.append(argument)
    if not isinstance(variables, dict) or not variables or set(variables) - RUNTIME_VARS:
        return None
    return arguments, variables


@click.command("dbt", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@user_errors()
def dbt_command(dbt_args: tuple[str, ...]) -> None:
    """Run dbt with the warehouse's connection (starting the embedded server when needed). A window
    build (--vars with start_date, end_date, products, stations) skips dbt's re-parse of the project.

    Example: weatherinsight dbt build --select marts --vars '{start_date: 2021-01-01, end_date: 2021-04-01}'
    """
    if spark_target(dbt_args):
        raise SystemExit(run_on_spark(dbt_args))
    connection = db.resolve(start=True)
    db.apply_env(connection)
    window = window_invocation(dbt_args)
    if window is None:
        # dbt starts from the warehouse's kept parse of the project (its target folder may be new)
        env = {**warm_parse_env(connection.database), **os.environ}
        completed = subprocess.run([dbt_executable(), *dbt_args], cwd=db.project_root(), env=env, check=False)
        raise SystemExit(completed.returncode)
    arguments, variables = window
    result = DbtSession(parse_folder(connection.database)).invoke(arguments, variables=variables)
    raise SystemExit(result.returncode)  # dbt has printed what went wrong, as `dbt` does


def spark_target(dbt_args: tuple[str, ...]) -> bool:
    """Whether dbt runs on the ``spark`` target (``--target spark``, ``-t spark`` or ``DBT_TARGET``)."""
    for index, argument in enumerate(dbt_args):
        if argument.startswith("--target="):
            return argument.split("=", 1)[1] == "spark"
        if argument in ("--target", "-t") and index + 1 < len(dbt_args):
            return dbt_args[index + 1] == "spark"
    return os.environ.get("DBT_TARGET") == "spark"


def run_on_spark(dbt_args: tuple[str, ...]) -> int:
    """dbt on the spark target over the lake: checks first (the extra, Java, a loaded lake; one line
    each), then dbt as it is, with the lake and Spark's folder set (absolute) for profiles.yml."""
    lake.check_spark()
    if "--vars" in dbt_args[:-1]:
        try:
            variables = yaml.safe_load(dbt_args[dbt_args.index("--vars") + 1])
        except yaml.YAMLError:
            variables = None  # dbt reports bad vars in its own words
        lake.check_window(variables, full_refresh=any(flag in dbt_args for flag in ("--full-refresh", "-f")))
    env = lake.spark_env()
    folder = lake.local_folder(env["WEATHERINSIGHT_LAKE_URL"])
    if folder is not None and not (folder / "raw_dwd" / "_dlt_loads").is_dir():
        raise lake.LakeError(
            f"the lake {env['WEATHERINSIGHT_LAKE_URL']} holds no DWD load: "
            "run weatherinsight load dwd --destination lake first (or set WEATHERINSIGHT_LAKE_URL)"
        )
    os.makedirs(env["WEATHERINSIGHT_SPARK_DIR"], exist_ok=True)
    completed = subprocess.run(
        [dbt_executable(), *dbt_args], cwd=db.project_root(), env={**os.environ, **env}, check=False
    )
    return completed.returncode
