"""Window-scoped reprocessing with real dbt builds on real DWD deliveries (issue: windows, late
data, full-refresh equivalence). Hamburg's wind archives of 2021-08-27 and 2021-09-19 overlap for
12,648 hours and differ in 1,296 quality levels and one value (2021-08-18 09:00, 6.0 -> 5.9 m/s)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest

from weatherinsight import db
from weatherinsight.dwd.settings import HOURLY_PATH
from weatherinsight.ops.backfill.locks import writer_lock_name

from conftest import (
    DELIVERIES,
    SAMPLE_MIRROR,
    Mirror,
    archive_hours,
    cli_env,
    clone_database,
    dbt_ok,
    load_ok,
    query,
    run_dbt,
    scratch_database,
    serve_mirror,
    table_checksum,
)

OLDER = DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip"
NEWER = SAMPLE_MIRROR / HOURLY_PATH / "wind/recent/stundenwerte_FF_01975_akt.zip"  # 2021-09-19
ARCHIVE = "wind/recent/stundenwerte_FF_01975_akt.zip"
SELECTION = ("--select", "+quarterly_wind_features", "+fct_daily_weather")
TIME_COLUMN = {
    "marts.fct_hourly_wind": "observed_at",
    "marts.fct_daily_weather": "observed_date",
    "marts.quarterly_wind_features": "quarter_start_at",
}
TABLES = tuple(TIME_COLUMN)
#: sessions of this test's database waiting for an advisory lock (the server may serve other tests too)
WAITING_FOR_A_LOCK = (
    "select count(*) from pg_locks where locktype = 'advisory' and not granted"
    " and database = (select oid from pg_database where datname = current_database())"
)


@dataclass
class Warehouse:
    """One database, one mirror: load deliveries and build with real dbt, as a user would."""

    database: db.ConnectionSettings
    mirror: Mirror
    tmp: Path

    def load(self, delivery: Path, *arguments: str) -> None:
        self.mirror.replace(ARCHIVE, delivery)
        load_ok(self.mirror, self.database, self.tmp / "pipelines", "--products", "wind", "--stations", "1975",
                *arguments)  # fmt: skip

    def dbt(self, *arguments: str) -> str:
        return dbt_ok(self.database, self.tmp / "target", *arguments)

    def build(self, *arguments: str, tests: bool = False) -> str:
        """`dbt build` of the selection -- its models with their seeds, snapshot and data tests --
        with ``tests`` or while the warehouse has no seeds yet; else `dbt run` of its models: the
        windows' subject is which rows the models write, and each test here that builds a window
        with its data tests says so."""
        seeded = query(self.database, "select to_regclass('reference.dwd_products') is not null")[0][0]
        return self.dbt("build" if tests or not seeded else "run", *SELECTION, *arguments)

    def window(self, start: str, end: str, tests: bool = False, **extra: str) -> str:
        extras = "".join(f", {key}: {value}" for key, value in extra.items())
        return self.build("--vars", f"{{start_date: {start}, end_date: {end}{extras}}}", tests=tests)

    def checksums(self, where: str | None = None) -> dict:
        """Checksums per table, optionally of the rows outside ``where`` (a window on the time column)."""
        return {
            table: table_checksum(
                self.database, table, where=None if where is None else f"not ({where.format(column=column)})"
            )
            for table, column in TIME_COLUMN.items()
        }


@pytest.fixture
def warehouse(mirror, database, tmp_path) -> Warehouse:
    return Warehouse(database, mirror, tmp_path)


@pytest.fixture(scope="module")
def built(server, tmp_path_factory) -> Iterator[dict[Path, db.ConnectionSettings]]:
    """One warehouse per delivery, loaded and built once for the module (tests copy them)."""
    tmp = tmp_path_factory.mktemp("windows_built")
    templates = {}
    with contextlib.ExitStack() as stack:
        mirror = stack.enter_context(serve_mirror(tmp / "mirror"))
        for name, delivery in (("newer", NEWER), ("older", OLDER)):
            database = stack.enter_context(scratch_database(server, f"wi_test_windows_{name}"))
            template = Warehouse(database, mirror, tmp / name)
            template.load(delivery)
            template.build()
            templates[delivery] = database
        yield templates


def built_from(built, delivery: Path, mirror, database, tmp_path) -> Warehouse:
    """A copy of the module's warehouse built from ``delivery`` (as `load` then `build` leave it)."""
    return Warehouse(clone_database(built[delivery], database.database), mirror, tmp_path)


