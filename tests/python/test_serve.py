"""Serve and recover, as users do it: `weatherinsight serve` over real HTTP, `db backup` / `db restore`
with the README's recovery procedure, the `dataset_versions` model, and the monitoring page of
`status --html` rendered in a real headless Chromium.

One warehouse is backfilled once for the module (air temperature and precipitation, 2021 by quarter,
from the DWD mirror on 127.0.0.1: the sample's air temperature folder has a station list, so
`dim_station` is filled); tests that change it work on a copy (CREATE DATABASE … TEMPLATE)."""

from __future__ import annotations

import contextlib
import json
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from test_docs import procedure_commands, run_as_written

from weatherinsight import api, db

from conftest import (
    REPO,
    VENV_BIN,
    cli_env,
    clone_database,
    execute,
    query,
    run_cli,
    scratch_database,
    serve_mirror,
    table_checksum,
    worker_name,
)

PRODUCT = "precipitation"
YEAR_2021 = ("--start", "2021-01-01", "--end", "2022-01-01")
MARTS = ("marts.fct_hourly_precipitation", "marts.fct_daily_weather", "marts.quarterly_precipitation_features")


class Warehouse:
    """The module's backfilled warehouse and the mirror it was loaded from."""

    def __init__(self, database: db.ConnectionSettings, tmp: Path, base_url: str) -> None:
        self.database = database
        self.tmp = tmp
        self.base_url = base_url

    def env(self, database: db.ConnectionSettings | None = None, **extra: str) -> dict[str, str]:
        return cli_env(
            database or self.database,
            WEATHERINSIGHT_PIPELINES_DIR=str(self.tmp / "pipelines"),
            SOURCES__DWD_HOURLY__BASE_URL=self.base_url,
            COLUMNS="200",
            **extra,
        )

    def copy(self, name: str) -> db.ConnectionSettings:
        """A copy of the backfilled warehouse, dropped by the caller (the module's API keeps pooled
        sessions on the template: they are ended, and its pool reconnects)."""
        return clone_database(self.database, name)


@pytest.fixture(scope="module")
def warehouse(server: db.ConnectionSettings, tmp_path_factory) -> Iterator[Warehouse]:
    tmp = tmp_path_factory.mktemp("served")
    with scratch_database(server, "wi_test_serve") as database, serve_mirror(tmp / "mirror") as mirror:
        built = Warehouse(database, tmp, mirror.base_url)
        result = run_cli("backfill", "run", "--products", f"air_temperature,{PRODUCT}", *YEAR_2021, env=built.env())
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        # the template must have no other sessions when it is copied
        yield built


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Api:
    def __init__(self, process: subprocess.Popen, base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=60)

    def json(self, path: str, status: int = 200) -> dict:
        response = self.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:500])
        assert response.headers["content-type"].startswith("application/json")
        return response.json()


def start_api(env: dict[str, str], port: int | None = None, *options: str) -> Api:
    port = port or free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "weatherinsight"), "serve", "--port", str(port), *options],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = Api(process, f"http://127.0.0.1:{port}")
    for _ in range(300):
        assert process.poll() is None, process.communicate()
        try:
            if client.get("/health").status_code == 200:
                return client
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the API did not come up in 30 s")


@pytest.fixture(scope="module")
def served(warehouse: Warehouse) -> Iterator[Api]:
    client = start_api(warehouse.env())
    yield client
    client.process.terminate()
    client.process.wait(timeout=30)


def as_json_number(value) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    return value


