"""The CLI as users call it: bad input gives one readable line, a non-zero exit and no writes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO, cli_env, query, run_cli

pytestmark = pytest.mark.quick


def raw_schema_exists(database) -> bool:
    return query(database, "select count(*) from information_schema.schemata where schema_name = 'raw_dwd'")[0][0] > 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--products", "snowfall"], "unknown product 'snowfall'"),
        (["--stations", "abc"], "invalid station id 'abc'"),
        (["--stations", "1; drop table x"], "invalid station id '1; drop table x'"),
        (["--stations", "99999"], "no archives for station(s) 99999"),
        (["--start", "2021-13-01"], "'2021-13-01' is not a date in the form YYYY-MM-DD"),
        (["--start", "2022-01-01", "--end", "2021-01-01"], "end 2021-01-01 is not after start 2022-01-01"),
        (["--start", "2021-01-01", "--end", "2021-01-01"], "end 2021-01-01 is not after start 2021-01-01"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(mirror, database, tmp_path, arguments, message) -> None:
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"))
    result = run_cli("load", "dwd", "--base-url", mirror.base_url, "--products", "wind", *arguments, env=env)
    assert result.returncode == 2  # a usage error, as in every command
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not raw_schema_exists(database)


#: one usage mistake per command (or option family): each is exit code 2, one line, nothing created
USAGE_ERRORS = [
    (["status", "--products", "nope"], "unknown product 'nope'"),
    (["status", "--stations", "1; drop table x"], "invalid station id '1; drop table x'"),
    (["status", "--start", "2022-01-01", "--end", "2021-01-01"], "--end 2021-01-01 is not after --start 2022-01-01"),
    (["validate", "--products", "nope"], "unknown product 'nope'"),
    (["status", "--by-day", "--station", "44", "--location", "2"], "--by-day goes with one --station or one"),
    (["status", "--by-day", "--location", "2", "--products", "wind"], "--products names no product of a location"),
    (["backfill", "plan", "--start", "2021-01-01", "--end", "2022-01-01", "--products", "nope"], "unknown product"),
    (["backfill", "plan", "--start", "2021-01-01", "--end", "2022-01-01", "--by", "week"], "Invalid value for '--by'"),
    (["backfill", "plan", "--start", "2021-01-01", "--end", "2021-01-01"], "--end 2021-01-01 is not after --start"),
    (["backfill", "run", "--start", "2021-01-01", "--end", "2022-01-01", "--parallel", "0"], "'--parallel': 0"),
    (["backfill", "run", "--start", "2021-02-30", "--end", "2022-01-01"], "'2021-02-30' is not a date"),
    (["backfill", "plan", "--start", "2021-01-01", "--end", "2022-01-01", "--stations", "-5"], "station id '-5'"),
    (["backfill", "restore", "99999"], "no backfill run 99999"),
    (["backfill", "resume", "99999"], "no backfill run 99999"),
    (["show", "fct_nope"], "no mart 'fct_nope'"),
    (["load", "dwd", "--start", "2021-01-01", "--end", "2020-01-01"], "end 2020-01-01 is not after start 2021-01-01"),
]


@pytest.mark.parametrize(("arguments", "message"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_usage_mistake_is_exit_2_and_one_line_in_every_command(database, tmp_path, arguments, message) -> None:
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"))
    result = run_cli(*arguments, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    schemas = query(
        database,
        "select count(*) from information_schema.schemata"
        " where schema_name not in ('public', 'information_schema') and schema_name not like 'pg\\_%'",
    )
    assert schemas == [(0,)]


def test_unreachable_base_url(database, tmp_path) -> None:
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path), SOURCES__DWD_HOURLY__HTTP_ATTEMPTS="1")
    result = run_cli("load", "dwd", "--base-url", "http://127.0.0.1:9/", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: cannot reach http://127.0.0.1:9/climate_environment/CDC/observations_germany/climate/hourly/"
        " (ConnectionError)"
    )
    assert not raw_schema_exists(database)


def test_unreachable_database(mirror, database, tmp_path) -> None:
    env = cli_env(database, PGHOST=str(tmp_path / "no-server"), WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path))
    result = run_cli("load", "dwd", "--base-url", mirror.base_url, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot connect to PostgreSQL at ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert mirror.downloads() == []


def test_load_prints_a_summary_and_a_rerun_loads_nothing(mirror, database, tmp_path) -> None:
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"))
    arguments = ("load", "dwd", "--base-url", mirror.base_url, "--products", "wind", "--stations", "1975")
    first = run_cli(*arguments, env=env)
    assert first.returncode == 0, first.stderr
    assert "files fetched: 3, skipped as unchanged: 0" in first.stdout
    assert "rows loaded: 13,200" in first.stdout
    second = run_cli(*arguments, env=env)
    assert "files fetched: 0, skipped as unchanged: 3" in second.stdout
    assert "rows loaded: 0 " in second.stdout


def test_dry_run_lists_files_and_writes_nothing(mirror, database, tmp_path) -> None:
    # piped, with no COLUMNS: file names are not cut to fit 80 columns
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"))
    env.pop("COLUMNS", None)
    result = run_cli(
        "load", "dwd", "--base-url", mirror.base_url, "--products", "wind", "--stations", "1975", "--dry-run", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "wind/recent/stundenwerte_FF_01975_akt.zip" in result.stdout + result.stderr
    assert mirror.downloads() == []
    assert not raw_schema_exists(database)


def test_pipeline_is_inspectable_with_dlt(mirror, database, tmp_path) -> None:
    import shlex
    import subprocess

    from conftest import VENV_BIN, query

    pipelines = str(tmp_path / "pipelines")
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=pipelines)
    load = run_cli("load", "dwd", "--base-url", mirror.base_url, "--products", "wind", "--stations", "1975", env=env)
    # one pipeline per warehouse, named after the warehouse's own id
    (warehouse,) = query(database, "select replace(warehouse_id::text, '-', '') from ops.warehouse")[0]
    name = f"dwd_hourly_{warehouse[:8]}"
    command = f"dlt pipeline --pipelines-dir {pipelines} {name} info"
    assert f"inspect the pipeline with: {command}" in load.stdout
    info = subprocess.run(
        [str(VENV_BIN / "dlt"), *shlex.split(command)[1:]], env=env, capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stderr
    assert "dataset_name: raw_dwd" in info.stdout
    # the same through weatherinsight, which finds the working folder and the name itself
    wrapped = run_cli("pipeline", "info", env=env)
    assert wrapped.returncode == 0, wrapped.stderr
    assert f"pipeline_name: {name}" in wrapped.stdout


def test_db_env_prints_exports_for_the_configured_server(database) -> None:
    result = run_cli("db", "env", env=cli_env(database))
    assert result.returncode == 0
    assert f"export PGDATABASE={database.database}" in result.stdout.splitlines()
    assert sorted(line.split("=")[0] for line in result.stdout.splitlines()) == [
        "export PGDATABASE",
        "export PGHOST",
        "export PGPASSWORD",
        "export PGPORT",
        "export PGUSER",
    ]


def checkout(tmp_path: Path) -> Path:
    """Another clone of the project (its own .pgdata and loader state)."""
    root = tmp_path / "clone"
    (root / ".dlt").mkdir(parents=True)
    shutil.copy(REPO / "dbt_project.yml", root)
    shutil.copy(REPO / ".dlt" / "config.toml", root / ".dlt")
    return root


def test_db_up_with_pghost_set_uses_that_server(database, tmp_path) -> None:
    # run from another clone, whose own embedded server is not the one PGHOST names
    result = run_cli("db", "up", env=cli_env(database), cwd=checkout(tmp_path))
    assert result.returncode == 0
    assert result.stdout.startswith("PGHOST is set: using PostgreSQL at")


def test_db_up_and_down_work_in_the_shell_db_env_sets_up(tmp_path) -> None:
    """After `eval "$(weatherinsight db env)"` PGHOST names the embedded server's socket folder: that
    is still the embedded server, which `db down` stops and `db up` starts again."""
    root = checkout(tmp_path)
    plain = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    assert run_cli("db", "up", env=plain, cwd=root).returncode == 0
    try:
        exports = run_cli("db", "env", env=plain, cwd=root).stdout
        shell = plain | dict(re.findall(r"export (\w+)=(\S+)", exports))
        assert shell["PGHOST"] == str((root / ".pgdata").resolve())
        assert run_cli("db", "down", env=shell, cwd=root).stdout.startswith("stopped embedded PostgreSQL")
        status = run_cli("db", "status", env=shell, cwd=root)
        assert status.returncode == 1 and status.stdout.startswith("not running: embedded PostgreSQL")
        up = run_cli("db", "up", env=shell, cwd=root)
        assert up.returncode == 0 and up.stdout.startswith("running: embedded PostgreSQL"), up.stdout + up.stderr
    finally:
        run_cli("db", "down", env=plain, cwd=root)
