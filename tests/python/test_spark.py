"""The spark target: the DWD mirror loaded to a lake by dlt, the same dbt models built by Spark, and
the window semantics carried by partitions -- checked against PostgreSQL built from the same mirror.

One dbt worker runs every Spark build of the module, so one JVM and Spark session (~20 s to start)
serve the scenario, which walks through what a user does: a full build, a window, a window narrower
than a partition (refused), a late delivery picked up by a plain build after an unrelated window,
and a full refresh.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

from weatherinsight import db, engines, lake
from weatherinsight.ops.dbt.worker import DbtWorker

from conftest import (
    cli_env,
    dbt_ok,
    execute,
    load_ok,
    query,
    republish,
    run_cli,
    run_in_worker,
    scratch_database,
    serve_mirror,
)

pytestmark = pytest.mark.skipif(
    find_spec("pyspark") is None or find_spec("dbt.adapters.spark") is None,
    reason="the spark extra is not installed (make test installs it)",
)

PRODUCTS = "air_temperature,precipitation"
MODELS = ("+quarterly_temperature_features", "+quarterly_precipitation_features")
ARCHIVE = "precipitation/recent/stundenwerte_RR_01975_akt.zip"


class Engines:
    """The lake and Spark's folder beside a PostgreSQL database, loaded from one mirror."""

    def __init__(self, mirror, connection: db.ConnectionSettings, folder: Path) -> None:
        self.mirror = mirror
        self.connection = connection
        self.folder = folder
        self.lake = folder / "lake"
        self.spark_dir = folder / "spark"
        self.pipelines = folder / "pipelines"
        self.env = cli_env(
            connection,
            WEATHERINSIGHT_LAKE_URL=str(self.lake),
            WEATHERINSIGHT_SPARK_DIR=str(self.spark_dir),
            WEATHERINSIGHT_PIPELINES_DIR=str(self.pipelines),
        )
        # what `weatherinsight dbt --target spark` sets for dbt, in a worker that keeps its JVM
        self.spark_dir.mkdir(parents=True, exist_ok=True)
        spark = lake.spark_env(str(self.lake), self.spark_dir)
        self.worker = DbtWorker(connection, folder / "spark-worker", env=spark, parse_dir=folder / "spark-parse")
        self.builds = 0

    @property
    def warehouse(self) -> Path:
        return self.spark_dir / "warehouse"

    def load(self) -> None:
        """The mirror into the lake and into PostgreSQL, as a user loads each."""
        result = run_cli(
            "load", "dwd", "--destination", "lake", "--base-url", self.mirror.base_url, "--products", PRODUCTS,
            env=self.env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        load_ok(self.mirror, self.connection, self.pipelines, "--products", PRODUCTS)

    def spark(self, *arguments: str):
        """`weatherinsight dbt <arguments> --target spark` over the lake, as a user types it (its
        checks before Spark starts)."""
        return run_cli(
            "dbt", *arguments, "--target", "spark",
            "--target-path", str(self.folder / "target-spark"), "--log-path", str(self.folder / "logs"),
            env=self.env,
        )  # fmt: skip

    def spark_ok(self, *arguments: str) -> str:
        """dbt <arguments> on the spark target in the module's dbt worker: one JVM and Spark session
        serve every build of the module (a JVM per command costs ~20 s)."""
        self.builds += 1
        result = run_in_worker(self.worker, *arguments, target_path=self.folder / f"target-spark-{self.builds}")
        assert result.returncode == 0, result.stdout[-4000:]
        return result.stdout

    def postgres_ok(self, *arguments: str) -> str:
        return dbt_ok(self.connection, self.folder / "target-pg", *arguments)

    def partitions(self, table: str) -> dict[str, tuple[str, ...]]:
        """Each partition of a spark table and the files it holds (a rewritten one holds new files)."""
        folder = self.warehouse / "marts.db" / table
        return {
            path.name: tuple(sorted(child.name for child in path.iterdir() if child.suffix == ".parquet"))
            for path in sorted(folder.glob("lake_quarter=*"))
        }

    def compare(self) -> list[engines.MartComparison]:
        return [
            engines.compare_mart(self.connection, self.warehouse, mart)
            for mart in ("quarterly_temperature_features", "quarterly_precipitation_features")
        ]


@pytest.fixture(scope="module")
def both(server: db.ConnectionSettings, tmp_path_factory) -> Iterator[Engines]:
    folder = tmp_path_factory.mktemp("spark")
    with (
        serve_mirror(folder / "mirror") as mirror,
        scratch_database(server, "wi_test_spark") as connection,
    ):
        both = Engines(mirror, connection, folder)
        both.load()
        both.postgres_ok("run", "--select", *MODELS)
        try:
            yield both
        finally:
            both.worker.close()
            shutil.rmtree(both.spark_dir, ignore_errors=True)


def assert_equal_engines(both: Engines) -> None:
    for result in both.compare():
        assert result.equal, (result.only_postgres[:3], result.only_spark[:3], result.differences[:3])
        assert result.spark_rows > 0


def test_full_build_equals_postgres(both: Engines) -> None:
    both.spark_ok("build", "--select", *MODELS)
    assert_equal_engines(both)
    # one partition per UTC quarter that holds hours
    quarters = query(
        both.connection,
        "select distinct to_char(date_trunc('quarter', observed_at at time zone 'UTC'), 'YYYY-MM-DD') "
        "from marts.fct_hourly_precipitation order by 1",
    )
    assert list(both.partitions("fct_hourly_precipitation")) == [f"lake_quarter={row[0]}" for row in quarters]
    assert len(quarters) > 4


def test_window_narrower_than_a_partition_is_refused(both: Engines) -> None:
    before = both.partitions("fct_hourly_precipitation")
    result = both.spark("run", "--select", *MODELS, "--vars", "{start_date: 2021-03-01, end_date: 2021-04-15}")
    assert result.returncode == 2
    assert "narrower than a partition of the spark target" in result.stderr
    assert "start_date: 2021-01-01, end_date: 2021-07-01" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert both.partitions("fct_hourly_precipitation") == before


def test_window_then_plain_build_take_exactly_what_changed(both: Engines) -> None:
    tables = ("fct_hourly_precipitation", "quarterly_precipitation_features", "fct_hourly_air_temperature")
    # DWD republishes the archive with 2021-08-18 12:00 corrected
    republish(both.mirror, ARCHIVE, "2021081812", "7.5", both.folder)
    both.load()
    before = {table: both.partitions(table) for table in tables}
    # a window over another quarter, widened to whole quarters: it rewrites exactly its partitions,
    # leaves the product it does not name alone, and must not make the plain build skip the new load
    window = "{start_date: 2021-01-01, end_date: 2021-05-15, products: [precipitation]}"
    output = both.spark_ok("run", "--select", *MODELS, "--vars", window)
    assert "window widened to whole quarters [2021-01-01, 2021-07-01)" in output
    for table in tables[:2]:
        after = both.partitions(table)
        rewritten = sorted(name for name in after if after[name] != before[table][name])
        assert rewritten == ["lake_quarter=2021-01-01", "lake_quarter=2021-04-01"], (table, rewritten)
    assert both.partitions("fct_hourly_air_temperature") == before["fct_hourly_air_temperature"]
    output = both.spark_ok("run", "--select", *MODELS)
    # the republished archive is a new delivery of all its hours (2020-03-18 to 2021-09-18): seven
    # quarters, two of them already rewritten by the window; station 44's later quarters stay
    assert "fct_hourly_precipitation: 5 quarter partition(s) with newer loads" in output
    assert "fct_hourly_air_temperature: 0 quarter partition(s)" in output
    after = both.partitions("fct_hourly_precipitation")
    changed = sorted(name for name in after if after[name] != before["fct_hourly_precipitation"].get(name))
    archive_quarters = ("2020-01", "2020-04", "2020-07", "2020-10", "2021-01", "2021-04", "2021-07")
    assert changed == [f"lake_quarter={quarter}-01" for quarter in archive_quarters]
    assert len(after) > len(changed)
    hourly = engines.read_spark_mart(both.warehouse, "fct_hourly_precipitation").to_pylist()
    corrected = [row for row in hourly if row["station_id"] == 1975 and row["observed_at"].hour == 12]
    corrected = [row for row in corrected if row["observed_at"].date().isoformat() == "2021-08-18"]
    assert [str(row["precipitation_mm"]) for row in corrected] == ["7.500"]
    assert corrected[0]["delivery_count"] == 2
    # PostgreSQL's plain build takes the same delivery: the engines agree again
    both.postgres_ok("run", "--select", *MODELS)
    assert query(
        both.connection,
        "select precipitation_mm from marts.fct_hourly_precipitation "
        "where station_id = 1975 and observed_at = '2021-08-18 12:00:00+00'",
    ) == [(pytest.approx(7.5),)]
    assert_equal_engines(both)


def test_full_refresh_equals_incremental_builds(both: Engines) -> None:
    # a plain build with nothing new rewrites nothing
    settled = both.partitions("fct_hourly_precipitation")
    assert "fct_hourly_precipitation: 0 quarter partition(s)" in both.spark_ok("run", "--select", *MODELS)
    assert both.partitions("fct_hourly_precipitation") == settled
    incremental = {
        mart: sorted(engines.read_spark_mart(both.warehouse, mart).drop_columns(["lake_quarter"]).to_pylist(), key=repr)
        for mart in ("fct_hourly_precipitation", "quarterly_precipitation_features", "quarterly_temperature_features")
    }
    both.spark_ok("run", "--select", *MODELS, "--full-refresh")
    for mart, rows in incremental.items():
        refreshed = engines.read_spark_mart(both.warehouse, mart).drop_columns(["lake_quarter"]).to_pylist()
        assert sorted(refreshed, key=repr) == rows, mart


def test_lake_show_and_lake_compare_as_the_readme_runs_them(both: Engines) -> None:
    """`lake compare` says every mart equal with the rows counted, and exit 1 naming the mart once a
    value differs on one engine; `lake show` prints Spark's newest rows of a station."""
    rows = sum(result.spark_rows for result in both.compare())
    compared = run_cli("lake", "compare", env=both.env)
    assert compared.returncode == 0, compared.stderr
    assert f"all 2 quarterly marts equal on both engines ({rows:,} rows)" in compared.stderr  # the report's stream
    changed = execute(
        both.connection,
        "update marts.quarterly_precipitation_features set observation_count = observation_count + 1"
        " where station_id = 1975 and year = 2021 and quarter = 1",
    )
    try:
        assert changed == 1
        differing = run_cli("lake", "compare", env=both.env)
        assert differing.returncode == 1
        assert differing.stderr.strip().splitlines()[-1] == (
            "Error: 1 of 2 marts differ between the engines: quarterly_precipitation_features"
        )
    finally:
        execute(
            both.connection,
            "update marts.quarterly_precipitation_features set observation_count = observation_count - 1"
            " where station_id = 1975 and year = 2021 and quarter = 1",
        )
    names, newest = engines.newest_rows(both.warehouse, "quarterly_precipitation_features", 3, 1975)
    columns = ("station_id", "year", "quarter", "observation_count")
    shown = run_cli("lake", "show", "quarterly_precipitation_features", "--station", "1975", "--limit", "3",
                    "--columns", ",".join(columns), env={**both.env, "COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    printed = [tuple(int(cell) for cell in re.findall(r"\d+", line)) for line in shown.stdout.splitlines()
               if line.startswith("│")]  # fmt: skip
    assert printed == [tuple(row[names.index(name)] for name in columns) for row in newest] and len(printed) == 3


@pytest.mark.parametrize("command", [("update",), ("backfill", "run", "--start", "2021-01-01", "--end", "2021-04-01")])
def test_backfill_and_update_refuse_the_spark_target(both: Engines, command: tuple[str, ...]) -> None:
    before = query(both.connection, "select count(*) from information_schema.schemata where schema_name = 'ops'")
    result = run_cli(*command, env={**both.env, "DBT_TARGET": "spark"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: weatherinsight {command[0]} runs on PostgreSQL"), lines
    assert "weatherinsight dbt build --target spark --vars" in lines[0]
    assert (
        query(both.connection, "select count(*) from information_schema.schemata where schema_name = 'ops'") == before
    )


def test_lake_that_cannot_be_written_is_one_line(both: Engines, tmp_path: Path) -> None:
    # a folder below a file: no user, root included, can make it
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fetched = len(both.mirror.downloads())
    result = run_cli(
        "load", "dwd", "--destination", "lake", "--lake-url", str(blocker / "lake"),
        "--base-url", both.mirror.base_url, env=both.env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot be written" in result.stderr and "--lake-url" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(both.mirror.downloads()) == fetched  # refused before anything was fetched


def test_spark_target_without_java_is_one_line(both: Engines) -> None:
    env = {key: value for key, value in both.env.items() if key != "JAVA_HOME"}
    env["PATH"] = "/nonexistent"  # the command itself is started by its full path
    result = run_cli("dbt", "build", "--target", "spark", env=env)
    assert result.returncode == 2
    assert "needs Java 17" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unloaded_lake_is_one_line(both: Engines, tmp_path: Path) -> None:
    env = {**both.env, "WEATHERINSIGHT_LAKE_URL": str(tmp_path / "empty-lake")}
    result = run_cli("dbt", "run", "--target", "spark", env=env)
    assert result.returncode == 2
    assert "holds no DWD load" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
