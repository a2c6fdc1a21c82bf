"""The Open-Meteo source end to end: recorded answers parse to the expected UTC rows; loads against
the local stand-in (real HTTP on 127.0.0.1, real dlt, real PostgreSQL) respect the rate limit, retry
429/5xx/timeouts/cut connections, quarantine malformed answers, resume per location after SIGKILL,
pick up a new seed line, refuse bad requests before writing anything; dbt's plain, windowed and
full-refresh builds of the location marts agree, and the later fetch of an hour wins."""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from weatherinsight import db
from weatherinsight.openmeteo.payload import PayloadError, parse_answer
from weatherinsight.openmeteo.settings import VARIABLES, Location
from weatherinsight.openmeteo.standin import StandIn, generated_value

from conftest import REPO, VENV_BIN, FaultRecord, cli_env, dbt_ok, execute, query, run_cli, table_checksum

FIXTURES = REPO / "tests" / "fixtures" / "openmeteo"
#: quick retries, a short read timeout: fault tests do not wait for production backoff
QUICK = {
    "SOURCES__OPENMETEO_HOURLY__HTTP_BACKOFF_SECONDS": "0.05",
    "SOURCES__OPENMETEO_HOURLY__HTTP_TIMEOUT_SECONDS": "4",
}
LOCATION_MARTS = (
    "marts.fct_hourly_location_weather",
    "marts.fct_hourly_air_quality",
    "marts.fct_daily_location_weather",
    "marts.fct_daily_air_quality",
    "marts.quarterly_location_weather_features",
    "marts.quarterly_air_quality_features",
)


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def catalogue(api: str, *names: str) -> list:
    return [VARIABLES[api][name] for name in names]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as served:
        yield served


def load(database, standin: StandIn, tmp_path: Path, *arguments: str, cwd: Path = REPO, **env: str):
    """`weatherinsight load openmeteo` against the stand-in, as a user runs it."""
    environment = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"), **QUICK, **env)
    return run_cli("load", "openmeteo", "--base-url", standin.base_url, *arguments, env=environment, cwd=cwd)


def load_ok(database, standin: StandIn, tmp_path: Path, *arguments: str, **env: str) -> str:
    result = load(database, standin, tmp_path, *arguments, **env)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return result.stdout


def raw_hours(database, table: str = "location_weather") -> tuple[int, int]:
    """(rows, distinct location-hours) of a raw table."""
    return query(
        database,
        f"select count(*), count(distinct (location_id, observed_at)) from raw_openmeteo.{table}",
    )[0]


WEATHER_DEFAULTS = [name for name, variable in VARIABLES["weather"].items() if variable.is_default]


def converged(
    database, locations: dict[int, tuple[float, float]], start: date, end: date, fault: str, trials: int, recovery: str
) -> FaultRecord:
    """Compare raw_openmeteo.location_weather after recovery with a clean fetch, computed here
    independently from the stand-in's value function: every hour of every location present once,
    every default variable's value the one a clean answer holds."""
    first = int(datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()) // 3600
    hours = range(first, first + (end - start).days * 24)
    expected = {(location, hour) for location in locations for hour in hours}
    rows = query(
        database,
        "select location_id, cast(extract(epoch from observed_at) as bigint) / 3600, "
        + ", ".join(WEATHER_DEFAULTS)
        + " from raw_openmeteo.location_weather",
    )
    present = {(row[0], row[1]) for row in rows}
    identical = present == expected and all(
        values == tuple(round(generated_value(name, *locations[row[0]], row[1], 0), 2) for name in WEATHER_DEFAULTS)
        for row in rows
        for values in [tuple(row[2:])]
    )
    return FaultRecord(
        fault=f"Open-Meteo: {fault}",
        trials=trials,
        rows_checked=len(expected),
        rows_lost=len(expected - present),
        rows_duplicated=len(rows) - len(present),
        marts_identical=identical,
        recovery=recovery,
    )


# ---- recorded answers ------------------------------------------------------------------------