@pytest.fixture
def with_newer(built, mirror, database, tmp_path) -> Warehouse:
    return built_from(built, NEWER, mirror, database, tmp_path)


@pytest.fixture
def with_older(built, mirror, database, tmp_path) -> Warehouse:
    return built_from(built, OLDER, mirror, database, tmp_path)


def test_window_replaces_only_its_rows_and_drops_rows_gone_upstream(with_newer: Warehouse) -> None:
    warehouse = with_newer
    inside = "{column} >= '2021-01-01 00:00+00' and {column} < '2021-04-01 00:00+00'"
    outside_before = warehouse.checksums(where=inside)
    # a row vanishes upstream inside the window
    conn = db.connect(warehouse.database)
    with conn, conn.cursor() as cursor:
        cursor.execute("delete from raw_dwd.wind where observed_at = '2021-02-14 12:00+00'")
        assert cursor.rowcount == 1
    conn.close()
    output = warehouse.window("2021-01-01", "2021-04-01", tests=True)  # `dbt build`, as the README runs it
    assert "window: fct_hourly_wind inserted 2159 rows" in output
    assert re.search(r"Done\. PASS=\d+ WARN=\d+ ERROR=0 SKIP=0", output), output[-2000:]
    assert warehouse.checksums(where=inside) == outside_before
    assert query(
        warehouse.database, "select count(*) from marts.fct_hourly_wind where observed_at = '2021-02-14 12:00+00'"
    ) == [(0,)]
    assert query(
        warehouse.database,
        "select observation_count from marts.quarterly_wind_features where year = 2021 and quarter = 1",
    ) == [(2159,)]


def test_quarterly_window_is_widened_and_logged(with_newer: Warehouse) -> None:
    warehouse = with_newer
    before = warehouse.checksums(where="{column} >= '2021-01-01 00:00+00' and {column} < '2021-04-01 00:00+00'")
    output = warehouse.window("2021-02-10", "2021-02-20")
    assert "quarterly_wind_features: window widened to whole quarters [2021-01-01, 2021-04-01)" in output
    assert warehouse.checksums(where="{column} >= '2021-01-01 00:00+00' and {column} < '2021-04-01 00:00+00'") == before


def test_same_window_twice_gives_identical_tables(with_older: Warehouse) -> None:
    warehouse = with_older
    warehouse.window("2020-07-01", "2021-01-01")
    once = warehouse.checksums()
    warehouse.window("2020-07-01", "2021-01-01")
    assert warehouse.checksums() == once


def test_products_and_stations_vars_narrow_the_window(with_newer: Warehouse) -> None:
    warehouse = with_newer
    before = warehouse.checksums()
    output = warehouse.window("2021-01-01", "2021-04-01", products="[air_temperature]")
    assert "fct_hourly_wind: not in products air_temperature: nothing to build" in output
    assert "window: fct_hourly_wind inserted 0 rows" in output
    output = warehouse.window("2021-01-01", "2021-04-01", stations="[44]")
    assert "window: fct_hourly_wind inserted 0 rows" in output
    # the wind rows of station 1975 were left alone both times (the daily fact is recomputed alike)
    assert warehouse.checksums() == before


def test_window_outside_the_data_builds_nothing_and_says_so(with_newer: Warehouse) -> None:
    warehouse = with_newer
    before = warehouse.checksums()
    output = warehouse.window("1990-01-01", "1991-01-01")
    assert "window holds no data in the selected models: nothing was built" in output
    assert warehouse.checksums() == before


