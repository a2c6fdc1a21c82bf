"""Window builds on a manifest parsed once (`weatherinsight.ops.dbt.session`, the dbt worker of
backfills and `weatherinsight dbt build --vars`): the window vars reach compilation, the audit
schema routing matches dbt's own `generate_schema_name`, and an edited project is parsed anew."""

from __future__ import annotations

import json
import shutil
from datetime import UTC

import pytest

from weatherinsight import db
from weatherinsight.cli.dbt_command import window_invocation
from weatherinsight.ops.dbt.session import RUNTIME_VARS, DbtSession, route_to_audit, vars_argument, windowed_marts
from weatherinsight.ops.dbt.worker import DbtWorker

from conftest import REPO, cli_env, dbt_ok, load_ok, query, run_cli, run_dbt, table_checksum

#: every var a window build sets, with values that would show if one changed the parse
WINDOW_VARS = {
    "start_date": "2021-01-01",
    "end_date": "2021-04-01",
    "products": ["wind"],
    "stations": [1975],
    "locations": [1],
    "audit_schema": "audit_r0_b0",
}
#: what the parse decides about a node (compiled SQL and timestamps are not decided at parse time)
PARSED_FIELDS = ("schema", "relation_name", "database", "alias", "config", "depends_on", "refs", "sources", "tags")


def parsed(manifest: dict) -> dict:
    return {
        unique_id: {key: node.get(key) for key in PARSED_FIELDS}
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "test", "seed", "snapshot")
    }


def test_the_runtime_vars_are_the_window_vars() -> None:
    assert set(WINDOW_VARS) == RUNTIME_VARS


def test_window_vars_leave_the_parse_as_the_session_routes_it(server, tmp_path, monkeypatch) -> None:
    """dbt parsing the project with every window var set gives the nodes the session gets from a
    parse without vars and its audit routing: same schemas, relations, configs and dependencies."""
    dbt_ok(server, tmp_path / "with_vars", "parse", *vars_argument(WINDOW_VARS))
    expected = parsed(json.loads((tmp_path / "with_vars" / "manifest.json").read_text()))
    assert any(node["schema"] == "audit_r0_b0" for node in expected.values())  # the var did route

    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    manifest = DbtSession(tmp_path / "session").manifest()
    route_to_audit(manifest, windowed_marts(manifest), WINDOW_VARS["audit_schema"])
    ours = parsed({"nodes": {uid: node.to_dict() for uid, node in manifest.nodes.items()}})
    graph = {uid: node["schema"] for uid, node in manifest.flat_graph["nodes"].items() if uid in ours}
    assert graph == {uid: node["schema"] for uid, node in ours.items()}  # dbt's `graph` variable follows
    ours = json.loads(json.dumps(ours, default=str))
    assert ours.keys() == expected.keys()
    differing = [uid for uid in expected if ours[uid] != json.loads(json.dumps(expected[uid], default=str))]
    assert not differing, [
        (uid, key, ours[uid][key], expected[uid][key])
        for uid in differing[:2]
        for key in PARSED_FIELDS
        if ours[uid][key] != json.loads(json.dumps(expected[uid][key], default=str))
    ]


@pytest.fixture
def wind(mirror, database, tmp_path) -> db.ConnectionSettings:
    """A database with the wind observations of Hamburg-Fuhlsbüttel (2020-03 to 2021-09) loaded."""
    load_ok(mirror, database, tmp_path / "pipelines", "--products", "wind", "--stations", "1975")
    return database


def test_a_worker_builds_each_window_with_its_vars(wind, tmp_path) -> None:
    """Three windows through one worker (one parse): each audit schema holds exactly its window."""
    database = wind
    dbt_ok(database, tmp_path / "base", "build", "--exclude", "marts", "--exclude-resource-type", "test")
    worker = DbtWorker(database, tmp_path / "worker")
    try:
        seconds = worker.parse()
        assert seconds > 0
        windows = [("2021-01-01", "2021-04-01"), ("2021-04-01", "2021-07-01"), ("2021-02-10", "2021-02-11")]
        for index, (start, end) in enumerate(windows):
            audit = f"audit_r0_b{index}"
            result = worker.run(
                ["run", "--select", "fct_hourly_wind"],
                tmp_path / f"window_{index}",
                {"start_date": start, "end_date": end, "audit_schema": audit},
            )
            assert result.ok, result.first_error_line()
            assert result.parse_seconds == 0  # the manifest parsed once served every window
            # the sample has wind rows in these windows; none outside
            first, last, rows = query(
                database, f"select min(observed_at), max(observed_at), count(*) from {audit}.fct_hourly_wind"
            )[0]
            # exactly the window's station-hours of raw (the sample has some in each window)
            bounds = (f"{start} 00:00+00", f"{end} 00:00+00")
            in_raw = query(database, "select count(distinct observed_at) from raw_dwd.wind where observed_at >= %s"
                                     " and observed_at < %s", bounds)[0][0]  # fmt: skip
            assert rows == in_raw > 0, (start, end, rows, in_raw)
            first, last = first.astimezone(UTC), last.astimezone(UTC)  # whatever the session's time zone (PGTZ)
            assert first.date().isoformat() >= start and last.date().isoformat() < end, (start, end, first, last)
        assert not query(database, "select 1 from information_schema.tables where table_schema = 'marts' "
                                   "and table_name = 'fct_hourly_wind'")  # fmt: skip
    finally:
        worker.close()