@pytest.mark.quick
def test_recorded_answers_parse_to_the_expected_utc_rows() -> None:
    """The four genuine answers: local times with +9:30 and -4:00 offsets become UTC instants, wind
    in km/h and kn becomes m/s, two coordinates in one call give two blocks, the escaped μg/m³ unit
    is read; every value is the recorded one (converted where the unit says)."""
    adelaide = Location(5, "Adelaide", -34.76274, 138.64557, "AU", ("weather",))
    names = (
        "temperature_2m",
        "relative_humidity_2m",
        "et0_fao_evapotranspiration",
        "precipitation",
        "wind_speed_10m",
        "wet_bulb_temperature_2m",
    )
    text = recorded("zervakisai_vinea__open_meteo_archive.json")
    document = json.loads(text)
    [block] = parse_answer(text, [adelaide], catalogue("weather", *names))
    assert block.row_count == 72
    assert block.times[0] == datetime(2025, 1, 9, 14, 30, tzinfo=timezone.utc)  # 00:00 at +9:30
    assert block.times[-1] == datetime(2025, 1, 12, 13, 30, tzinfo=timezone.utc)
    for name in names:
        assert block.columns[name] == document["hourly"][name]

    savannah = Location(6, "Savannah", 32.09139, -81.086975, "US", ("weather",))
    text = recorded("StanJohn04_AQI_Predict__openmeteo_archive.json")
    document = json.loads(text)
    [block] = parse_answer(text, [savannah], catalogue("weather", "temperature_2m", "wind_speed_10m"))
    assert block.times[0] == datetime(2026, 7, 21, 4, tzinfo=timezone.utc)  # 00:00 at -4:00
    assert block.row_count == 48
    assert block.columns["wind_speed_10m"] == pytest.approx([v / 3.6 for v in document["hourly"]["wind_speed_10m"]])

    kornati = [
        Location(7, "Kornati", 43.760983, 15.362538, "HR", ("weather",)),
        Location(9, "Kornati north", 43.90158, 15.409091, "HR", ("weather",)),
    ]
    text = recorded("jirivrany_ship-log__openmeteo_archive.json")
    document = json.loads(text)
    blocks = parse_answer(text, kornati, catalogue("weather", "wind_speed_10m", "pressure_msl", "cloud_cover"))
    assert [block.row_count for block in blocks] == [24, 24]
    assert blocks[1].latitude == document[1]["latitude"]
    for block, element in zip(blocks, document, strict=True):
        assert block.times[0] == datetime(2025, 6, 15, tzinfo=timezone.utc)
        knots = element["hourly"]["wind_speed_10m"]
        assert block.columns["wind_speed_10m"] == pytest.approx([v * 1852 / 3600 for v in knots])
        assert block.columns["cloud_cover"] == element["hourly"]["cloud_cover"]

    bangkok = Location(8, "Bangkok", 13.8, 100.5, "TH", ("air_quality",))
    text = recorded("MooncakeXI_thaiair__openmeteo_air_quality.json")
    document = json.loads(text)
    [block] = parse_answer(text, [bangkok], catalogue("air_quality", "pm2_5", "pm10"))
    assert block.row_count == 96
    assert block.units["pm2_5"] == "μg/m³"
    assert block.columns["pm10"] == document["hourly"]["pm10"]


def _mutated(change) -> str:
    document = json.loads(recorded("zervakisai_vinea__open_meteo_archive.json"))
    change(document)
    return json.dumps(document)


MALFORMED = {
    "invalid JSON": (lambda: recorded("zervakisai_vinea__open_meteo_archive.json")[:2000], "invalid JSON"),
    "arrays of unequal length": (
        lambda: _mutated(lambda d: d["hourly"]["temperature_2m"].pop()),
        "arrays of unequal length: time has 72, temperature_2m has 71",
    ),
    "an error body": (lambda: json.dumps({"error": True, "reason": "Invalid date"}), "error body: Invalid date"),
    "other coordinates": (lambda: _mutated(lambda d: d.update(latitude=48.1)), "answer for 48.1,138.646"),
    "a value out of range": (
        lambda: _mutated(lambda d: d["hourly"]["temperature_2m"].__setitem__(5, 75.0)),
        "temperature_2m 75 °C at 2025-01-10T05:00 is outside -90..60",
    ),
    "a unit that cannot be converted": (
        lambda: _mutated(lambda d: d["hourly_units"].__setitem__("wind_speed_10m", "furlong/fortnight")),
        "wind_speed_10m is in 'furlong/fortnight'",
    ),
    "a repeated hour": (
        lambda: _mutated(lambda d: d["hourly"]["time"].__setitem__(3, d["hourly"]["time"][2])),
        "time[3] '2025-01-10T02:00' repeats or goes back",
    ),
}


@pytest.mark.quick
@pytest.mark.parametrize("case", list(MALFORMED), ids=lambda case: case.replace(" ", "_"))
def test_a_malformed_answer_is_refused_with_its_reason(case: str) -> None:
    make, reason = MALFORMED[case]
    adelaide = Location(5, "Adelaide", -34.76274, 138.64557, "AU", ("weather",))
    with pytest.raises(PayloadError, match="^" + re.escape(reason)):
        parse_answer(make(), [adelaide], catalogue("weather", "temperature_2m", "wind_speed_10m"))


# ---- loads against the stand-in ----------------------------------------------------------------


@pytest.mark.faults
def test_429_5xx_timeouts_and_cut_connections_are_retried(
    database, standin: StandIn, tmp_path: Path, reliability
) -> None:
    """Every fault once (429 with Retry-After: 1, 500 twice, an answer slower than the read timeout,
    a body cut off half-way): each request is retried until its answer arrives whole; every hour
    is loaded once, and the provider saw one call per attempt."""

    def batch(latitude: str, start: str):
        return lambda params: params["latitude"] == latitude and params["start_date"] == start

    standin.inject("429", seconds=1, when=batch("52.9336", "2024-01-01"))
    standin.inject("500", times=2, when=batch("52.9336", "2024-01-15"))
    standin.inject("slow", seconds=7, when=batch("53.6332", "2024-01-01"))
    standin.inject("cut", when=batch("53.6332", "2024-01-15"))
    out = load_ok(database, standin, tmp_path, "--api", "weather", "--locations", "1,2",
                  "--start", "2024-01-01", "--end", "2024-02-26")  # fmt: skip
    assert raw_hours(database) == (2 * 56 * 24, 2 * 56 * 24)
    requests, attempts = query(database, "select count(*), sum(attempts) from raw_openmeteo.requests")[0]
    assert (requests, attempts) == (8, 8 + 5)
    assert len(standin.calls) == 13
    after_429 = [i for i, call in enumerate(standin.calls) if call.fault == "429"][0]
    assert standin.calls[after_429 + 1].at - standin.calls[after_429].at >= 1.0  # Retry-After honoured
    statuses = query(database, "select distinct status from raw_openmeteo.checkpoints where status <> 'running'")
    assert statuses == [("ok",)]
    assert "locations ok: 2, failed: 0" in out and "success rate: 100.0 %" in out
    record = converged(
        database,
        {1: (52.9336, 8.2370), 2: (53.6332, 9.9881)},
        date(2024, 1, 1),
        date(2024, 2, 26),
        "HTTP 429 (Retry-After: 1), HTTP 500 twice, an answer past the 4 s read timeout, a body cut off",
        5,
        "retried in the run",
    )
    assert record.marts_identical and not record.rows_lost and not record.rows_duplicated
    reliability(record)


