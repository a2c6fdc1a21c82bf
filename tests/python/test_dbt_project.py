"""Real `dbt build` runs on real loads: given raw deliveries, when dbt builds, then these marts."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from weatherinsight import db

import conftest
from conftest import PARALLEL_PLANS, REPO, VENV_BIN, Mirror, query, table_checksum

MARTS = [
    "marts.quarterly_temperature_features",
    "marts.quarterly_precipitation_features",
    "marts.quarterly_wind_features",
    "marts.quarterly_pressure_features",
    "marts.quarterly_humidity_features",
    "marts.quarterly_cloud_cover_features",
    "marts.fct_daily_weather",
    "marts.fct_hourly_wind",
]


def load_cli(mirror: Mirror, database, tmp_path: Path, *arguments: str) -> None:
    conftest.load_ok(mirror, database, tmp_path / f"pipelines_{database.database}", *arguments)


def dbt_ok(database, tmp_path: Path, *arguments: str, env: dict[str, str] | None = None) -> str:
    return conftest.dbt_ok(database, tmp_path / f"target_{database.database}", *arguments, env=env)


UNIT_TESTS = {
    "fct_hourly_wind::hourly_fact_keeps_best_delivery_by_precedence",
    "fct_hourly_wind::hourly_fact_incremental_recomputes_only_touched_hours",
    "fct_hourly_wind::hourly_fact_incremental_takes_ranges_of_every_station_once",
    "fct_hourly_wind::hourly_fact_window_rebuilds_only_the_window",
    "quarterly_temperature_features::quarterly_features_aggregate_hours_by_utc_quarter",
    "quarterly_temperature_features::quarterly_features_incremental_rebuilds_only_touched_quarters",
}


@pytest.mark.quick
def test_dbt_unit_tests_pass(mirror, database, tmp_path) -> None:
    """The dbt unit tests (dedupe precedence, change plans, window filters, quarterly aggregation,
    with is_incremental true and false) through the dbt CLI: each runs, each passes. Their models'
    parents must exist for dbt to read column types: one station's raw rows and the parents built."""
    load_cli(mirror, database, tmp_path, "--products", "wind,air_temperature,moisture", "--stations", "1975")
    parents = ("+fct_hourly_wind", "+quarterly_temperature_features", "--exclude", "fct_hourly_wind",
               "quarterly_temperature_features")  # fmt: skip
    dbt_ok(database, tmp_path, "run", "--select", *parents)
    output = conftest.dbt_ok(database, tmp_path / "unit", "test", "--select", "test_type:unit", cli=True)
    assert set(re.findall(r" PASS (\S+::\S+) ", output)) == UNIT_TESTS, output[-3000:]


#: what a checkout holds besides its venv, databases and build output (a copy for `make demo`)
CHECKOUT_IGNORE = shutil.ignore_patterns(".venv", ".git", ".pgdata", "target", "logs", "pipelines", ".lake",
                                         ".spark", "backups", "__pycache__", "*.egg-info")  # fmt: skip
LOCATION_MARTS = ("marts.quarterly_air_quality_features", "marts.quarterly_location_weather_features")


@contextlib.contextmanager
def demo_checkout(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the checkout (its own embedded server in its own `.pgdata/`, no PG* variables, as
    on a machine with nothing configured) sharing this checkout's venv; the server stops at the end."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO, root, ignore=CHECKOUT_IGNORE, copy_function=shutil.copy2)  # mtimes kept for make
    (root / ".venv").symlink_to(REPO / ".venv")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "WEATHERINSIGHT_"))}
    try:
        yield root, env
    finally:
        subprocess.run([str(VENV_BIN / "weatherinsight"), "db", "down"], cwd=root, env=env, timeout=120)


