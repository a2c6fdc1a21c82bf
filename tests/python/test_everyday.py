"""The everyday run, as users and schedulers use it: `weatherinsight update` (twice, with a new
delivery, with each of its exit codes), `status --by-day --station`, `explain` with its counts
checked against raw, and slim CI (`make ci-state`, `make ci-slim`) on a restored warehouse.

One warehouse is made by the module's first `update` (the DWD sample mirror and the Open-Meteo
stand-in on 127.0.0.1); tests that damage it work on a copy (CREATE DATABASE … TEMPLATE)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from weatherinsight import db
from weatherinsight.openmeteo.standin import StandIn

from conftest import (
    REPO,
    VENV_BIN,
    Mirror,
    cli_env,
    clone_database,
    dbt_ok,
    execute,
    query,
    republish,
    run_cli,
    scratch_database,
    serve_mirror,
    table_checksum,
)

sys.path.insert(0, str(REPO / "bench"))
import synth_mirror  # noqa: E402  (bench/synth_mirror.py: DWD's daily regeneration of a mirror)

MARTS = (
    "marts.fct_hourly_air_temperature",
    "marts.fct_daily_weather",
    "marts.quarterly_temperature_features",
    "marts.quarterly_precipitation_features",
    "marts.fct_hourly_location_weather",
)
TEMPERATURE_RECENT_44 = "air_temperature/recent/stundenwerte_TU_00044_akt.zip"
PRECIPITATION_RECENT_44 = "precipitation/recent/stundenwerte_RR_00044_akt.zip"
WAITING_FOR_A_LOCK = (
    "select count(*) from pg_locks where locktype = 'advisory' and not granted"
    " and database = (select oid from pg_database where datname = current_database())"
)


class Everyday:
    def __init__(self, database: db.ConnectionSettings, tmp: Path, mirror: Mirror, openmeteo: str) -> None:
        self.database = database
        self.tmp = tmp
        self.mirror = mirror
        self.openmeteo = openmeteo

    def env(self, database: db.ConnectionSettings | None = None, **extra: str) -> dict[str, str]:
        return cli_env(
            database or self.database,
            **{
                "WEATHERINSIGHT_PIPELINES_DIR": str(self.tmp / "pipelines"),
                "SOURCES__DWD_HOURLY__BASE_URL": self.mirror.base_url,
                "WEATHERINSIGHT_OPENMETEO_BASE_URL": self.openmeteo,
                "COLUMNS": "200",
                **extra,
            },
        )

    def update(self, database: db.ConnectionSettings | None = None, **extra: str) -> subprocess.CompletedProcess:
        return run_cli("update", env=self.env(database, **extra))

    def copy(self, name: str) -> db.ConnectionSettings:
        return clone_database(self.database, name)


@pytest.fixture(scope="module")
def everyday(server: db.ConnectionSettings, tmp_path_factory) -> Iterator[Everyday]:
    tmp = tmp_path_factory.mktemp("everyday")
    with (
        scratch_database(server, "wi_test_everyday") as database,
        serve_mirror(tmp / "mirror") as mirror,
        StandIn() as standin,
    ):
        made = Everyday(database, tmp, mirror, standin.base_url)
        first = made.update()
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        yield made


def runs(database: db.ConnectionSettings) -> list[tuple]:
    return query(
        database,
        "select run_id, command, status, rows_loaded, rows_built, error from ops.backfill_runs order by run_id",
    )


def test_an_update_twice_loads_and_builds_nothing_the_second_time_and_a_new_delivery_once(
    everyday: Everyday, database: db.ConnectionSettings
) -> None:
    database = everyday.copy(database.database)
    before = {table: table_checksum(database, table) for table in MARTS}
    started = time.perf_counter()
    second = everyday.update(database)
    idle = time.perf_counter() - started
    assert second.returncode == 0, second.stderr[-2000:]
    assert "build skipped: nothing new" in second.stdout
    first_run, second_run = runs(database)
    assert first_run[1:3] == ("update", "succeeded") and first_run[3] > 900_000 and first_run[4] > 0
    assert second_run[1:5] == ("update", "succeeded", 0, 0)
    assert {table: table_checksum(database, table) for table in MARTS} == before

    # one new delivery: DWD republishes Großenkneten's recent archive with one hour corrected
    hour = "2022-07-01 12:00:00+00"
    old_value = query(
        database,
        "select temperature_c from marts.fct_hourly_air_temperature where station_id = 44 and observed_at = %s",
        (hour,),
    )[0][0]
    republish(everyday.mirror, TEMPERATURE_RECENT_44, "2022070112", "  41.5", everyday.tmp, field=3)
    started = time.perf_counter()
    third = everyday.update(database)
    delivery = time.perf_counter() - started
    assert third.returncode == 0, third.stderr[-2000:]
    third_run = runs(database)[-1]
    # the archive's 13,200 rows are delivered again; raw stores the one that changed
    assert third_run[2] == "succeeded" and third_run[3] == 1 and third_run[4] > 0
    new = query(
        database,
        "select temperature_c from marts.fct_hourly_air_temperature where station_id = 44 and observed_at = %s",
        (hour,),
    )[0][0]
    assert float(old_value) != 41.5 and float(new) == 41.5
    quarter = query(
        database,
        "select temperature_c_max from marts.quarterly_temperature_features"
        " where station_id = 44 and year = 2022 and quarter = 3",
    )[0][0]
    assert float(quarter) == 41.5  # the change reached the quarterly mart
    # and the run after it has nothing to do again
    assert "build skipped" in everyday.update(database).stdout
    print(f"\nupdate with nothing new: {idle:.1f} s; with one new delivery: {delivery:.1f} s")
    page = everyday.tmp / "status.html"
    assert run_cli("status", "--html", str(page), env=everyday.env(database)).returncode == 0
    assert page.read_text(encoding="utf-8").count("<td>update</td>") == 4  # the recent updates are listed


def test_update_exit_codes_say_what_went_wrong_and_the_ledger_records_it(
    everyday: Everyday, database: db.ConnectionSettings, tmp_path: Path
) -> None:
    database = everyday.copy(database.database)
    bad_config = everyday.update(database, UPDATE__DWD_PRODUCTS="snowfall")
    assert bad_config.returncode == 2 and "unknown product 'snowfall'" in bad_config.stderr, bad_config.stderr
    # (two attempts: the default five wait 15 s of backoff for a port that will not answer)
    unreachable = run_cli("update", "--base-url", "http://127.0.0.1:9/",
                          env=everyday.env(database, SOURCES__DWD_HOURLY__HTTP_ATTEMPTS="2"))  # fmt: skip
    assert unreachable.returncode == 3, unreachable.stderr
    assert [line for line in unreachable.stderr.splitlines() if line.startswith("Error")] == [
        unreachable.stderr.strip()
    ] and "DWD unreachable" in unreachable.stderr
    assert runs(database)[-1][2] == "failed" and "unreachable" in runs(database)[-1][5]
    down = run_cli("update", env={**everyday.env(database), "PGHOST": "127.0.0.1", "PGPORT": "9"})
    assert down.returncode == 3 and "cannot connect" in down.stderr, down.stderr
    # one update at a time: while another holds the update lock, an update waits, then runs
    holder = db.connect(database)
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.update'))")
    waiting = subprocess.Popen([str(VENV_BIN / "weatherinsight"), "update"], env=everyday.env(database),
                               cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        blocked = 0
        for _ in range(600):
            blocked = query(database, WAITING_FOR_A_LOCK)[0][0]
            if blocked or waiting.poll() is not None:
                break
            time.sleep(0.2)
        assert blocked == 1 and waiting.poll() is None, "the second update did not wait"
    finally:
        holder.close()
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0 and "another update is running: waiting for it" in out, out + err
    # a changed archive that cannot be fetched is a data problem: exit 1, the others loaded
    republish(everyday.mirror, PRECIPITATION_RECENT_44, "2022070112", "  2.2", tmp_path, field=3)
    everyday.mirror.fail(PRECIPITATION_RECENT_44)
    try:
        failing = everyday.update(database, SOURCES__DWD_HOURLY__HTTP_ATTEMPTS="2")
    finally:
        everyday.mirror.failing.clear()
    assert failing.returncode == 1 and "could not be fetched" in failing.stderr, failing.stderr
    assert runs(database)[-1][2] == "failed"


def problems(result: subprocess.CompletedProcess) -> list[str]:
    """The problems an update listed (one `problem:` line each), after its one-line verdict."""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and lines[-1].endswith("problem(s) (listed above)"), result.stderr
    return [line.removeprefix("problem: ") for line in lines if line.startswith("problem: ")]


def test_update_exit_1_for_a_validate_problem_a_failed_data_test_and_a_failed_build(
    everyday: Everyday, database: db.ConnectionSettings, tmp_path: Path
) -> None:
    """The README's exit 1 besides a file that cannot be fetched: a quarter missing from a
    published mart (validate), a model that cannot be built, a delivery that fails a data test. A
    mirror of the test's own (the sample's files, as the module's warehouse loaded them)."""
    database = everyday.copy(database.database)
    with serve_mirror(tmp_path / "mirror") as mirror:

        def update(**extra: str) -> subprocess.CompletedProcess:
            return everyday.update(database, SOURCES__DWD_HOURLY__BASE_URL=mirror.base_url, **extra)

        # a published quarter lost from the warehouse: nothing new to build, validate finds it
        deleted = execute(
            database, "delete from marts.quarterly_precipitation_features where year = 2021 and quarter = 1"
        )
        lost = update()
        assert lost.returncode == 1 and "dbt build skipped: nothing new" in lost.stdout, lost.stdout + lost.stderr
        assert deleted > 0 and [problem for problem in problems(lost) if "2021-Q1" in problem] == [
            "validate: precipitation 2021-Q1: partial"
            f" (quarterly_precipitation_features lacks {deleted} station-quarters)"
        ], problems(lost)
        assert runs(database)[-1][2] == "failed"
        # a model that cannot be written (here: another session holds a lock on it past dbt's lock
        # timeout) while a delivery is taken in: exit 1 naming it
        republish(mirror, PRECIPITATION_RECENT_44, "2022070112", "  2.2", tmp_path, field=3)
        holder = db.connect(database)
        try:
            with holder.cursor() as cursor:
                cursor.execute("lock table marts.fct_daily_weather in share mode")  # readers pass, writers wait
            broken = update(PGOPTIONS="-c lock_timeout=2s")
        finally:
            holder.rollback()
            holder.close()
        assert broken.returncode == 1, broken.stderr
        (build,) = [problem for problem in problems(broken) if problem.startswith("dbt build failed")]
        assert "fct_daily_weather: error" in build, build
        # DWD republishes Großenkneten's precipitation with 350 mm in one hour: the loader keeps it (it
        # quarantines from 400 mm), the range test of its staging view fails the build
        republish(mirror, PRECIPITATION_RECENT_44, "2022070112", "350.0", tmp_path, field=3)
        failed_test = update()
        assert failed_test.returncode == 1, failed_test.stderr
        (build,) = [problem for problem in problems(failed_test) if problem.startswith("dbt build failed")]
        assert build == (
            "dbt build failed:"
            " accepted_range_stg_dwd__precipitation_observations_precipitation_mm__300__0: fail (1 rows)"
        )