def test_the_rate_limit_is_respected_as_the_provider_counts(database, standin: StandIn, tmp_path: Path) -> None:
    """Six one-day requests at 4 calls a minute, the provider's minute counted as 6 s (a tenth): the
    stand-in never sees more than 4 calls in any 6 s, and all six arrive, the last two held back
    until the first window has passed (the limiter waits instead of failing)."""
    out = load_ok(database, standin, tmp_path, "--api", "weather", "--locations", "1", "--batch-days", "1",
                  "--rate-limit", "4", "--start", "2024-03-01", "--end", "2024-03-07",
                  SOURCES__OPENMETEO_HOURLY__LIMIT_WINDOW_SCALE="0.1")  # fmt: skip
    assert len(standin.calls) == 6
    assert standin.max_calls_within(6.0) == 4
    assert standin.calls[4].at - standin.calls[0].at >= 6.0 - 0.05  # the fifth waited for the first to leave
    assert raw_hours(database) == (6 * 24, 6 * 24)
    held = float(out.split(" s held back by the rate limit")[0].rsplit(", ", 1)[1])
    # what the loader says it held back is the gap before the fifth and sixth calls, less the two
    # answers' own time (well under a second each on a local stand-in)
    gap = standin.calls[5].at - standin.calls[3].at
    assert gap - 2.0 <= held <= gap + 0.05, (held, gap)


#: the provider's minute counted as 5 ms, so its hour is 0.3 s and its day 7.2 s
TINY_WINDOWS = {"minute": 0.005, "hour": 0.3, "day": 7.2}


@pytest.mark.faults
def test_failed_attempts_count_against_the_providers_limits_across_two_runs(
    database, standin: StandIn, tmp_path: Path
) -> None:
    """The provider counts every attempt, the failed ones too. A plan of 4 calls a minute, 6 an hour
    and 8 a day, the provider's windows scaled down (its day: 7.2 s): the first load's four one-day
    requests meet two HTTP 500s and send six attempts; the second load is primed from the recorded
    attempts, so it sends two at once and holds the other two until the first run's calls leave the
    day. Across both runs the stand-in never sees more than a window's limit, every hour lands once."""
    limits = {
        "SOURCES__OPENMETEO_HOURLY__LIMIT_WINDOW_SCALE": str(TINY_WINDOWS["minute"] / 60),
        "SOURCES__OPENMETEO_HOURLY__CALLS_PER_HOUR": "6",
        "SOURCES__OPENMETEO_HOURLY__CALLS_PER_DAY": "8",
    }
    arguments = ("--api", "weather", "--locations", "1", "--batch-days", "1", "--rate-limit", "4")
    for day in ("2024-03-02", "2024-03-04"):
        standin.inject("500", when=lambda params, day=day: params["start_date"] == day)
    load_ok(database, standin, tmp_path, *arguments, "--start", "2024-03-01", "--end", "2024-03-05", **limits)
    assert len(standin.calls) == 6
    recorded = query(database, "select outcome, count(*) from raw_openmeteo.attempts group by 1 order by 1")
    assert recorded == [("HTTP 200", 4), ("HTTP 500", 2)]
    planned = load_ok(database, standin, tmp_path, *arguments, "--start", "2024-03-05", "--end", "2024-03-09",
                      "--dry-run", **limits)  # fmt: skip
    assert "of 8 calls in the last day" in planned and "(2 failed attempts among them)" in planned
    load_ok(database, standin, tmp_path, *arguments, "--start", "2024-03-05", "--end", "2024-03-09", **limits)
    assert len(standin.calls) == 10
    for window, seconds in TINY_WINDOWS.items():
        assert standin.max_calls_within(seconds) <= {"minute": 4, "hour": 6, "day": 8}[window], window
    # the second run's third call waited until the first run's first call had left the day
    assert standin.calls[8].at - standin.calls[0].at >= TINY_WINDOWS["day"] - 0.05
    assert raw_hours(database) == (8 * 24, 8 * 24)
    assert query(database, "select count(*) from raw_openmeteo.attempts") == [(10,)]
    # a warehouse loaded before attempts were recorded: its answers count (times their attempts)
    execute(database, "drop table raw_openmeteo.attempts")
    legacy = load_ok(database, standin, tmp_path, *arguments, "--start", "2024-03-09", "--end", "2024-03-10",
                     "--dry-run", **limits)  # fmt: skip
    assert "calls in the last day" in legacy and "(0 failed attempts among them)" in legacy