def make_demo(root: Path, env: dict[str, str]) -> str:
    """`make demo` as the README's first command (the venv is there: make is told not to redo it)."""
    result = subprocess.run(["make", "-o", ".venv/.installed", "demo"], cwd=root, env=env, capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_make_demo_twice_loads_nothing_the_second_time_and_the_marts_stay_identical(mirror, tmp_path) -> None:
    """The README's first command on a machine with nothing configured (an embedded server of the
    checkout's own), then again: the second run fetches nothing (0 rows), and every mart is as the
    first run left it. On the demo's warehouse: the overlap of Helgoland's files, a station's
    corrected height as an SCD2 version, and a described column for every column of the catalogue."""
    with demo_checkout(tmp_path) as (root, env):
        first = make_demo(root, env)
        assert "demo done in" in first
        exports = subprocess.run([str(VENV_BIN / "weatherinsight"), "db", "env"], cwd=root, env=env,
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
        values = dict(re.findall(r"export (\w+)=(\S+)", exports))
        env = {**env, **values}  # as after `eval "$(weatherinsight db env)"` in the checkout
        database = db.ConnectionSettings(values["PGHOST"], int(values["PGPORT"]), values["PGUSER"],
                                         values["PGPASSWORD"], values["PGDATABASE"], True)  # fmt: skip
        before = {table: table_checksum(database, table) for table in (*MARTS, *LOCATION_MARTS)}
        assert all(count > 0 for count, _ in before.values())

        second = make_demo(root, env)
        # DWD: nothing fetched, nothing loaded; Open-Meteo: every location up to date, no request
        assert "files fetched: 0," in second and "rows loaded: 0 (" in second, second[-3000:]
        assert re.search(r"locations ok: \d+, failed: 0; rows loaded: 0 \(.*requests: 0 ", second), second[-3000:]
        assert {table: table_checksum(database, table) for table in before} == before
        # and with nothing new, the second run's `dbt build` wrote no row in any incremental model
        # (not the same rows again): 15 DWD models and 6 Open-Meteo ones
        assert sorted(incremental_results(root / "target").values()) == ["INSERT 0 0"] * 21
        # `validate` without flags checks every source: the demo's locations as well as its stations
        wide = {**env, "COLUMNS": "250"}
        validated = subprocess.run([str(VENV_BIN / "weatherinsight"), "validate"], cwd=root, env=wide,
                                   capture_output=True, text=True, timeout=600)  # fmt: skip
        assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-3000:]
        for product in ("air_temperature", "location_weather", "air_quality"):
            assert re.search(rf"│ {product}\s+│\s+[1-9][\d,]* │", validated.stdout), (product, validated.stdout)

        # Helgoland's wind in Q3 2023 comes from the historical file and the recent one (higher QN wins)
        raw_hours = query(
            database,
            "select count(distinct observed_at) from raw_dwd.wind where station_id = 2115 and f is not null "
            "and observed_at >= '2023-07-01 00:00+00' and observed_at < '2023-10-01 00:00+00'",
        )[0][0]
        assert query(
            database,
            "select observation_count, expected_hours, round(coverage_ratio, 4)::float"
            " from marts.quarterly_wind_features where station_id = 2115 and year = 2023 and quarter = 3",
        ) == [(raw_hours, 2208, round(raw_hours / 2208, 4))]
        assert query(
            database,
            "select count(*) from marts.fct_hourly_wind where station_id = 2115 and release = 'recent' "
            "and observed_at < '2024-01-01 00:00+00' and quality_level = 10 and delivery_count = 2",
        ) == [(1382,)]
        assert query(database, "select station_name from marts.dim_station where station_id = 1975 and is_current") == [
            ("Hamburg-Fuhlsbüttel",)
        ]

        # DWD corrects Hamburg-Fuhlsbüttel's height in its station lists: the next load and build add
        # a version (SCD2), the old one closed where the new one starts
        for listing in mirror.hourly.rglob("*_Stundenwerte_Beschreibung_Stationen.txt"):
            listing.write_bytes(re.sub(rb"(?m)^(01975 \d{8} \d{8} +)11 ", rb"\g<1>12 ", listing.read_bytes()))
        load_cli(mirror, database, tmp_path)
        # dbt in the checkout, as the demo's last lines tell users (its parse of the project reused)
        checkout_dbt(root, env, "build", "--select", "+dim_station")  # the snapshot, the dimension, their tests
        versions = query(
            database,
            "select height_m::int, is_current, valid_to = lead(valid_from) over (order by valid_from)"
            " from marts.dim_station where station_id = 1975 order by valid_from",
        )
        assert versions == [(11, False, True), (12, True, None)]
        checkout_dbt(root, env, "docs", "generate")
        assert_every_model_and_column_is_described(root / "target")


def checkout_dbt(root: Path, env: dict[str, str], *arguments: str) -> None:
    result = subprocess.run([str(VENV_BIN / "dbt"), *arguments], cwd=root, env=env, capture_output=True, text=True,
                            timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def incremental_results(target: Path) -> dict[str, str]:
    """What the last dbt command in ``target`` reported for each incremental model it ran."""
    import json

    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        result["unique_id"]: result["adapter_response"].get("_message", "")
        for result in results
        if manifest["nodes"].get(result["unique_id"], {}).get("config", {}).get("materialized")
        in ("incremental", "window_replace")
    }


def assert_every_model_and_column_is_described(target: Path) -> None:
    """Every model, snapshot and seed in the catalogue has a description, and so has every column
    that the built relation really has (compared with the database's catalogue, not the YAML)."""
    import json

    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    missing = []
    for unique_id, entry in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        if node["package_name"] != "weatherinsight":
            continue
        if not node.get("description", "").strip():
            missing.append(unique_id)
        documented = {name.lower() for name, column in node["columns"].items() if column.get("description", "").strip()}
        missing.extend(f"{unique_id}.{column}" for column in entry["columns"] if column.lower() not in documented)
    assert missing == []


HELGOLAND_HISTORY = "wind/historical/stundenwerte_FF_02115_19590101_20231231_hist.zip"


def test_a_whole_station_history_loaded_into_a_built_warehouse_equals_a_full_refresh(
    mirror, database, tmp_path
) -> None:
    """Given a built warehouse, when DWD delivers Helgoland's whole wind history (1959-2023, 567,298
    rows, overlapping the recent file by 3,585 hours) and a plain build runs, then every mart equals a
    full refresh byte for byte -- also when the build ran in another session time zone and the
    refresh with parallel plans (sums of decimals do not depend on the order they are added in)."""
    history = tmp_path / "history.zip"
    (mirror.hourly / HELGOLAND_HISTORY).rename(history)
    berlin = {"PGTZ": "Europe/Berlin"}
    load_cli(mirror, database, tmp_path)
    dbt_ok(database, tmp_path, "build", env=berlin)
    before = query(database, "select count(*) from marts.quarterly_wind_features where station_id = 2115")[0][0]

    mirror.replace(HELGOLAND_HISTORY, history)
    load_cli(mirror, database, tmp_path, "--products", "wind")
    output = dbt_ok(database, tmp_path, "run", env=berlin)  # plain incremental build of the models
    assert "Completed successfully" in output
    plain = {table: table_checksum(database, table) for table in MARTS}
    quarters = query(database, "select count(*) from marts.quarterly_wind_features where station_id = 2115")[0][0]
    # the quarters only the history holds: 1958-Q4 (its first hour, 1959-01-01 00:00 MEZ, is 23:00 UTC the
    # day before) to 2023-Q2
    assert quarters - before == 259
    # MEZ to UTC end to end: the file's first hour, 1959-01-01 00 in MEZ, is the one hour of 1958-Q4
    assert query(
        database,
        "select min(observed_at) = '1958-12-31 23:00+00' from marts.fct_hourly_wind where station_id = 2115",
    ) == [(True,)]
    assert query(
        database,
        "select observation_count from marts.quarterly_wind_features where station_id = 2115 and year = 1958",
    ) == [(1,)]
    # the hours both of Helgoland's files hold (2023-07-27 .. 2023-12-31, as PROVENANCE.md counts them)
    assert query(
        database,
        "select count(*) from marts.fct_hourly_wind where station_id = 2115 and delivery_count = 2"
        " and observed_at >= '2023-01-01 00:00+00'",
    ) == [(3585,)]

    dbt_ok(database, tmp_path, "run", "--full-refresh", env={"PGTZ": "UTC", "PGOPTIONS": PARALLEL_PLANS})
    assert {table: table_checksum(database, table) for table in MARTS} == plain


def test_quarantined_rows_are_named_by_line_and_dbt_build_warns(mirror, database, tmp_path) -> None:
    """A damaged line (a wind speed in km/h, 95.0) is quarantined with its line number; `dbt build`
    passes the quarantine's grain test and warns with the count, so a build never hides a rejection."""
    import zipfile

    archive = mirror.hourly / "wind/recent/stundenwerte_FF_01975_akt.zip"
    with zipfile.ZipFile(archive) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    with zipfile.ZipFile(archive, "w") as target:
        for name, data in members.items():
            if name.startswith("produkt_"):
                lines = data.decode("latin-1").split("\n")
                fields = lines[10].split(";")  # the tenth data line: its wind speed, F
                fields[3] = "  95.0"
                lines[10] = ";".join(fields)
                data = "\n".join(lines).encode("latin-1")
            target.writestr(name, data)
    load_cli(mirror, database, tmp_path, "--products", "wind", "--stations", "1975")
    output = dbt_ok(database, tmp_path, "build", "--select", "stg_dwd__quarantined_rows")
    assert query(database, "select source_row_number, reason from staging.stg_dwd__quarantined_rows") == [
        (10, "F outside the plausible 0..80")
    ]
    assert re.search(r"WARN 1 assert_no_quarantined_rows", output), output[-3000:]
    assert re.search(r"PASS unique_combination_of_columns_stg_dwd__quarantined_rows", output), output[-3000:]