def test_an_edited_project_is_parsed_anew(server, database, tmp_path, monkeypatch) -> None:
    """A model edited between two window builds of one worker is built as edited, never stale."""
    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".venv", ".git", "target", "logs", ".pgdata", "bench"))
    monkeypatch.setenv("WEATHERINSIGHT_HOME", str(project))
    dbt_ok(database, tmp_path / "base", "seed", "--select", "dwd_products")
    model = project / "models" / "staging" / "dwd" / "stg_dwd__station_list_entries.sql"
    assert db.project_root() == project
    worker = DbtWorker(database, tmp_path / "worker")
    try:
        worker.parse()
        first = worker.run(["compile", "--select", "stg_dwd__station_list_entries"], tmp_path / "one")
        assert first.ok and first.parse_seconds == 0
        model.write_text(model.read_text() + "\n-- edited between two windows\n")
        second = worker.run(["compile", "--select", "stg_dwd__station_list_entries"], tmp_path / "two")
        assert second.ok and second.parse_seconds > 0
        compiled = next((tmp_path / "two" / "compiled").rglob("stg_dwd__station_list_entries.sql")).read_text()
        assert "edited between two windows" in compiled
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("arguments", "in_process"),
    [
        (("build", "--select", "marts", "--vars", "{start_date: 2021-01-01, end_date: 2021-04-01}"), True),
        (("run", "-s", "a", "b", "--full-refresh", "--vars", "{start_date: 2021-01-01, end_date: 2021-04-01}"), True),
        (("build", "--select", "marts"), False),  # no vars: dbt's own partial parsing serves it
        (("build", "--vars", "{start_date: 2021-01-01, end_date: 2021-04-01, mine: 1}"), False),  # unknown var
        (("build", "--target", "prod", "--vars", "{start_date: 2021-01-01, end_date: 2021-04-01}"), False),
        (("docs", "generate", "--vars", "{start_date: 2021-01-01, end_date: 2021-04-01}"), False),
        (("build", "--vars", "{start_date: 2021-02-30, end_date: 2021-04-01}"), False),  # dbt's own error
    ],
)
def test_which_dbt_commands_run_in_process(arguments, in_process) -> None:
    assert (window_invocation(arguments) is not None) is in_process


def test_weatherinsight_dbt_builds_a_window_like_dbt(wind, tmp_path) -> None:
    """`weatherinsight dbt build --vars` (in process) and `dbt build --vars` leave the same rows."""
    database = wind
    dbt_ok(database, tmp_path / "base", "build", "--exclude-resource-type", "test")
    window = "{start_date: 2021-01-01, end_date: 2021-04-01, products: [wind]}"
    select = ("--select", "fct_hourly_wind+")
    result = run_cli("dbt", "build", *select, "--vars", window, env=cli_env(database), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "window 2021-01-01" in result.stdout or "Completed successfully" in result.stdout
    ours = query(database, "select count(*), sum(wind_speed_ms) from marts.fct_hourly_wind")
    plain = run_dbt(database, "build", *select, "--vars", window, target_path=tmp_path / "plain")
    assert plain.returncode == 0, plain.stdout[-3000:]
    assert query(database, "select count(*), sum(wind_speed_ms) from marts.fct_hourly_wind") == ours
    before = table_checksum(database, "marts.fct_hourly_wind")
    bad = run_cli("dbt", "build", *select, "--vars", "{start_date: 2021-04-01, end_date: 2021-01-01}",
                  env=cli_env(database), cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2
    assert "end_date 2021-01-01 is not after start_date 2021-04-01" in bad.stdout
    assert table_checksum(database, "marts.fct_hourly_wind") == before  # stopped before any SQL