def test_features_stations_runs_versions_coverage_and_health_answer_from_the_warehouse(
    warehouse: Warehouse, served: Api
) -> None:
    # the runbook's check, for the product backfilled here
    answer = served.json("/api/v1/features/precipitation?year=2021&quarter=2&limit=5")
    expected = query(
        warehouse.database,
        "select station_id, observation_count, precipitation_mm_total from marts.quarterly_precipitation_features"
        " where year = 2021 and quarter = 2 order by station_id",
    )
    assert answer["total"] == len(expected) > 0
    assert [
        (row["station_id"], row["observation_count"], row["precipitation_mm_total"]) for row in answer["items"]
    ] == [(station, count, as_json_number(total)) for station, count, total in expected[:5]]
    row = answer["items"][0]
    assert row["quarter_start_at"] == "2021-04-01T00:00:00Z" and row["year"] == 2021 and row["quarter"] == 2
    # pagination: pages are slices of one order, with the same total
    everything = served.json("/api/v1/features/precipitation?limit=1000")
    assert (
        everything["total"]
        == query(warehouse.database, "select count(*) from marts.quarterly_precipitation_features")[0][0]
    )
    second = served.json("/api/v1/features/precipitation?limit=2&offset=2")
    assert second["items"] == everything["items"][2:4] and second["total"] == everything["total"]
    assert [(r["year"], r["quarter"], r["station_id"]) for r in everything["items"]] == sorted(
        (r["year"], r["quarter"], r["station_id"]) for r in everything["items"]
    )
    station = everything["items"][0]["station_id"]
    only = served.json(f"/api/v1/features/precipitation?station_id={station}&limit=1000")
    assert only["total"] == sum(1 for r in everything["items"] if r["station_id"] == station)
    assert "precipitation" in [item["product"] for item in served.json("/api/v1/features")["items"]]

    stations = served.json("/api/v1/stations")
    assert (
        stations["total"] == query(warehouse.database, "select count(*) from marts.dim_station where is_current")[0][0]
    )

    runs = served.json("/api/v1/runs")
    assert runs["total"] == 1 and runs["items"][0]["status"] == "succeeded"
    run = served.json(f"/api/v1/runs/{runs['items'][0]['run_id']}")
    marts_windows = [w for w in run["windows"] if w["layer"] == "marts" and w["product"] == PRODUCT]
    assert [w["window_start"] for w in marts_windows] == ["2021-01-01", "2021-04-01", "2021-07-01", "2021-10-01"]
    assert served.json("/api/v1/runs/999999", status=404)["error"] == "no run 999999"

    versions = served.json("/api/v1/dataset-versions?product=precipitation")
    assert [(v["year"], v["quarter"], v["version"], v["is_latest"]) for v in versions["items"]] == [
        (2021, quarter, 1, True) for quarter in (1, 2, 3, 4)
    ]
    by_window = {w["window_id"]: w for w in marts_windows}
    for version in versions["items"]:
        window = by_window[version["window_id"]]
        assert version["checksum"] == window["checksum"] and version["rows_built"] == window["rows_built"]

    coverage = served.json("/api/v1/coverage?product=precipitation&start=2021-01-01&end=2022-01-01")
    assert [(q["quarter"], q["state"]) for q in coverage["quarters"]] == [
        (f"2021-Q{quarter}", "complete") for quarter in (1, 2, 3, 4)
    ]

    health = served.json("/health")
    assert health["status"] == "ok" and health["database"] is True
    assert health["latest_successful_run"]["run_id"] == runs["items"][0]["run_id"]
    assert health["freshness"]["precipitation"]["newest_quarter_start"].startswith("2021-")

    assert served.get("/docs").status_code == 200
    paths = served.json("/openapi.json")["paths"]
    assert {"/api/v1/features/{product}", "/api/v1/stations", "/api/v1/coverage", "/api/v1/runs", "/health"} <= set(
        paths
    )
    # /docs shows every answer's shape: a named schema for each route's 200 and for its errors
    for path, methods in paths.items():
        responses = methods["get"]["responses"]
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"], path
        assert responses["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorAnswer"), path