@pytest.mark.faults
def test_malformed_answers_are_quarantined_and_the_load_carries_on(
    database, standin: StandIn, tmp_path: Path, reliability
) -> None:
    """Four malformed answers among six: each kept whole in quarantine with its reason, the other
    answers loaded; the next load fetches exactly the four again and completes the window."""
    standin.inject("invalid_json", when=lambda p: p["start_date"] == "2024-01-15" and p["latitude"] == "52.9336")
    standin.inject("unequal_arrays", when=lambda p: p["start_date"] == "2024-01-29" and p["latitude"] == "52.9336")
    standin.inject(
        "error_body",
        reason="Data corrupted",
        when=lambda p: p["start_date"] == "2024-01-01" and p["latitude"] == "53.6332",
    )
    standin.inject("other_coordinates", when=lambda p: p["start_date"] == "2024-01-15" and p["latitude"] == "53.6332")
    arguments = ("--api", "weather", "--locations", "1,2", "--start", "2024-01-01", "--end", "2024-02-12")
    out = load_ok(database, standin, tmp_path, *arguments)
    reasons = sorted(row[0] for row in query(database, "select reason from raw_openmeteo.quarantine"))
    expected = ["HTTP 400: Data corrupted", "answer for -53.75,100, not for location 2", "arrays of unequal length",
                "invalid JSON"]  # fmt: skip
    assert len(reasons) == 4 and all(reason.startswith(start) for reason, start in zip(reasons, expected, strict=True))
    payloads = query(database, "select count(*) from raw_openmeteo.quarantine where payload is not null")
    assert payloads == [(4,)]
    assert raw_hours(database) == (2 * 14 * 24, 2 * 14 * 24)
    assert "quarantined" in out
    calls_before = len(standin.calls)
    load_ok(database, standin, tmp_path, *arguments)
    assert len(standin.calls) - calls_before == 4
    assert raw_hours(database) == (6 * 14 * 24, 6 * 14 * 24)
    record = converged(
        database,
        {1: (52.9336, 8.2370), 2: (53.6332, 9.9881)},
        date(2024, 1, 1),
        date(2024, 2, 12),
        "malformed answers (invalid JSON, arrays of unequal length, an error body, another place's coordinates)",
        4,
        "quarantined whole with the reason; the next load fetches them again",
    )
    assert record.marts_identical and not record.rows_lost and not record.rows_duplicated
    reliability(record)