def test_plain_build_catches_a_late_delivery_for_an_old_quarter(with_older: Warehouse) -> None:
    warehouse = with_older
    hourly_before = {
        row[0].astimezone(UTC): row[1:]  # hours in UTC, whatever the session's time zone (PGTZ)
        for row in query(
            warehouse.database, "select observed_at, wind_speed_ms, quality_level from marts.fct_hourly_wind"
        )
    }
    quarters_before = {
        row[0]: row
        for row in query(warehouse.database, "select quarter_start_at, * from marts.quarterly_wind_features")
    }
    # DWD republishes: the later download, loaded for Q3 2021 only, changes QN and one value
    warehouse.load(NEWER, "--start", "2021-07-01", "--end", "2021-10-01")
    warehouse.build()  # plain incremental run, no window vars
    hourly_after = {
        row[0].astimezone(UTC): row[1:]  # hours in UTC, whatever the session's time zone (PGTZ)
        for row in query(
            warehouse.database, "select observed_at, wind_speed_ms, quality_level from marts.fct_hourly_wind"
        )
    }
    changed = {hour for hour in hourly_after if hourly_after[hour] != hourly_before.get(hour)}
    assert changed, "the late delivery changed nothing"
    assert all(hour.year == 2021 and 7 <= hour.month <= 9 for hour in changed)
    assert hourly_after[min(h for h in changed if h.month == 8 and h.day == 18 and h.hour == 9)] == (Decimal("5.9"), 1)
    quarters_after = {
        row[0]: row
        for row in query(warehouse.database, "select quarter_start_at, * from marts.quarterly_wind_features")
    }
    changed_quarters = {
        quarter for quarter in quarters_after if quarters_after[quarter] != quarters_before.get(quarter)
    }
    assert [(quarter.year, quarter.month) for quarter in changed_quarters] == [(2021, 7)]


def test_full_refresh_equals_windowed_builds_equals_plain_incremental(with_older: Warehouse) -> None:
    warehouse = with_older
    warehouse.load(NEWER)
    warehouse.build()
    plain = warehouse.checksums()
    conn = db.connect(warehouse.database)
    with conn, conn.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"drop table {table}")
    conn.close()
    for start, end in (("2020-01-01", "2020-07-01"), ("2020-07-01", "2021-01-01"), ("2021-01-01", "2022-01-01")):
        warehouse.window(start, end)
    windowed = warehouse.checksums()
    warehouse.build("--full-refresh", tests=True)
    full = warehouse.checksums()
    assert plain == windowed == full
    assert all(count > 0 for count, _ in full.values())


BAD_VARS = [
    ("{start_date: 2021-04-01, end_date: 2021-01-01}", "end_date 2021-01-01 is not after start_date 2021-04-01"),
    ("{start_date: 2021-01-01}", "give both start_date and end_date"),
    ("{start_date: '2021-02-30', end_date: 2021-04-01}", "start_date '2021-02-30' is not a valid date"),
    ("{start_date: 20210101, end_date: 2021-04-01}", "start_date '20210101' is not a date in the form YYYY-MM-DD"),
    ("{start_date: 2021-01-01, end_date: 2021-04-01, products: [snow]}", "unknown product 'snow'"),
    ("{products: [wind]}", "products, stations and locations narrow a window"),
    ("{start_date: 2021-01-01, end_date: 2021-04-01, stations: [abc]}", "station 'abc' is not a DWD station id"),
    ("{start_date: 2021-01-01, end_date: 2021-04-01, locations: [-1]}", "location '-1' is not a location id"),
]


def test_bad_window_vars_are_rejected_and_change_nothing(with_newer: Warehouse) -> None:
    warehouse = with_newer
    before = warehouse.checksums()
    for index, (variables, message) in enumerate(BAD_VARS):
        # the first case through the dbt CLI as a user types it, the others in the test's dbt worker
        result = run_dbt(
            warehouse.database, "build", *SELECTION, "--vars", variables, target_path=warehouse.tmp / "target",
            cli=index == 0,
        )  # fmt: skip
        assert result.returncode == 2, variables  # dbt's code for an error before any node ran
        assert f"window vars: {message}" in result.stdout, (variables, result.stdout[-2000:])
        assert "START sql incremental model" not in result.stdout, variables
    assert warehouse.checksums() == before