BAD_REQUESTS = [
    ("/api/v1/features/precipitation?year=twenty", 422, "year"),
    ("/api/v1/features/precipitation?quarter=5", 422, "quarter"),
    ("/api/v1/features/precipitation?limit=-1", 422, "limit"),
    ("/api/v1/features/precipitation?limit=1000000", 422, "limit"),
    ("/api/v1/features/precipitation?offset=-3", 422, "offset"),
    ("/api/v1/features/precipitation?station_id=1%3B%20drop%20table%20marts.dim_station", 422, "station_id"),
    ("/api/v1/features/precipitation?location_id=1", 400, "location_id"),
    ("/api/v1/features/precipitation%27%3B%20delete%20from%20ops.backfill_runs%3B--", 404, None),
    ("/api/v1/features/snowfall", 404, None),
    ("/api/v1/runs?status=x%27%20or%201%3D1--", 422, "status"),
    ("/api/v1/runs/abc", 422, "run_id"),
    ("/api/v1/coverage?product=precipitation&start=2021-13-01&end=2022-01-01", 422, "start"),
    ("/api/v1/coverage?product=precipitation&start=2022-01-01&end=2021-01-01", 422, "end"),
    ("/api/v1/coverage?product=drop%20table&start=2021-01-01&end=2022-01-01", 422, "product"),
    ("/api/v1/dataset-versions?product=Robert%27);DROP%20TABLE%20Students;--", 422, "product"),
]