@pytest.mark.faults
def test_a_sigkilled_load_resumes_each_location_after_its_last_committed_chunk(
    database, standin: StandIn, tmp_path: Path, reliability, busy_machine
) -> None:
    """SIGKILL while a three-location load commits every 4 answers; the rerun fetches exactly the
    batches no committed chunk holds and every hour ends up loaded once."""
    standin.inject("slow", times=10_000, seconds=0.15)
    arguments = ("--api", "weather", "--locations", "1,2,3", "--start", "2023-01-01", "--end", "2023-07-01")
    environment = cli_env(
        database,
        WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"),
        SOURCES__OPENMETEO_HOURLY__COMMIT_EVERY_REQUESTS="4",
        **QUICK,
    )
    process = subprocess.Popen(
        [str(VENV_BIN / "weatherinsight"), "load", "openmeteo", "--base-url", standin.base_url, *arguments],
        env=environment,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            exists = query(database, "select to_regclass('raw_openmeteo.requests') is not null")[0][0]
            if exists and query(database, "select count(*) from raw_openmeteo.requests")[0][0] >= 10:
                break
            assert process.poll() is None, "the load ended before it could be killed"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    before = {
        (location, start.date())
        for location, start in query(database, "select location_id, window_start from raw_openmeteo.requests")
    }
    assert 10 <= len(before) < 39
    standin.faults.clear()
    calls_before = len(standin.calls)
    load_ok(database, standin, tmp_path, *arguments)
    latitudes = {"52.9336": 1, "53.6332": 2, "54.175": 3}
    refetched = {
        (latitudes[call.params["latitude"]], date.fromisoformat(call.params["start_date"]))
        for call in standin.calls[calls_before:]
    }
    every_batch = {(location, date(2023, 1, 1) + timedelta(days=14 * n)) for location in (1, 2, 3) for n in range(13)}
    assert refetched == every_batch - before
    assert len(standin.calls) - calls_before == len(refetched)
    assert raw_hours(database) == (3 * 181 * 24, 3 * 181 * 24)
    assert query(database, "select count(*) from raw_openmeteo.requests") == [(39,)]
    record = converged(
        database,
        {1: (52.9336, 8.2370), 2: (53.6332, 9.9881), 3: (54.1750, 7.8920)},
        date(2023, 1, 1),
        date(2023, 7, 1),
        "SIGKILL of a three-location load between chunk commits",
        1,
        "rerun: each location resumes after its last committed chunk",
    )
    assert record.marts_identical and not record.rows_lost and not record.rows_duplicated
    reliability(record)


@pytest.mark.faults
def test_a_chunk_postgresql_committed_before_the_loader_died_is_stored_once(
    database, standin: StandIn, tmp_path: Path, reliability
) -> None:
    """The moment a SIGKILL hits only by chance: PostgreSQL has committed a job of a chunk, and the
    loader dies before dlt notes the job done. Made certain here: the loader is killed while its
    COPY into location_weather waits for a lock the test holds, and the test then commits that job's
    own file, as PostgreSQL would have. The next load runs the job again (dlt cannot know it landed)
    and must still leave every hour once."""
    load_ok(
        database,
        standin,
        tmp_path,
        "--api",
        "weather",
        "--locations",
        "1",
        "--start",
        "2023-01-01",
        "--end",
        "2023-01-15",
    )  # fmt: skip  (the raw tables exist from here on)
    arguments = ("--api", "weather", "--locations", "1,2", "--start", "2023-01-01", "--end", "2023-03-01")
    environment = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"), **QUICK)
    holder = db.connect(database)
    try:
        with holder.cursor() as cursor:
            cursor.execute("lock table raw_openmeteo.location_weather in share mode")
        process = subprocess.Popen(
            [str(VENV_BIN / "weatherinsight"), "load", "openmeteo", "--base-url", standin.base_url, *arguments],
            env=environment, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(1200):
                waiting = query(database, "select count(*) from pg_stat_activity where datname = current_database()"
                                          " and wait_event_type = 'Lock' and query ilike %s",
                                ('%copy "raw_openmeteo"."location_weather"%',))[0][0]  # fmt: skip
                assert process.poll() is None, "the load ended before its COPY waited"
                if waiting:
                    break
                time.sleep(0.1)
            assert waiting, "the load's COPY never waited for the lock"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        holder.rollback()
        holder.close()
    # the job the loader had started: what PostgreSQL would have committed just before the kill
    (job,) = (tmp_path / "pipelines").glob("*/load/normalized/*/started_jobs/location_weather.*.csv")
    conn = db.connect(database)
    with conn, conn.cursor() as cursor, job.open() as rows:
        columns = rows.readline().strip()  # dlt's header: the quoted column names
        rows.seek(0)
        cursor.copy_expert(f"copy raw_openmeteo.location_weather ({columns}) from stdin with (format csv, header)",
                           rows)  # fmt: skip
        committed = cursor.rowcount
    conn.close()
    assert committed == (45 + 59) * 24  # what the first load did not hold: location 1 from Jan 15, location 2 all
    assert raw_hours(database)[0] == 14 * 24 + committed
    load_ok(database, standin, tmp_path, *arguments)
    assert raw_hours(database) == (2 * 59 * 24, 2 * 59 * 24)
    record = converged(
        database,
        {1: (52.9336, 8.2370), 2: (53.6332, 9.9881)},
        date(2023, 1, 1),
        date(2023, 3, 1),
        "SIGKILL after PostgreSQL committed a chunk, before dlt noted it (the job runs again)",
        1,
        "rerun: the job's second copy of its rows is removed",
    )
    assert record.marts_identical and not record.rows_lost and not record.rows_duplicated
    reliability(record)


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO / name, copy / name)
    for name in ("models", "macros", "seeds", "snapshots"):
        shutil.copytree(REPO / name, copy / name)
    return copy


def test_a_new_seed_line_is_loaded_and_a_bad_one_refused(database, standin: StandIn, tmp_path: Path) -> None:
    """One line added to seeds/locations.csv: the next load fetches it, and dbt builds it into
    dim_location and the marts. A line with latitude 95: one line, exit 2, nothing fetched."""
    project = _project_copy(tmp_path)
    seeds = project / "seeds" / "locations.csv"
    seeds.write_text(seeds.read_text() + "9,Potsdam,52.3813,13.0622,DE,3987,weather\n")
    result = load(database, standin, tmp_path, "--api", "weather", "--start", "2024-01-01", "--end", "2024-01-15",
                  cwd=project)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert query(database, "select count(*) from raw_openmeteo.location_weather where location_id = 9") == [(14 * 24,)]
    environment = cli_env(database, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    built = subprocess.run(
        [str(VENV_BIN / "dbt"), "build", "--select", "+quarterly_location_weather_features", "+dim_location"],
        cwd=project, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:]
    assert query(database, "select location_name from marts.dim_location where location_id = 9") == [("Potsdam",)]
    assert query(
        database, "select observation_count from marts.quarterly_location_weather_features where location_id = 9"
    ) == [(14 * 24,)]

    seeds.write_text(seeds.read_text() + "10,Nowhere,95,13.0,DE,,weather\n")
    calls = len(standin.calls)
    result = load(database, standin, tmp_path, "--api", "weather", "--start", "2024-01-15", "--end", "2024-01-20",
                  cwd=project)  # fmt: skip
    assert result.returncode == 2
    assert "locations.csv line 11: latitude 95 is outside -90..90" in result.stderr
    assert len(standin.calls) == calls


BAD_REQUESTS = {
    "unknown location": (("--api", "weather", "--locations", "99"), "unknown location '99'"),
    "location without that API": (("--api", "air-quality", "--locations", "5"), "not configured for air_quality"),
    "unknown variable": (("--api", "weather", "--variables", "snowfall_depth_m"), "unknown weather variable"),
    "unknown API": (("--api", "pollen",), "unknown API 'pollen'"),
    "reversed dates": (("--api", "weather", "--start", "2024-02-01", "--end", "2024-01-01"), "is not after start"),
    "before the archive": (
        ("--api", "weather", "--start", "1939-12-01", "--end", "1940-02-01"), "starts on 1940-01-01"
    ),
    "batch days 0": (("--api", "weather", "--batch-days", "0"), "--batch-days must be at least 1"),
    "not an Open-Meteo server": (("--api", "weather", "--locations", "1"), "does not answer like Open-Meteo's API"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=lambda case: case.replace(" ", "_"))
def test_a_bad_request_is_one_line_exit_2_and_writes_nothing(
    case: str, database, standin: StandIn, tmp_path: Path
) -> None:
    arguments, message = BAD_REQUESTS[case]
    if "--start" not in arguments:
        arguments = (*arguments, "--start", "2024-01-01", "--end", "2024-01-15")
    environment = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"), **QUICK)
    base_url = standin.base_url + ("/not-open-meteo" if case == "not an Open-Meteo server" else "")
    result = run_cli("load", "openmeteo", "--base-url", base_url, *arguments, env=environment)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert query(database, "select count(*) from pg_namespace where nspname = 'raw_openmeteo'") == [(0,)]


def test_plain_and_windowed_builds_equal_a_full_refresh_and_the_later_fetch_wins(
    database, standin: StandIn, tmp_path: Path
) -> None:
    """Loads followed by plain builds, a windowed build for one location over part of a load (across
    a quarter boundary) and a refetch of recent days the provider revised: the six location marts
    equal a full refresh, and the revised hours carry the later fetch's values."""
    target = tmp_path / "target"
    today = datetime.now(timezone.utc).date()
    recent = (today - timedelta(days=9), today - timedelta(days=2))
    load_ok(database, standin, tmp_path, "--api", "weather,air-quality", "--locations", "1,2",
            "--start", "2024-01-01", "--end", "2024-03-01")  # fmt: skip
    dbt_ok(database, target, "build", "--select", "+marts.locations")
    load_ok(database, standin, tmp_path, "--api", "weather,air-quality", "--locations", "1,2",
            "--start", "2024-03-01", "--end", "2024-05-01")  # fmt: skip
    # a window that covers part of the new load, for one location: the plain build after it must
    # still process the rest (location 1's new months, location 2's days after the window)
    dbt_ok(database, target, "run", "--select", "marts.locations",
           "--vars", "{start_date: 2024-02-20, end_date: 2024-04-10, locations: [2]}")  # fmt: skip
    load_ok(database, standin, tmp_path, "--api", "weather", "--locations", "1",
            "--start", recent[0].isoformat(), "--end", recent[1].isoformat())  # fmt: skip
    dbt_ok(database, target, "run", "--select", "+marts.locations")
    first = query(
        database,
        "select temperature_c from marts.fct_hourly_location_weather where location_id = 1 and observed_at = %s",
        (datetime(recent[0].year, recent[0].month, recent[0].day, 12, tzinfo=timezone.utc),),
    )
    standin.revision = 1  # the provider revises its last days: every value +0.1
    load_ok(database, standin, tmp_path, "--api", "weather", "--locations", "1",
            "--start", recent[0].isoformat(), "--end", recent[1].isoformat())  # fmt: skip
    dbt_ok(database, target, "build", "--select", "+marts.locations")
    revised = query(
        database,
        "select temperature_c, delivery_count from marts.fct_hourly_location_weather "
        "where location_id = 1 and observed_at = %s",
        (datetime(recent[0].year, recent[0].month, recent[0].day, 12, tzinfo=timezone.utc),),
    )
    assert revised[0][1] == 2 and math.isclose(float(revised[0][0]) - float(first[0][0]), 0.1, abs_tol=1e-9)
    hours = 2 * (60 + 61) * 24 + 7 * 24
    assert query(database, "select count(*) from marts.fct_hourly_location_weather") == [(hours,)]
    assert query(database, "select count(*) from marts.fct_hourly_air_quality") == [(2 * (60 + 61) * 24,)]
    incremental = {table: table_checksum(database, table) for table in LOCATION_MARTS}
    dbt_ok(database, target, "build", "--select", "marts.locations", "--full-refresh")
    assert {table: table_checksum(database, table) for table in LOCATION_MARTS} == incremental
    explain_and_gaps_add_up(database, recent[0])


def explain_and_gaps_add_up(database, refetched: date) -> None:
    """`explain --location` and `status --by-day --location` on a location whose last days were
    fetched twice: per request the hours it delivered are its raw rows in the quarter, the later
    fetch wins every hour, the winners add up to observation_count; each day's gaps are where raw
    says (days between loads: at the source; an hour deleted from the fact: in the warehouse)."""
    env = cli_env(database)
    year, quarter = refetched.year, (refetched.month - 1) // 3 + 1
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=timezone.utc)
    end = datetime(year + (quarter == 4), 3 * quarter % 12 + 1, 1, tzinfo=timezone.utc)
    explained = run_cli("explain", "quarterly_location_weather_features", "--location", "1", "--year", str(year),
                        "--quarter", str(quarter), "--json", env=env)  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    found = json.loads(explained.stdout)
    raw = query(
        database,
        "select request_id, count(*), max(fetched_at) from raw_openmeteo.location_weather"
        " where location_id = 1 and observed_at >= %s and observed_at < %s group by 1 order by 3",
        (start, end),
    )
    assert [(item["request_id"], item["delivered_hours"]) for item in found["requests"]] == [row[:2] for row in raw]
    assert len(raw) == 2 and all(item["provisional"] for item in found["requests"])
    assert [(item["winning_hours"], item["lost_hours"]) for item in found["requests"]] == [(0, 168), (168, 0)]
    published = query(
        database,
        "select count(temperature_c) from marts.fct_hourly_location_weather"
        " where location_id = 1 and observed_at >= %s and observed_at < %s",
        (start, end),
    )[0][0]
    assert sum(item["winning_hours"] for item in found["requests"]) == found["observation_count"] == published == 168
    assert found["missing_hours"] == found["expected_hours"] - 168 and found["quarantined_answers"]["answers"] == 0
    assert found["published_by"]["kind"] == "dbt build"
    final = json.loads(run_cli("explain", "location_weather", "--location", "1", "--year", "2024", "--quarter", "1",
                               "--json", env=env).stdout)  # fmt: skip
    assert not any(item["provisional"] for item in final["requests"])
    assert sum(item["winning_hours"] for item in final["requests"]) == final["observation_count"] == 91 * 24
    wrong = run_cli("explain", "location_weather", "--station", "1", "--year", "2024", "--quarter", "1", env=env)
    assert wrong.returncode == 2 and "give --location" in wrong.stderr

    hour = datetime(refetched.year, refetched.month, refetched.day, 5, tzinfo=timezone.utc)
    deleted = f"delete from marts.fct_hourly_location_weather where location_id = 1 and observed_at = '{hour}'"
    assert execute(database, deleted) == 1
    first = refetched - timedelta(days=2)
    days = run_cli("status", "--by-day", "--location", "1", "--start", first.isoformat(),
                   "--end", (refetched + timedelta(days=1)).isoformat(), env=env)  # fmt: skip
    assert days.returncode == 0, days.stderr
    held = query(
        database,
        "select count(distinct observed_at) from raw_openmeteo.location_weather"
        " where location_id = 1 and observed_at >= %s and observed_at < %s",
        (datetime(first.year, first.month, first.day, tzinfo=timezone.utc),
         datetime(refetched.year, refetched.month, refetched.day, 0, tzinfo=timezone.utc) + timedelta(days=1)),
    )[0][0]  # fmt: skip
    assert held == 24
    assert f"{first} location_weather: missing at the source 00-23 (UTC hours)" in days.stdout
    assert f"{refetched} location_weather: missing in the warehouse 05 (UTC hours)" in days.stdout
    assert f"{3 * 24 - held:,} hours missing at the source, 1 in the warehouse" in days.stdout
    assert "air_quality" not in days.stdout  # its answers end in April 2024: no hour of these days expected


@pytest.mark.quick
def test_the_sources_yaml_declares_the_raw_tables_the_loader_writes() -> None:
    """raw_source() stands in an empty relation built from the sources YAML until a load creates the
    tables: its columns and types must be those the loader writes, or models would change shape."""
    import yaml

    from weatherinsight.openmeteo.schemas import (
        ATTEMPTS_SCHEMA,
        CHECKPOINTS_SCHEMA,
        QUARANTINE_SCHEMA,
        REQUESTS_SCHEMA,
        rows_table,
    )

    types = {"string": "text", "int64": "bigint", "double": "double precision", "timestamp[us, tz=UTC]": "timestamptz"}
    written = {
        "location_weather": rows_table("weather", []).schema,
        "air_quality": rows_table("air_quality", []).schema,
        "requests": REQUESTS_SCHEMA,
        "quarantine": QUARANTINE_SCHEMA,
        "attempts": ATTEMPTS_SCHEMA,
        "checkpoints": CHECKPOINTS_SCHEMA,
    }
    document = yaml.safe_load((REPO / "models" / "staging" / "openmeteo" / "_openmeteo__sources.yml").read_text())
    [source] = document["sources"]
    declared = {
        table["name"]: [(column["name"], column["data_type"]) for column in table["columns"]]
        for table in source["tables"]
    }
    assert declared == {
        name: [(field.name, types[str(field.type)]) for field in schema] + [("_dlt_load_id", "text")]
        for name, schema in written.items()
    }


@pytest.mark.quick
def test_batches_cover_what_is_missing_and_never_ask_for_fewer_variables_than_before() -> None:
    """The plan fetches only the days a variable lacks, in batches of --batch-days, and each batch asks
    for every variable loaded before as well: the latest fetch wins, so it must hold them all."""
    from weatherinsight.openmeteo.plan import plan_batches

    hamburg = Location(2, "Hamburg-Fuhlsbüttel", 53.6332, 9.9881, "DE", ("weather",))
    defaults = tuple(WEATHER_DEFAULTS)
    loaded = {("weather", 2, name): [(date(2024, 1, 1), date(2024, 2, 1))] for name in defaults}
    # the defaults are loaded for January: February is missing, in batches of 14 days
    plan = plan_batches({"weather": [hamburg]}, {"weather": defaults}, date(2024, 1, 1), date(2024, 3, 1), 14, loaded)
    assert [(batch.start, batch.end) for batch in plan.batches] == [
        (date(2024, 2, 1), date(2024, 2, 15)),
        (date(2024, 2, 15), date(2024, 2, 29)),
        (date(2024, 2, 29), date(2024, 3, 1)),
    ]
    assert plan.weighted_calls == 3
    # a new variable over January: January again, asking for it and the ten loaded before
    plan = plan_batches(
        {"weather": [hamburg]}, {"weather": ("et0_fao_evapotranspiration",)}, date(2024, 1, 1), date(2024, 2, 1), 31,
        loaded,
    )  # fmt: skip
    [batch] = plan.batches
    assert set(batch.variables) == {*defaults, "et0_fao_evapotranspiration"}
    assert batch.weight == pytest.approx(1.1 * 31 / 14)


def test_a_location_that_keeps_failing_does_not_stop_the_others_and_reset_failed_retries_only_it(
    database, standin: StandIn, tmp_path: Path
) -> None:
    standin.inject("500", times=1_000, when=lambda params: params["latitude"] == "53.6332")
    arguments = ("--api", "weather", "--locations", "1,2,3", "--start", "2024-01-01", "--end", "2024-02-12")
    result = load(database, standin, tmp_path, *arguments)
    assert result.returncode == 1
    assert "1 location(s) failed (weather 2)" in result.stderr and "--reset-failed" in result.stderr
    assert query(
        database, "select location_id, count(*) from raw_openmeteo.location_weather group by 1 order by 1"
    ) == [(1, 42 * 24), (3, 42 * 24)]
    # the failed location was given up after its first batch's attempts (5), the others went on
    assert sum(1 for call in standin.calls if call.params["latitude"] == "53.6332") == 5
    [(status, error)] = query(
        database,
        "select status, last_error from raw_openmeteo.checkpoints where location_id = 2 "
        "order by updated_at desc limit 1",
    )
    assert status == "failed" and error.startswith("HTTP 500 after 5 attempts")
    # the five failed attempts are recorded, and doctor names the location and the budget they used
    failed = "select count(*) from raw_openmeteo.attempts where location_id = 2 and outcome = 'HTTP 500'"
    assert query(database, failed) == [(5,)]
    env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"), COLUMNS="250")
    doctor = run_cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert re.search(r"Open-Meteo locations\s*│\s*warn\s*│\s*1 failed in their last load \(weather 2\)", doctor.stdout)
    assert "(5 failed attempts among them)" in doctor.stdout and "dlt packages (openmeteo_hourly)" in doctor.stdout
    standin.faults.clear()
    calls_before = len(standin.calls)
    out = load_ok(database, standin, tmp_path, *arguments, "--reset-failed")
    assert {call.params["latitude"] for call in standin.calls[calls_before:]} == {"53.6332"}
    assert raw_hours(database) == (3 * 42 * 24, 3 * 42 * 24)
    assert "locations ok: 1, failed: 0" in out
    assert "nothing to retry" in load_ok(database, standin, tmp_path, *arguments, "--reset-failed")


def test_a_backfill_of_open_meteo_products_plans_builds_publishes_and_repairs(
    database, standin: StandIn, tmp_path: Path
) -> None:
    """`backfill plan` prices the requests, `backfill run` loads the missing days and publishes each
    quarter of both products for two locations, the published marts equal a full refresh; a
    deleted mart quarter shows as partial in `status` and the next run rebuilds only it."""
    env = cli_env(
        database,
        WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"),
        WEATHERINSIGHT_OPENMETEO_BASE_URL=standin.base_url,
        **QUICK,
    )
    window = ("--start", "2024-01-01", "--end", "2024-07-01", "--locations", "1,2")
    planned = run_cli("backfill", "plan", "--products", "air_quality,location_weather", *window, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "Open-Meteo: 52 requests for 2 locations still to fetch (52.0 weighted calls" in planned.stdout
    assert "provider budget used: 0.0 of 10,000 calls in the last day" in planned.stdout
    ran = run_cli("backfill", "run", "--products", "air_quality,location_weather", *window, env=env)
    assert ran.returncode == 0, ran.stderr + ran.stdout[-2000:]
    assert len(standin.calls) == 52
    assert query(database, "select count(*) from marts.fct_hourly_air_quality") == [(2 * 182 * 24,)]
    assert query(database, "select count(*) from marts.quarterly_location_weather_features") == [(4,)]
    published = {table: table_checksum(database, table) for table in LOCATION_MARTS}
    dbt_ok(database, tmp_path / "target", "build", "--select", "marts.locations", "--full-refresh")
    assert {table: table_checksum(database, table) for table in LOCATION_MARTS} == published

    deleted = execute(
        database,
        "delete from marts.quarterly_air_quality_features where location_id = 1 and year = 2024 and quarter = 2",
    )
    assert deleted == 1
    status = run_cli("status", "--products", "air_quality", "--locations", "1", "--by-station", env=env)
    assert re.search(r"air_quality\s*│\s*2024-Q2\s*│\s*1\s*│\s*partial", status.stdout), status.stdout
    # without flags, status and validate cover every source: the location products too
    status = run_cli("status", "--html", str(tmp_path / "status.html"), env=env)
    page = (tmp_path / "status.html").read_text(encoding="utf-8")
    assert "<th class='name'>air_quality</th>" in page and "<th class='name'>air_temperature</th>" in page
    assert re.search(r"air_quality\s*│\s*2024-Q2\s*│\s*all\s*│\s*partial", status.stdout), status.stdout
    assert "location_weather" in status.stdout and "air_temperature" in status.stdout
    invalid = run_cli("validate", env=env)
    lacks = "problem: air_quality 2024-Q2: partial (quarterly_air_quality_features lacks 1 location-quarters)"
    assert invalid.returncode == 1 and lacks in invalid.stdout, invalid.stdout
    repaired = run_cli("backfill", "run", "--products", "air_quality", *window, env=env)
    assert repaired.returncode == 0, repaired.stderr
    assert len(standin.calls) == 52  # nothing fetched again
    assert {table: table_checksum(database, table) for table in LOCATION_MARTS} == published
    validated = run_cli("validate", env=env)
    assert validated.returncode == 0, validated.stdout[-2000:]
    assert re.search(r"air_quality\s*│\s*8,736\s*│\s*8,736", validated.stdout), validated.stdout