def test_gaps_per_station_and_day_tell_the_source_from_the_warehouse(
    everyday: Everyday, database: db.ConnectionSettings, tmp_path: Path
) -> None:
    database = everyday.copy(database.database)
    # the warehouse loses three published hours of Hamburg's precipitation on 2021-03-02
    removed = execute(
        database,
        "delete from marts.fct_hourly_precipitation where station_id = 1975"
        " and observed_at in ('2021-03-02 10:00+00', '2021-03-02 11:00+00', '2021-03-02 12:00+00')",
    )
    assert removed == 3
    page = tmp_path / "gaps.html"
    result = run_cli(
        "status", "--by-day", "--station", "1975", "--start", "2021-03-01", "--end", "2021-03-04",
        "--html", str(page), env=everyday.env(database),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # DWD's archive itself lacks 03:00 and 06:00 that day (a gap at the source)
    expected_at_source = query(
        database,
        "select count(*) from generate_series('2021-03-02 00:00+00'::timestamptz, '2021-03-02 23:00+00', '1 hour')"
        " as h"
        " where not exists (select 1 from raw_dwd.precipitation r where r.station_id = 1975 and r.observed_at = h)",
    )[0][0]
    assert expected_at_source == 2
    assert "2021-03-02 precipitation: missing at the source 03, 06; in the warehouse 10-12 (UTC hours)" in result.stdout
    assert "19/24 wh" in result.stdout  # 24 expected, 2 never delivered, 3 not published
    assert "2 hours missing at the source, 3 in the warehouse" in result.stdout
    text = page.read_text(encoding="utf-8")
    assert 'class="warehouse"' in text and "in raw, not published: 10-12" in text
    # usage: --by-day needs one station
    assert run_cli("status", "--by-day", env=everyday.env(database)).returncode == 2


def raw_rows(database: db.ConnectionSettings) -> int:
    products = [name for (name,) in query(database, "select distinct product from raw_dwd.deliveries")]
    return sum(query(database, f"select count(*) from raw_dwd.{product}")[0][0] for product in products)


def hours_of(database: db.ConnectionSettings, table: str, load_id: str) -> dict[str, set[str]]:
    """Per archive file name, the hours (MESS_DATUM) of ``table``'s runs for ``load_id``."""
    rows = query(
        database,
        f"select regexp_replace(deliveries.source_file, '^.*/', ''),"
        " to_char(generate_series(runs.first_observed_at, runs.last_observed_at, interval '1 hour')"
        " at time zone 'UTC', 'YYYYMMDDHH24')"
        f" from raw_dwd.{table} as runs join raw_dwd.deliveries using (delivery_id) where runs._dlt_load_id = %s",
        (load_id,),
    )
    found: dict[str, set[str]] = {}
    for name, hour in rows:
        found.setdefault(name, set()).add(hour)
    return found


def test_three_days_of_dwd_regenerating_every_recent_archive_store_and_rebuild_only_what_changed(
    everyday: Everyday, database: db.ConnectionSettings
) -> None:
    """DWD regenerates every recent archive every day: the rolling window gains a day and loses one,
    and now and then a quality level is revised. Each day's update stores exactly the new and revised
    hours, recomputes exactly those, and leaves marts equal to a full refresh."""
    database = everyday.copy(f"{database.database}_daily")
    with serve_mirror(everyday.tmp / "daily-mirror") as mirror:
        for day in range(3):
            before = raw_rows(database)
            # day 2 revises one hour's quality level of Großenkneten's temperature archive
            revise = {"stundenwerte_TU_00044_akt.zip": "2022100112"} if day == 1 else None
            regenerated = synth_mirror.regenerate_recent(mirror.hourly, datetime(2026, 1, 10 + day, 8, 40), revise)
            assert regenerated.archives == 13 and regenerated.new_hours == 13 * 24
            assert regenerated.revised_hours == (1 if day == 1 else 0)
            result = everyday.update(database, SOURCES__DWD_HOURLY__BASE_URL=mirror.base_url)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            # raw gained exactly the new and revised hours, not the ~13 x 13,000 rows delivered again
            added = raw_rows(database) - before
            assert added == regenerated.new_hours + regenerated.revised_hours
            load_id = query(database, "select max(_dlt_load_id) from raw_dwd.deliveries")[0][0]
            assert hours_of(database, "changed_ranges", load_id) == regenerated.changed
            delivered, confirmed = query(
                database,
                "select sum(row_count), (select sum(row_count) from raw_dwd.confirmed_ranges where _dlt_load_id = %s)"
                " from raw_dwd.deliveries where _dlt_load_id = %s",
                (load_id, load_id),
            )[0]
            assert delivered == added + confirmed
            # the hourly fact recomputed exactly the changed hours of each station
            changes = query(
                database,
                "select station_id, range_start, range_end from ops.model_changes"
                " where relation = 'marts.fct_hourly_air_temperature'"
                " and change_id = (select max(change_id) from ops.model_changes"
                " where relation = 'marts.fct_hourly_air_temperature') order by 1, 2",
            )
            recomputed = {
                (station, (start + timedelta(hours=step)).astimezone(timezone.utc).strftime("%Y%m%d%H"))
                for station, start, end in changes
                for step in range(int((end - start) / timedelta(hours=1)))
            }
            expected = {
                (int(name.split("_")[2]), hour)
                for name, hours in regenerated.changed.items()
                if name.startswith("stundenwerte_TU_")
                for hour in hours
            }
            assert recomputed == expected
    built = {table: table_checksum(database, table) for table in MARTS[:4]}
    refreshed = clone_database(database, f"{database.database}_refreshed")
    dbt_ok(
        refreshed,
        everyday.tmp / "daily-target",
        "run",
        "--full-refresh",
        "--select",
        "marts.observations",
        "marts.features",
    )
    assert {table: table_checksum(refreshed, table) for table in MARTS[:4]} == built
    # explain adds up: per version of the archive, the hours of the quarter it stored or confirmed
    result = run_cli(
        "explain", "quarterly_temperature_features", "--station", "44", "--year", "2022", "--quarter", "4", "--json",
        env=everyday.env(database),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    recent = [item for item in found["deliveries"] if item["release"] == "recent"]
    stored = sum(item["raw_hours"] for item in recent)
    confirmed = sum(item["confirmed_hours"] for item in found["confirmed_by"])
    in_quarter = query(
        database,
        "select count(*) from raw_dwd.air_temperature as raw join raw_dwd.deliveries using (delivery_id)"
        " where raw.station_id = 44 and deliveries.release = 'recent'"
        " and observed_at >= '2022-10-01 00:00+00' and observed_at < '2023-01-01 00:00+00'",
    )[0][0]
    # four versions (the sample's and three regenerated) each held the quarter's 2,208 hours
    assert stored == in_quarter == 2208 + 1 and stored + confirmed == 4 * 2208
    assert len(found["confirmed_by"]) == 3


def test_explain_lists_the_deliveries_behind_a_row_and_its_counts_add_up_against_raw(everyday: Everyday) -> None:
    env = everyday.env()
    result = run_cli(
        "explain", "quarterly_temperature_features", "--station", "44", "--year", "2021", "--quarter", "3", "--json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    row = query(
        everyday.database,
        "select observation_count, expected_hours from marts.quarterly_temperature_features"
        " where station_id = 44 and year = 2021 and quarter = 3",
    )[0]
    assert found["observation_count"] == row[0] and found["missing_hours"] == row[1] - row[0]
    deliveries = found["deliveries"]
    # the historical archive and the recent one overlap in 2021-Q3: one wins, the other loses
    assert {item["release"] for item in deliveries} == {"historical", "recent"}
    assert sum(item["winning_hours"] for item in deliveries) == found["observation_count"]
    for item in deliveries:
        assert {"source_file", "release", "quality_level", "winning_hours"} <= set(item)
        raw_hours = query(
            everyday.database,
            "select count(*) from raw_dwd.air_temperature where station_id = 44 and delivery_id = %s"
            " and _dlt_load_id = %s and quality_level is not distinct from %s"
            " and observed_at >= '2021-07-01 00:00+00' and observed_at < '2021-10-01 00:00+00'",
            (item["delivery_id"], item["load_id"], item["quality_level"]),
        )[0][0]
        assert item["raw_hours"] == raw_hours > 0
        assert item["winning_hours"] + item["winning_hours_without_value"] + item["lost_hours"] == raw_hours
    recent = next(item for item in deliveries if item["release"] == "recent")
    assert recent["lost_hours"] > 0
    # every hour the hourly fact holds was won by exactly one delivery listed
    published = query(
        everyday.database,
        "select count(*) from marts.fct_hourly_air_temperature where station_id = 44"
        " and observed_at >= '2021-07-01 00:00+00' and observed_at < '2021-10-01 00:00+00'",
    )[0][0]
    assert sum(item["winning_hours"] + item["winning_hours_without_value"] for item in deliveries) == published
    assert found["published_by"]["kind"] == "dbt build"
    table = run_cli("explain", "temperature", "--station", "44", "--year", "2021", "--quarter", "3", env=env)
    assert table.returncode == 0 and "stundenwerte_TU_00044_akt.zip" in table.stdout

    missing = run_cli("explain", "temperature", "--station", "44", "--year", "2040", "--quarter", "1", env=env)
    assert missing.returncode == 1 and "nearest:" in missing.stderr, missing.stderr
    assert (
        run_cli("explain", "snowfall", "--station", "44", "--year", "2021", "--quarter", "3", env=env).returncode == 2
    )
    unknown = run_cli("explain", "temperature", "--station", "99998", "--year", "2021", "--quarter", "3", env=env)
    assert unknown.returncode == 2 and "unknown station 99998" in unknown.stderr


def test_make_ci_slim_builds_a_changed_model_and_its_children_on_a_restored_warehouse(
    everyday: Everyday, database: db.ConnectionSettings, tmp_path: Path
) -> None:
    """The README's slim CI as the pull-request job runs it: main's manifest (`make ci-state`) and a
    `db backup` of main's warehouse; on the branch, one model changed, the warehouse restored, then
    `make ci-slim` lists, builds and tests exactly that model and its children, deferring the rest to
    main's relations, and leaves every other table as main had it."""
    project = tmp_path / "project"
    for part in ("Makefile", "dbt_project.yml", "profiles.yml", "selectors.yml", "models", "macros", "seeds",
                 "snapshots", "tests/dbt", ".dlt/config.toml"):  # fmt: skip
        source, copy = REPO / part, project / part
        copy.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, copy)

    def make(target: str, connection: db.ConnectionSettings) -> subprocess.CompletedProcess:
        # the copy has no .venv of its own: the checkout's, and no install step (-o install)
        return subprocess.run(
            ["make", "-o", "install", target, f"BIN={VENV_BIN}", f"STATE={tmp_path / 'main-state'}"],
            cwd=project, env={**cli_env(connection), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    # main's job and the pull request's name the same database (the workflow's PGDATABASE)
    main = make("ci-state", database)
    assert main.returncode == 0, main.stdout[-2000:] + main.stderr[-2000:]
    dump = tmp_path / "warehouse.dump"
    assert run_cli("db", "backup", str(dump), env=everyday.env()).returncode == 0
    # the pull request: one model changed, main's warehouse restored into the job's database
    model = project / "models" / "marts" / "observations" / "fct_hourly_wind.sql"
    model.write_text(model.read_text() + "\n-- reviewed: wind speeds are m/s\n")
    db.drop_database(database)
    restored = run_cli("db", "restore", str(dump), "--into", database.database,
                       env=everyday.env(database.with_database("postgres")))  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    untouched = {table: table_checksum(database, table) for table in MARTS}
    slim = make("ci-slim", database)
    assert slim.returncode == 0, slim.stdout[-3000:] + slim.stderr[-2000:]
    output = re.sub(r"\x1b\[[0-9;]*m", "", slim.stdout)
    built = set(re.findall(r"OK created sql \S+ model (?:marts|staging|ops)\.(\w+)", output))
    manifest = json.loads((tmp_path / "main-state" / "manifest.json").read_text())
    children, frontier = set(), ["model.weatherinsight.fct_hourly_wind"]
    while frontier:
        for child in manifest["child_map"].get(frontier.pop(), []):
            if child.startswith("model.") and child not in children:
                children.add(child)
                frontier.append(child)
    assert built == {"fct_hourly_wind"} | {child.split(".")[-1] for child in children}, output[-3000:]
    assert re.search(r" PASS \S*fct_hourly_wind\S* ", output), output[-3000:]  # and its tests ran
    # nothing changed in the data: the marts (built again or deferred to) are main's, byte for byte
    assert {table: table_checksum(database, table) for table in MARTS} == untouched