@pytest.mark.parametrize(("path", "status", "parameter"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_parameters_are_a_4xx_json_naming_the_parameter_and_change_nothing(
    warehouse: Warehouse, served: Api, path: str, status: int, parameter: str | None
) -> None:
    before = {table: table_checksum(warehouse.database, table) for table in (*MARTS, "ops.backfill_runs")}
    answer = served.json(path, status=status)
    assert answer["error"]
    if parameter:
        assert answer["parameter"] == parameter, answer
    assert {table: table_checksum(warehouse.database, table) for table in before} == before


def test_an_unknown_product_is_404_listing_the_products_there_are(warehouse: Warehouse, served: Api) -> None:
    answer = served.json("/api/v1/features/snowfall", status=404)
    published = query(
        warehouse.database,
        "select substring(table_name from '^quarterly_(.*)_features$') from information_schema.tables"
        " where table_schema = 'marts' and table_name like 'quarterly\\_%%\\_features' order by 1",
    )
    assert answer["error"] == "unknown product 'snowfall'"
    assert answer["products"] == [name for (name,) in published]
    assert {"temperature", "precipitation"} <= set(answer["products"])  # the two products backfilled here


def test_a_query_past_the_statement_timeout_and_a_database_that_cannot_be_read_are_503(
    warehouse: Warehouse, database: db.ConnectionSettings
) -> None:
    """`serve --statement-timeout 1`: a request whose query waits for a lock longer than that is
    cancelled and answered 503 (the API never hangs on the warehouse), /health too; once the database
    refuses connections, /health is 503 "database unreachable"; and each recovers with the database."""
    copy = warehouse.copy(database.database)
    client = start_api(warehouse.env(copy), None, "--statement-timeout", "1")
    try:
        assert client.json("/health")["status"] == "ok"
        with table_locked(copy, "marts.quarterly_precipitation_features"):
            slow = client.json("/api/v1/features/precipitation?year=2021&quarter=2", status=503)
            assert slow["error"] == "the query ran past the API's statement timeout (1 s): try again later"
            health = client.json("/health", status=503)
            assert health["status"] == "unavailable" and health["database"] is False
            assert "canceling statement due to statement timeout" in health["error"]
        assert client.json("/api/v1/features/precipitation?year=2021&quarter=2")["total"] > 0
        execute(server_of(copy), f'alter database "{copy.database}" allow_connections false')
        query(
            server_of(copy),
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (copy.database,),
        )  # fmt: skip  (the API's pooled sessions end; new ones are refused)
        down = client.json("/health", status=503)
        assert down["status"] == "unavailable" and down["error"].startswith("database unreachable:"), down
        execute(server_of(copy), f'alter database "{copy.database}" allow_connections true')
        # the pool reconnects on its own (with a backoff): healthy again without a restart
        for _ in range(60):
            if client.get("/health").status_code == 200:
                break
            time.sleep(1)
        assert client.json("/health")["status"] == "ok"
    finally:
        client.process.terminate()
        client.process.wait(timeout=30)


def server_of(connection: db.ConnectionSettings) -> db.ConnectionSettings:
    return connection.with_database("postgres")


@contextlib.contextmanager
def table_locked(database: db.ConnectionSettings, table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on ``table``: every reader of it waits until the context ends."""
    holder = db.connect(database)
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"lock table {table} in access exclusive mode")
        yield
    finally:
        holder.rollback()
        holder.close()


def test_the_api_role_can_read_but_not_write(warehouse: Warehouse, served: Api) -> None:
    conn = db.connect(api.reader(warehouse.database))
    try:
        with conn.cursor() as cursor:
            cursor.execute("select current_user, count(*) from marts.quarterly_precipitation_features")
            assert cursor.fetchone()[0] == api.READER_ROLE
        conn.rollback()
        for statement in (
            "delete from marts.quarterly_precipitation_features",
            "set transaction read write; delete from marts.quarterly_precipitation_features",
            "create table marts.intruder (a int)",
        ):
            with pytest.raises(Exception, match="read-only|permission denied"), conn.cursor() as cursor:
                cursor.execute(statement)
            conn.rollback()
    finally:
        conn.close()


def test_concurrent_clients_see_the_old_or_the_new_quarter_while_a_backfill_publishes_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """20 clients read 2021-Q2 while a forced backfill republishes it with changed raw values: every
    answer is the whole old quarter or the whole new one, and no request fails."""
    copy = warehouse.copy(worker_name("wi_test_serve_concurrency"))
    client = None
    try:
        env = warehouse.env(copy)
        client = start_api(env)
        path = "/api/v1/features/precipitation?year=2021&quarter=2&limit=1000"
        old = client.json(path)["items"]
        # a corrected delivery, as if DWD had republished the quarter ×2 (what the forced rebuild reads)
        assert (
            execute(
                copy,
                "update raw_dwd.precipitation set r1 = r1 * 2 + 0.1"
                " where observed_at >= '2021-04-01 00:00+00' and observed_at < '2021-07-01 00:00+00'",
            )
            > 0
        )
        answers: list[tuple[int, list | str, float]] = []
        sent, seen = [0] * 20, [0] * 20
        stop = threading.Event()

        def read(reader: int) -> None:
            """Read until the publish is over, then once more; every request counts, a failed one too."""
            session = requests.Session()
            while True:
                last = stop.is_set()
                started = time.perf_counter()
                sent[reader] += 1
                try:
                    response = session.get(client.base_url + path, timeout=60)
                    body = response.json()["items"] if response.status_code == 200 else response.text
                    answers.append((response.status_code, body, time.perf_counter() - started))
                except Exception as error:  # noqa: BLE001 - a failed request is an answer too: a failure
                    answers.append((0, repr(error), time.perf_counter() - started))
                seen[reader] += 1
                if last:
                    return

        readers = [threading.Thread(target=read, args=(reader,)) for reader in range(20)]
        for thread in readers:
            thread.start()
        while min(seen) < 1:  # every reader has an answer before the publish starts
            time.sleep(0.05)
        backfill = run_cli(
            "backfill", "run", "--no-load", "--force", "--products", PRODUCT,
            "--start", "2021-04-01", "--end", "2021-07-01", env=env,
        )  # fmt: skip
        stop.set()
        for thread in readers:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in readers)
        assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
        new = client.json(path)["items"]
        assert new != old
        assert len(answers) == sum(sent) and min(sent) >= 2  # each reader: before the publish and after it
        assert [(status, body) for status, body, _ in answers if status != 200] == []
        kinds = ["old" if body == old else "new" if body == new else "mixed" for _, body, _ in answers]
        assert "mixed" not in kinds
        assert kinds.count("old") >= 20 and kinds.count("new") >= 20  # the first and last read of each reader
        latencies = sorted(took * 1000 for _, _, took in answers)
        quantiles = statistics.quantiles(latencies, n=100)
        print(
            f"\n{len(answers)} requests from 20 clients during a publish: {kinds.count('old')} old, "
            f"{kinds.count('new')} new; latency p50 {quantiles[49]:.0f} ms, p95 {quantiles[94]:.0f} ms, "
            f"p99 {quantiles[98]:.0f} ms"
        )
    finally:
        if client is not None:
            client.process.terminate()
            client.process.wait(timeout=30)
        db.drop_database(copy)


def mart_checksums(database: db.ConnectionSettings) -> dict[str, str]:
    return {table: table_checksum(database, table) for table in MARTS}


def test_the_readme_recovery_procedure_restores_the_backup_and_replays_what_it_lacks(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A backup with the first half of 2021 published; the second half backfilled after it; the
    warehouse corrupted; the README's procedure (restore, plan, run) ends with the marts as before."""
    name = worker_name("weatherinsight_recovery")
    database = warehouse.copy(name)
    try:
        env = warehouse.env(database)
        for table, where in (
            ("marts.fct_hourly_precipitation", "observed_at >= '2021-07-01 00:00+00'"),
            ("marts.fct_daily_weather", "observed_date >= '2021-07-01'"),
            ("marts.quarterly_precipitation_features", "year = 2021 and quarter >= 3"),
        ):
            execute(database, f"delete from {table} where {where}")
        execute(
            database,
            "delete from ops.backfill_windows where layer = 'marts' and window_start >= '2021-07-01';"
            " update ops.backfill_runs set windows_total = 2, windows_succeeded = 2",
        )
        backup = run_cli("db", "backup", "backups/weatherinsight.dump", env=env, cwd=tmp_path)
        assert backup.returncode == 0, backup.stderr
        assert (tmp_path / "backups" / "weatherinsight.dump").stat().st_size > 100_000
        # work done after the backup, then the disaster
        second_half = run_cli(
            "backfill", "run", "--backup", "--products", PRODUCT, *YEAR_2021,
            env={**env, "WEATHERINSIGHT_BACKUP_DIR": str(tmp_path / "before-run")},
        )  # fmt: skip
        assert second_half.returncode == 0, second_half.stderr[-2000:]
        taken = list((tmp_path / "before-run").glob(f"{name}-*.dump"))
        assert len(taken) == 1 and f"backed up {name} to {taken[0]}" in second_half.stdout
        before = mart_checksums(database)
        assert before == mart_checksums(warehouse.database)
        execute(database, "drop table marts.quarterly_precipitation_features; delete from marts.fct_daily_weather")

        commands = procedure_commands("### Recover from a corrupted database")
        assert [command.split()[:3] for command in commands] == [
            ["weatherinsight", "db", "restore"],
            ["weatherinsight", "backfill", "plan"],
            ["weatherinsight", "backfill", "run"],
        ]
        run_as_written(commands, env, cwd=tmp_path)
        assert mart_checksums(database) == before
        aside = query(
            database,
            "select datname from pg_database where datname like %s order by 1",
            (f"{name}__replaced_%",),
        )
        assert len(aside) == 1  # the corrupted database was kept aside, not dropped
        db.drop_database(database.with_database(aside[0][0]))
    finally:
        db.drop_database(database)


def databases(connection: db.ConnectionSettings) -> list[str]:
    """The databases named after ``connection``'s (a restore's work and its set-aside copies; the
    server serves other tests' databases too)."""
    like = connection.database.replace("_", "\\_") + "%"
    return [row[0] for row in query(connection, "select datname from pg_database where datname like %s order by 1",
                                    (like,))]  # fmt: skip


def test_bad_backups_and_restores_are_one_line_and_leave_the_warehouse_untouched(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    env = warehouse.env()
    before = mart_checksums(warehouse.database)
    listed = databases(warehouse.database)

    good = tmp_path / "good.dump"
    assert run_cli("db", "backup", str(good), env=env).returncode == 0
    data = good.read_bytes()
    (tmp_path / "truncated.dump").write_bytes(data[: len(data) * 9 // 10])  # its table of contents is whole
    (tmp_path / "garbage.dump").write_bytes(b"PGDMP this is not a dump" * 100)
    cases = [
        (("db", "restore", str(tmp_path / "missing.dump")), 2, "does not exist"),
        (("db", "restore", str(tmp_path / "garbage.dump"), "--replace"), 1, "not a readable pg_dump archive"),
        (("db", "restore", str(tmp_path / "truncated.dump"), "--replace"), 1, "untouched"),
        (("db", "restore", str(good)), 1, "exists"),
        (("db", "backup", str(good)), 1, "exists"),
    ]
    for arguments, code, message in cases:
        result = run_cli(*arguments, env=env)
        assert result.returncode == code, (arguments, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert message in result.stderr and "Traceback" not in result.stderr, (arguments, result.stderr)
        assert len([line for line in lines if line.startswith("Error")]) == 1
    # no space: the dump hits a file size limit half way
    limited = subprocess.run(
        [str(VENV_BIN / "weatherinsight"), "db", "backup", str(tmp_path / "full-disk.dump")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) // 3, len(data) // 3)),
    )
    assert limited.returncode == 1 and "pg_dump" in limited.stderr, limited.stderr
    assert not list(tmp_path.glob("full-disk.dump*"))  # no partial file left behind
    assert mart_checksums(warehouse.database) == before
    assert databases(warehouse.database) == listed


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail("no Chromium: `make test` installs Debian's chromium package (apt-get install chromium)")
    return found


def render(page: Path, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran, from a real headless Chromium (and a screenshot)."""
    flags = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=15000",
        "--window-size=1280,1500",
    ]
    if screenshot is not None:
        subprocess.run([*flags, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=180)
    result = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_monitoring_page_renders_its_charts_in_a_headless_browser(warehouse: Warehouse, tmp_path: Path) -> None:
    result = run_cli(
        "status", "--products", PRODUCT, *YEAR_2021, "--html", str(tmp_path / "status.html"), env=warehouse.env()
    )
    assert result.returncode == 0, result.stderr
    page = tmp_path / "status.html"
    text = page.read_text(encoding="utf-8")
    assert "cdn" not in text.lower().split("<script>", 1)[0] and 'src="http' not in text  # self-contained
    dom = render(page, tmp_path, tmp_path / "status.png")
    for chart in ("throughput", "failures", "duration"):
        div = dom.split(f'id="chart-{chart}"', 1)[1].split('id="chart-', 1)[0]
        assert 'class="main-svg"' in div, f"chart {chart} did not render"
        assert "scatterlayer" in div or "barlayer" in div
    assert dom.count('<td class="complete"') == 4  # the coverage matrix: 2021's four quarters
    assert (tmp_path / "status.png").stat().st_size > 20_000


def test_the_readme_curl_examples_run_as_written(warehouse: Warehouse, served: Api) -> None:
    """The README's API block: `serve` as its first line, then curl commands, each answering JSON
    without an error (the port the module's server listens on stands in for 8000)."""
    commands = procedure_commands("### The HTTP API")
    assert commands[0].startswith("weatherinsight serve --port 8000")
    curls = commands[1:]
    assert len(curls) >= 8 and all(command.startswith("curl -s 'http://127.0.0.1:8000/") for command in curls)
    port = served.base_url.rsplit(":", 1)[1]
    for command in curls:
        arguments = shlex.split(command.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        result = subprocess.run([*arguments, "--fail-with-body"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (command, result.stdout[-500:], result.stderr)
        answer = json.loads(result.stdout)
        assert answer.get("error") is None, (command, answer)
        assert answer.get("items") or answer.get("quarters") or answer.get("status") == "ok" or answer.get("windows")