def test_a_second_writer_waits_for_the_first_instead_of_interleaving(with_newer: Warehouse) -> None:
    """Hold the model's writer lock as another build would, start a windowed build, and see it wait
    (a lock wait in pg_locks, no rows changed) until the holder commits; then it completes."""
    import subprocess
    import time

    from conftest import VENV_BIN

    warehouse = with_newer
    before = warehouse.checksums()
    holder = db.connect(warehouse.database)
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s))", (writer_lock_name("marts", "fct_hourly_wind"),))
    env = cli_env(warehouse.database)
    second = subprocess.Popen(
        [str(VENV_BIN / "dbt"), "run", "--select", "fct_hourly_wind", "--vars",
         "{start_date: 2021-01-01, end_date: 2021-04-01}", "--target-path", str(warehouse.tmp / "target2")],
        env=env, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        waiting = 0
        for _ in range(240):  # bounded: at most ~2 minutes for dbt to start and reach the lock
            waiting = query(warehouse.database, WAITING_FOR_A_LOCK)[0][0]
            if waiting or second.poll() is not None:
                break
            time.sleep(0.5)
        assert waiting == 1, "the second build did not wait for the writer lock"
        assert second.poll() is None
        assert warehouse.checksums() == before
    finally:
        holder.rollback()
        holder.close()
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output[-2000:]
    assert "window: fct_hourly_wind inserted 2160 rows" in output


SEQUENCES = {
    # the sequence: a window build in between must not hide the newer delivery elsewhere
    "window between two loads": (OLDER, [("load", NEWER), ("window", "2021-07-01", "2021-10-01")]),
    "narrowed windows, then the older file": (
        NEWER,
        [
            ("load", OLDER),
            ("window", "2021-04-01", "2021-07-01", {"stations": "[1975]"}),
            ("window", "2020-06-15", "2020-07-15", {"products": "[wind]"}),
        ],
    ),
}


@pytest.mark.parametrize(("first", "steps"), SEQUENCES.values(), ids=SEQUENCES.keys())
def test_loads_windows_and_plain_builds_in_any_order_end_equal_to_a_full_refresh(
    built, mirror, database, tmp_path, first: Path, steps
) -> None:
    """Whatever windows were built in between, a plain build processes every delivery that no build
    has processed in full yet, and ends byte-identical to a full refresh of the same raw rows. (The
    first delivery loaded and built: a copy of the module's warehouse of that delivery.)"""
    warehouse = built_from(built, first, mirror, database, tmp_path)
    for step in steps:
        if step[0] == "load":
            warehouse.load(step[1])
        else:
            warehouse.window(step[1], step[2], **(step[3] if len(step) > 3 else {}))
    warehouse.build()  # plain
    plain = warehouse.checksums()
    two_deliveries = query(warehouse.database, "select count(*) from marts.fct_hourly_wind where delivery_count = 2")[
        0
    ][0]
    # two versions of an hour: where both downloads hold it, the older one stored first and the newer
    # storing what differs (counted here from the files), or the older arriving after the newer as
    # a stale copy kept whole; wherever the windows were
    older, newer = archive_hours(OLDER), archive_hours(NEWER)
    both = [hour for hour in older if hour in newer]
    differing = sum(1 for hour in both if older[hour] != newer[hour])
    assert len(both) == 12_648 and 0 < differing < len(both)
    assert two_deliveries == (differing if first == OLDER else len(both))
    warehouse.build("--full-refresh")
    assert warehouse.checksums() == plain
    warehouse.build()  # nothing left to process: nothing changes
    assert warehouse.checksums() == plain


def test_overlapping_deliveries_give_the_same_marts_in_either_order(built, mirror, database, tmp_path) -> None:
    """The two downloads loaded in either order, each followed by `dbt build` with its data tests:
    the same marts (but for load ids), the later file winning equal quality levels and the better
    level winning whichever file came last."""
    ends = {}
    for first, then in ((OLDER, NEWER), (NEWER, OLDER)):
        warehouse = built_from(built, first, mirror, database, tmp_path / first.parent.name)
        warehouse.load(then)
        warehouse.build(tests=True)
        # delivery_count aside: the stored versions depend on arrival order (a stale copy is kept whole
        # as history, a newer version stores what differs); the winners do not
        ends[first] = {
            table: table_checksum(database, table, ("load_id", "latest_load_id", "delivery_count")) for table in TABLES
        }
        # the 552 hours from 2021-06-15 00:00 to 2021-07-07 23:00 went from QN 1 (first download) to QN 3
        # (second): the better level wins whichever file came last
        assert query(
            database,
            "select count(*) from marts.fct_hourly_wind where delivery_count = 2 and quality_level = 3 "
            "and source_file like '%FF_01975%' "
            "and observed_at between '2021-06-15 00:00+00' and '2021-07-07 23:00+00'",
        ) == [(552,)]
        # the one value DWD changed between the downloads: the later file wins on equal quality level
        assert query(
            database,
            "select wind_speed_ms, quality_level from marts.fct_hourly_wind where observed_at = '2021-08-18 09:00+00'",
        ) == [(Decimal("5.9"), 1)]
    assert ends[OLDER] == ends[NEWER]
