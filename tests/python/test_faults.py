"""Fault suite: each test injects one real fault into a real load (a misbehaving HTTP mirror on
127.0.0.1, a SIGKILLed loader process) and then checks that, after the documented recovery, the
warehouse equals a clean run on the same files: no raw row lost, none duplicated, and the marts
byte-identical. Each test reports its figures to the README's Reliability table."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from weatherinsight import db
from weatherinsight.dwd.settings import HOURLY_PATH as HOURLY
from weatherinsight.ops.backfill.locks import writer_lock_name

from conftest import (
    DELIVERIES,
    REPO,
    VENV_BIN,
    FaultRecord,
    Mirror,
    cli_env,
    dbt_ok,
    execute,
    query,
    run_cli,
    scratch_database,
    serve_mirror,
    table_checksum,
    worker_name,
)

pytestmark = pytest.mark.faults

#: what each test loads: two wind stations over three years (a historical and two recent archives)
SCOPE = ("--products", "wind", "--stations", "1975,2115", "--start", "2021-01-01", "--end", "2024-01-01")
#: the same, station 1975 alone: a first load before the faulted one
SCOPE_1975 = (*SCOPE[:2], "--stations", "1975", *SCOPE[4:])
STATION_1975 = "wind/recent/stundenwerte_FF_01975_akt.zip"
HISTORICAL_2115 = "wind/historical/stundenwerte_FF_02115_19590101_20231231_hist.zip"
RECENT_2115 = "wind/recent/stundenwerte_FF_02115_akt.zip"
SAMPLE_HOURLY = REPO / "sample_data" / "dwd_mirror" / HOURLY
SAMPLE_LISTING = SAMPLE_HOURLY / "wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt"
#: retries quick enough for a test: three attempts, 50 ms backoff; silent for 5 s counts as a failure
#: (long enough for a busy machine, short enough for a test)
QUICK_HTTP = {
    "SOURCES__DWD_HOURLY__HTTP_ATTEMPTS": "3",
    "SOURCES__DWD_HOURLY__HTTP_BACKOFF_SECONDS": "0.05",
    "SOURCES__DWD_HOURLY__HTTP_TIMEOUT_SECONDS": "5",
}
MARTS = ("marts.fct_hourly_wind", "marts.quarterly_wind_features")
#: columns naming the dlt loads, which differ between any two warehouses
LOAD_IDS = ("load_id", "latest_load_id")


def loader_env(database: db.ConnectionSettings, pipelines_dir: Path) -> dict[str, str]:
    return cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(pipelines_dir), **QUICK_HTTP)


def load(mirror: Mirror, database: db.ConnectionSettings, pipelines_dir: Path, *arguments: str):
    """`weatherinsight load dwd` of SCOPE (or ``arguments``) as a user runs it."""
    return run_cli(
        "load", "dwd", "--base-url", mirror.base_url, *(arguments or SCOPE), env=loader_env(database, pipelines_dir)
    )


def start_load(mirror: Mirror, database: db.ConnectionSettings, pipelines_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VENV_BIN / "weatherinsight"), "load", "dwd", "--base-url", mirror.base_url, *SCOPE],
        env=loader_env(database, pipelines_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a test session started in the background ignores SIGINT, and so
        # would its children
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def waiting_on_a_lock(database: db.ConnectionSettings, text: str) -> bool:
    """Whether a session of ``database`` waits for a lock in a statement containing ``text``."""
    sql = (
        "select count(*) from pg_stat_activity where datname = current_database() and query ilike %s"
        " and wait_event_type = 'Lock'"
    )
    return query(database, sql, (f"%{text}%",))[0][0] > 0


def kill_when_waiting(database: db.ConnectionSettings, text: str) -> Callable[[subprocess.Popen], None]:
    """What kills a process once a statement of it containing ``text`` waits for a lock the test holds."""

    def kill(process: subprocess.Popen) -> None:
        for _ in range(600):
            if waiting_on_a_lock(database, text):
                process.send_signal(signal.SIGKILL)
                return
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        activity = query(database, "select state, wait_event_type, wait_event, left(query, 300) from pg_stat_activity")
        raise AssertionError(f"no statement on {text!r} ever waited: {activity}")

    return kill


@contextlib.contextmanager
def table_locked(database: db.ConnectionSettings, table: str) -> Iterator[None]:
    """Hold a SHARE lock on ``table``: writers to it wait until the context ends."""
    holder = db.connect(database)
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"lock table {table} in share mode")
        yield
    finally:
        holder.rollback()
        holder.close()


@contextlib.contextmanager
def advisory_locked(database: db.ConnectionSettings, name: str) -> Iterator[None]:
    """Hold the advisory lock ``hashtext(name)``: whoever asks for it waits until the context ends."""
    holder = db.connect(database)
    holder.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        yield
    finally:
        holder.close()


def raw_rows(database: db.ConnectionSettings) -> collections.Counter:
    """Raw wind rows by file, its size and the row's place in it: a row loaded twice from the same
    content counts twice (the mirror's time stamps differ between runs, so they are left out); a
    row without its delivery has no file."""
    rows = query(
        database,
        """
        select deliveries.source_file, deliveries.file_size,
            wind.station_id, wind.observed_at, wind.source_row_number, count(*)
        from raw_dwd.wind as wind
        left join raw_dwd.deliveries as deliveries on wind.delivery_id = deliveries.delivery_id
        group by 1, 2, 3, 4, 5
        """,
    )
    return collections.Counter({row[:-1]: row[-1] for row in rows})


def marts(database: db.ConnectionSettings, tmp: Path, exclude: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Build the wind marts with a plain dbt run and return their checksums (without ``exclude``)."""
    dbt_ok(database, tmp / "target", "run", "--select", "+quarterly_wind_features")
    return {table: table_checksum(database, table, exclude=LOAD_IDS + exclude) for table in MARTS}


def lines_in_window(hourly: Path, archives: tuple[str, ...], start: str = "2021010100", end: str = "2024010100"):
    """Per archive, the product file's data lines whose hour (MESS_DATUM, UTC in these files) lies
    in [start, end): what a load of SCOPE must keep, read straight from the zip files."""
    counts = collections.Counter()
    for archive in archives:
        with zipfile.ZipFile(hourly / archive) as opened:
            member = next(name for name in opened.namelist() if name.startswith("produkt_"))
            lines = opened.read(member).decode("latin-1").splitlines()[1:]
        counts[archive] = sum(1 for line in lines if line.strip() and start <= line.split(";")[1].strip() < end)
    return counts


class Reference:
    """A clean load and build of the same scope from an untouched mirror."""

    def __init__(self, database: db.ConnectionSettings, tmp: Path) -> None:
        with serve_mirror(tmp / "mirror") as mirror:
            result = load(mirror, database, tmp / "pipelines")
            assert result.returncode == 0, result.stderr
        self.raw = raw_rows(database)
        self.marts = marts(database, tmp)
        #: the same without the hourly fact's count of deliveries (a corrupt delivery and its fix are two)
        self.marts_but_count = {
            table: table_checksum(database, table, exclude=(*LOAD_IDS, "delivery_count")) for table in MARTS
        }
        # the rows per file a clean load keeps are exactly the archives' lines in the window,
        # counted here from the files themselves, so a loader that lost the same rows every time
        # could not pass as "0 lost"
        loaded = collections.Counter()
        for (source_file, *_), count in self.raw.items():
            loaded[source_file] += count
        assert loaded == lines_in_window(SAMPLE_HOURLY, (STATION_1975, HISTORICAL_2115, RECENT_2115)), loaded
        assert all(count > 0 for count, _ in self.marts.values())


@pytest.fixture(scope="module")
def reference(server: db.ConnectionSettings, tmp_path_factory) -> Reference:
    with scratch_database(server, "wi_test_faults_reference") as database:
        yield Reference(database, tmp_path_factory.mktemp("reference"))


def converged(
    reference: Reference,
    database: db.ConnectionSettings,
    tmp_path: Path,
    fault: str,
    trials: int,
    recovery: str,
    deliveries_differ: bool = False,
) -> FaultRecord:
    """Compare the faulted warehouse, once recovered, with the clean run; return the record. With
    ``deliveries_differ`` (a corrupt delivery that had rows, then its fix) the hourly fact's
    ``delivery_count`` is left out: it counts both."""
    faulted = raw_rows(database)
    lost = sum(max(0, count - faulted[key]) for key, count in reference.raw.items())
    duplicated = sum(count - 1 for count in faulted.values() if count > 1)
    orphans = sum(count for key, count in faulted.items() if key[0] is None)
    built = marts(database, tmp_path, exclude=("delivery_count",) if deliveries_differ else ())
    assert (lost, duplicated, orphans) == (0, 0, 0)
    assert built == (reference.marts_but_count if deliveries_differ else reference.marts)
    return FaultRecord(fault, trials, sum(faulted.values()), lost, duplicated, True, recovery)


def assert_summary(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert "failed: 0;" in result.stdout, result.stdout


# ---- the source misbehaves --------------------------------------------------------------------


def test_http_500_twice_then_the_file(mirror, database, tmp_path, reference, reliability) -> None:
    mirror.inject(STATION_1975, ("status", 500, None), ("status", 500, None))
    result = load(mirror, database, tmp_path / "pipelines")
    assert_summary(result)
    assert len(mirror.times_of(STATION_1975)) == 3  # two errors, then the file
    reliability(converged(reference, database, tmp_path, "HTTP 500 twice, then the file", 1, "retried in the run"))


def test_http_429_with_retry_after_is_respected(mirror, database, tmp_path, reference, reliability) -> None:
    mirror.inject(STATION_1975, ("status", 429, 2))
    result = load(mirror, database, tmp_path / "pipelines")
    assert_summary(result)
    first, second = mirror.times_of(STATION_1975)
    assert second - first >= 1.9  # it waited as long as Retry-After asked (its backoff alone is 50 ms)
    reliability(
        converged(reference, database, tmp_path, "HTTP 429 with Retry-After: 2", 1, "waited 2 s, retried in the run")
    )


def test_a_server_silent_past_the_timeout(mirror, database, tmp_path, reference, reliability) -> None:
    mirror.inject(HISTORICAL_2115, ("hang", 10))
    result = load(mirror, database, tmp_path / "pipelines")
    assert_summary(result)
    assert len(mirror.times_of(HISTORICAL_2115)) == 2
    reliability(
        converged(reference, database, tmp_path, "server silent past the 5 s read timeout", 1, "retried in the run")
    )


def test_a_body_cut_mid_transfer(mirror, database, tmp_path, reference, reliability) -> None:
    mirror.inject(HISTORICAL_2115, ("cut",), ("cut",))
    result = load(mirror, database, tmp_path / "pipelines")
    assert_summary(result)
    assert len(mirror.times_of(HISTORICAL_2115)) == 3
    reliability(
        converged(reference, database, tmp_path, "body cut off mid-transfer, twice", 2, "fetched again in the run")
    )


def test_every_attempt_failing_names_the_file_and_a_rerun_loads_it(
    mirror, database, tmp_path, reference, reliability
) -> None:
    mirror.inject(STATION_1975, *[("status", 500, None)] * 3)
    first = load(mirror, database, tmp_path / "pipelines")
    assert first.returncode == 1
    assert first.stderr.strip().splitlines()[-1] == (
        f"Error: 1 files could not be fetched ({STATION_1975}…); rerun the same command to retry them"
    )
    assert query(database, "select distinct station_id from raw_dwd.wind") == [(2115,)]
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(
        converged(reference, database, tmp_path, "HTTP 500 on every attempt", 3, "exit 1 naming the file; rerun")
    )


def test_a_listing_that_drops_a_file_seen_before(mirror, database, tmp_path, reference, reliability) -> None:
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    (mirror.hourly / RECENT_2115).unlink()
    again = load(mirror, database, tmp_path / "pipelines")
    assert_summary(again)
    assert "files fetched: 0," in again.stdout
    reliability(
        converged(reference, database, tmp_path, "listing drops a file loaded before", 1, "rows kept; nothing to do")
    )


def test_a_file_that_changes_between_listing_and_download(
    mirror, database, server, tmp_path, reference, reliability
) -> None:
    older = DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip"
    mirror.inject(STATION_1975, ("before", lambda: mirror.replace(STATION_1975, older)))
    first = load(mirror, database, tmp_path / "pipelines")
    assert first.returncode == 1 and STATION_1975 in first.stderr  # the size the listing announced never came
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    # the reference for this one is a clean load of the mirror as it ends up
    clean = server.with_database(f"{database.database}_clean")
    db.ensure_database(clean)
    try:
        assert_summary(load(mirror, clean, tmp_path / "clean_pipelines"))
        faulted = raw_rows(database)
        assert faulted == raw_rows(clean)  # nothing lost, nothing duplicated
        assert marts(database, tmp_path) == marts(clean, tmp_path / "clean")
    finally:
        db.drop_database(clean)
    checked = sum(faulted.values())
    recovery = "exit 1 naming the file; rerun"
    reliability(FaultRecord("file republished between listing and download", 1, checked, 0, 0, True, recovery))


# ---- corrupt input -----------------------------------------------------------------------------


def test_a_truncated_archive_is_quarantined_by_name_until_its_fix_arrives(
    mirror, database, tmp_path, reference, reliability
) -> None:
    archive = mirror.hourly / RECENT_2115
    intact = archive.read_bytes()
    archive.write_bytes(intact[: len(intact) // 2])
    first = load(mirror, database, tmp_path / "pipelines")
    assert_summary(first)  # the other files loaded; the broken one is not a failure to retry
    assert "quarantined: 1," in first.stdout
    assert f"{RECENT_2115} │ whole file │ unreadable archive" in " ".join(first.stderr.split("\n")).replace("  ", " ")
    # DWD publishes the archive intact (a new version of the file): the next load takes it
    mirror.replace(RECENT_2115, Path(__file__).parents[2] / "sample_data" / "dwd_mirror" / HOURLY / RECENT_2115)
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(
        converged(reference, database, tmp_path, "truncated archive", 1, "quarantined and named; its fix loads")
    )


def damaged(archive: Path, damage: Callable[[list[str]], list[str]]) -> None:
    """Rewrite the product file inside ``archive`` with ``damage`` applied to its lines."""
    with zipfile.ZipFile(archive) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            if name.startswith("produkt_"):
                text = data.decode("latin-1")
                newline = "\r\n" if "\r\n" in text else "\n"
                data = newline.join(damage(text.split(newline))).encode("latin-1")
            target.writestr(name, data)


def field_changed(line: int, field: int, value: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        fields = lines[line].split(";")
        fields[field] = value.rjust(len(fields[field]))
        return [*lines[:line], ";".join(fields), *lines[line + 1 :]]

    return change


#: corrupt input: (what is wrong, how the product file of RECENT_2115 is damaged, the reason the
#: load names, how many of the file's clean rows are kept out: all, the damaged one, or none when
#: the damage is an extra row)
CORRUPTIONS = {
    "changed header": (
        lambda lines: [lines[0].replace(";   F;", ";  FF;"), *lines[1:]],
        "product file lacks columns ['F']",
        "all",
    ),
    "pre-2017 layout (German column names)": (
        lambda lines: ["STATIONS_ID;MESS_DATUM;QUALITAETS_NIVEAU;WINDGESCHWINDIGKEIT;WINDRICHTUNG;eor", *lines[1:]],
        "pre-2017 DWD layout",
        "all",
    ),
    "a value out of range (95 m/s)": (field_changed(10, 3, "95.0"), "F outside the plausible 0..80", 1),
    "a garbage timestamp": (field_changed(10, 1, "2O21O10100"), "MESS_DATUM is not YYYYMMDDHH", 1),
    "a duplicate row": (lambda lines: [*lines[:11], lines[10], *lines[11:]], "MESS_DATUM repeats", 0),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=[name.split(" (")[0].replace(" ", "_") for name in CORRUPTIONS])
def test_corrupt_input_is_quarantined_by_name_until_its_fix_arrives(
    mirror, database, tmp_path, reference, reliability, corruption
) -> None:
    damage, reason, kept_out = CORRUPTIONS[corruption]
    intact = tmp_path / "intact.zip"
    shutil.copyfile(mirror.hourly / RECENT_2115, intact)
    damaged(mirror.hourly / RECENT_2115, damage)
    first = load(mirror, database, tmp_path / "pipelines")
    assert_summary(first)  # the rest loaded; a corrupt file is no failure to retry
    summary = " ".join(first.stderr.split())
    assert RECENT_2115 in summary and reason in summary, first.stderr[-3000:]
    reasons = query(database, "select reason, count(*) from raw_dwd.quarantine where source_file = %s group by 1",
                    (RECENT_2115,))  # fmt: skip
    assert len(reasons) == 1 and reasons[0][0].startswith(reason) and reasons[0][1] == 1, reasons
    # everything else arrived: the other files whole, and of this one all but the bad row
    expected = sum(count for key, count in reference.raw.items() if key[0] != RECENT_2115)
    expected += 0 if kept_out == "all" else sum(c for k, c in reference.raw.items() if k[0] == RECENT_2115) - kept_out
    assert sum(raw_rows(database).values()) == expected
    # DWD publishes the file intact (a new version): the next load takes it, the marts converge
    mirror.replace(RECENT_2115, intact)
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    whole_file = kept_out == "all"
    recovery = "quarantined with its reason, named; its fix loads" + (
        "" if whole_file else " (stores the hour it lacked; the rest it confirms)"
    )
    reliability(
        converged(
            reference, database, tmp_path, f"corrupt input: {corruption}", 1, recovery, deliveries_differ=not whole_file
        )  # fmt: skip
    )


def test_a_station_list_with_shifted_columns_is_quarantined_by_line(
    mirror, database, tmp_path, reference, reliability
) -> None:
    listing = mirror.hourly / "wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt"
    intact = listing.read_bytes()
    listing.write_bytes(re.sub(rb"(?m)^(01975 \d{8} \d{8}) {6}", rb"\1", intact))  # Hamburg's line, 6 to the left
    first = load(mirror, database, tmp_path / "pipelines")
    assert_summary(first)
    summary = " ".join(first.stderr.split())
    assert "wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt" in summary and "columns are shifted" in summary
    entries = "select count(*) from raw_dwd.station_lists where station_id = 1975 and source_file like %s"
    assert query(database, entries, ("%recent%",)) == [(0,)]  # not read wrongly: kept out, with its line
    assert query(database, "select source_row_number from raw_dwd.quarantine") == [(160,)]
    mirror.replace("wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt", SAMPLE_LISTING)
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    assert query(database, entries, ("%recent%",)) == [(1,)]
    reliability(
        converged(
            reference,
            database,
            tmp_path,
            "corrupt input: a station list line with shifted columns",
            1,
            "that line quarantined, named; its fix loads",
        )  # fmt: skip
    )


def test_every_file_delivered_twice(mirror, database, tmp_path, reference, reliability) -> None:
    # DWD republishes every archive unchanged (a new Last-Modified, the same bytes): the next load
    # takes each again as a new delivery, which confirms every hour and stores none
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    for archive in (STATION_1975, HISTORICAL_2115, RECENT_2115):
        mirror.replace(archive, REPO / "sample_data" / "dwd_mirror" / HOURLY / archive)
    again = load(mirror, database, tmp_path / "pipelines")
    assert_summary(again)
    assert "files fetched: 3," in again.stdout
    deliveries = (
        "select count(*), count(distinct source_file), count(*) filter (where rows_stored = 0)"
        " from raw_dwd.deliveries where product = 'wind'"
    )
    assert query(database, deliveries) == [(6, 3, 3)]
    # the second delivery of each file is recorded hour by hour as confirmed: nothing it held is lost
    confirmed = query(
        database,
        "select deliveries.row_count, coalesce(sum(runs.row_count), 0) from raw_dwd.deliveries"
        " left join raw_dwd.confirmed_ranges as runs using (delivery_id)"
        " where deliveries.product = 'wind' and deliveries.rows_stored = 0"
        " group by deliveries.delivery_id, deliveries.row_count",
    )
    assert all(delivered == held > 0 for delivered, held in confirmed)
    # raw holds each file's rows exactly once
    rows = query(
        database,
        "select wind.delivery_id, deliveries.source_file, wind.station_id, wind.observed_at, wind.source_row_number"
        " from raw_dwd.wind as wind join raw_dwd.deliveries as deliveries using (delivery_id)",
    )
    per_delivery: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for delivery, source_file, *row in rows:
        per_delivery[(delivery, source_file)][tuple(row)] += 1
    per_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for (source_file, _, *row), count in reference.raw.items():
        per_file[source_file][tuple(row)] += count
    lost = sum(sum((per_file[file] - got).values()) for (_, file), got in per_delivery.items())
    duplicated = sum(sum((got - per_file[file]).values()) for (_, file), got in per_delivery.items())
    assert (len(per_delivery), lost, duplicated) == (3, 0, 0)
    # the marts are the clean load's, `delivery_count` included: a confirmation is not a version
    assert marts(database, tmp_path) == reference.marts
    recovery = "the second delivery confirmed every hour and stored none; the marts are the clean load's"
    reliability(FaultRecord("re-delivery: every archive republished unchanged", 1, len(rows), 0, 0, True, recovery))


# ---- the loader is killed ---------------------------------------------------------------------


def killed(process: subprocess.Popen, arm: Callable[[subprocess.Popen], None]) -> None:
    """Let ``arm(process)`` kill the started ``process`` at the right moment; wait for it to die."""
    try:
        arm(process)
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL


def killed_load(mirror: Mirror, database, tmp_path: Path, arm: Callable[[subprocess.Popen], None]) -> None:
    """Start a load and let ``arm`` kill it."""
    killed(start_load(mirror, database, tmp_path / "pipelines"), arm)


def test_sigkill_during_a_download(mirror, database, tmp_path, reference, reliability) -> None:
    holder: list[subprocess.Popen] = []
    mirror.inject(HISTORICAL_2115, ("instead", lambda: os.kill(holder[0].pid, signal.SIGKILL)))
    killed_load(mirror, database, tmp_path, holder.append)
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(converged(reference, database, tmp_path, "SIGKILL of the loader during a download", 1, "rerun"))


def test_sigkill_as_an_archive_arrives(mirror, database, tmp_path, reference, reliability) -> None:
    holder: list[subprocess.Popen] = []
    mirror.inject(HISTORICAL_2115, ("after", lambda: os.kill(holder[0].pid, signal.SIGKILL)))
    killed_load(mirror, database, tmp_path, holder.append)
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(
        converged(reference, database, tmp_path, "SIGKILL of the loader as an archive arrives (parsing)", 1, "rerun")
    )


def commit_started_jobs(database: db.ConnectionSettings, pipelines: Path, table: str) -> int:
    """Commit the jobs of ``table`` a killed load had started, as PostgreSQL would have had the kill
    come right after their COPY committed (before dlt noted them done); the rows committed. The
    load's state row likewise: stored, its job not noted done (the state table has a unique key:
    the job run again must not fail the load, and every load after it)."""
    committed = 0
    conn = db.connect(database)
    with conn, conn.cursor() as cursor:
        for package in pipelines.glob("*/load/normalized/*"):
            for job in list(package.glob("*_jobs/_dlt_pipeline_state.*.insert_values")):
                marker = package / ".pending_transitions" / job.name
                if job.parent.name == "completed_jobs":  # stored; dlt forgets it noted the job done
                    job.rename(package / "started_jobs" / job.name)
                elif marker.exists():  # stored; dlt forgets its note that the job committed
                    marker.unlink()
                else:  # stored now (unless the kill came after its commit), dlt has not noted it
                    cursor.execute("select count(*) from raw_dwd._dlt_pipeline_state where _dlt_load_id = %s",
                                   (package.name,))  # fmt: skip
                    if cursor.fetchone()[0] == 0:
                        cursor.execute(job.read_text().replace("{}", '"raw_dwd"."_dlt_pipeline_state"', 1))
        for job in sorted(pipelines.glob(f"*/load/normalized/*/started_jobs/{table}.*.csv")):
            with job.open() as rows:
                columns = rows.readline().strip()  # dlt's header: the quoted column names
                rows.seek(0)
                cursor.copy_expert(f"copy raw_dwd.{table} ({columns}) from stdin with (format csv, header)", rows)
                committed += cursor.rowcount
    conn.close()
    return committed


@pytest.mark.parametrize("moment", ["before", "after"])
def test_sigkill_during_the_copy_into_postgresql(mirror, database, tmp_path, reference, reliability, moment) -> None:
    # a first load creates the raw tables; a SHARE lock on raw_dwd.wind then makes the next load's
    # COPY wait, so the kill lands inside dlt's load step for certain. "after": the test then commits
    # the COPY's file itself, as if the kill had come after PostgreSQL committed it but before dlt
    # noted the job done -- the rerun runs the job again
    assert_summary(load(mirror, database, tmp_path / "pipelines", *SCOPE_1975))
    with table_locked(database, "raw_dwd.wind"):
        killed_load(mirror, database, tmp_path, kill_when_waiting(database, 'copy "raw_dwd"."wind"'))
    if moment == "after":
        # the started job's rows (Helgoland's, unless extraction split them over two files and the
        # started one is the smaller: seen on a busy machine); the others are still new jobs
        started = sum(
            len(job.read_text().splitlines()) - 1
            for job in (tmp_path / "pipelines").glob("*/load/normalized/*/started_jobs/wind.*.csv")
        )
        helgoland = sum(count for key, count in reference.raw.items() if key[2] == 2115)  # what this load adds
        assert commit_started_jobs(database, tmp_path / "pipelines", "wind") == started <= helgoland
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    fault = {
        "before": "SIGKILL of the loader during its COPY (dlt's load step)",
        "after": "SIGKILL after PostgreSQL committed the loader's COPY, before dlt noted it",
    }[moment]
    recovery = "rerun" if moment == "before" else "rerun: the job runs again, its second copy removed"
    reliability(converged(reference, database, tmp_path, fault, 1, recovery))


def test_ctrl_c_during_a_download(mirror, database, tmp_path, reference, reliability) -> None:
    holder: list[subprocess.Popen] = []
    mirror.inject(HISTORICAL_2115, ("instead", lambda: os.kill(holder[0].pid, signal.SIGINT)))
    process = start_load(mirror, database, tmp_path / "pipelines")
    holder.append(process)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Aborted."
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(converged(reference, database, tmp_path, "Ctrl-C (SIGINT) of the loader during a download", 1, "rerun"))


# ---- dbt is killed ----------------------------------------------------------------------------


def test_sigkill_of_a_plain_dbt_build_mid_model(mirror, database, tmp_path, reference, reliability) -> None:
    # station 1975 loaded and built; then station 2115 arrives and the plain build that takes it in
    # is killed while it writes the hourly fact
    assert_summary(load(mirror, database, tmp_path / "pipelines", *SCOPE_1975))
    marts(database, tmp_path / "first")
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    env = cli_env(database, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    target = tmp_path / "killed"
    with table_locked(database, "marts.fct_hourly_wind"):
        process = subprocess.Popen(
            [str(VENV_BIN / "dbt"), "run", "--select", "+quarterly_wind_features", "--target-path", str(target),
             "--log-path", str(target / "logs")],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        killed(process, kill_when_waiting(database, "fct_hourly_wind"))
    reliability(
        converged(reference, database, tmp_path, "SIGKILL of a plain `dbt run` while it writes a mart", 1, "rerun")
    )


# ---- a backfill is killed, interrupted or loses its server ------------------------------------

#: the backfill under fault: precipitation over 2021 by quarter, from raw as loaded (test_backfill's data)
YEAR_2021 = ("--start", "2021-01-01", "--end", "2022-01-01")
BACKFILL = ("backfill", "run", "--no-load", "--products", "precipitation", *YEAR_2021)
BACKFILL_MARTS = {
    "marts.fct_hourly_precipitation": "observed_at >= '2021-04-01 00:00+00'",
    "marts.fct_daily_weather": "observed_date >= '2021-04-01'",
    "marts.quarterly_precipitation_features": "year = 2021 and quarter >= 2",
}
#: what a waiting publish runs: it replaces the window's rows of the hourly fact
PUBLISH = 'delete from "marts"."fct_hourly_precipitation"'


def mart_rows(database: db.ConnectionSettings) -> dict[str, collections.Counter]:
    """Every row of the backfill's marts as text, counted (a row published twice counts twice)."""
    return {
        table: collections.Counter(row[0] for row in query(database, f"select t::text from {table} as t"))
        for table in BACKFILL_MARTS
    }


class Backfilled:
    """A clean backfill of 2021 (loaded from the mirror); faulted tests start from a copy of it
    (CREATE DATABASE … TEMPLATE) with the last three quarters deleted from the marts."""

    def __init__(self, database: db.ConnectionSettings, tmp: Path) -> None:
        with serve_mirror(tmp / "mirror") as mirror:
            env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp / "pipelines"))
            loading = [part for part in BACKFILL if part != "--no-load"]
            result = run_cli(*loading, "--base-url", mirror.base_url, env=env)
            assert result.returncode == 0, result.stderr[-3000:]
        self.database = database
        self.rows = mart_rows(database)
        assert sum(map(len, self.rows.values())) > 9_000

    def copy(self, database: db.ConnectionSettings) -> db.ConnectionSettings:
        """A copy of the backfilled warehouse missing April to December 2021 in every mart."""
        conn = db.connect(self.database, "postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'drop database if exists "{database.database}"')
                cursor.execute(f'create database "{database.database}" template "{self.database.database}"')
        finally:
            conn.close()
        for table, where in BACKFILL_MARTS.items():
            assert execute(database, f"delete from {table} where {where}") > 0, table
        return database


@pytest.fixture(scope="module")
def backfilled(server: db.ConnectionSettings, tmp_path_factory) -> Backfilled:
    with scratch_database(server, "wi_test_faults_backfilled") as database:
        yield Backfilled(database, tmp_path_factory.mktemp("backfilled"))


def start_backfill(database: db.ConnectionSettings, tmp_path: Path) -> subprocess.Popen:
    """The backfill in its own process group, Ctrl-C acting as in a terminal."""
    return subprocess.Popen(
        [str(VENV_BIN / "weatherinsight"), *BACKFILL],
        env=cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines")),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def when(condition: Callable[[], bool], then: Callable[[], None], process: subprocess.Popen) -> None:
    """Poll ``condition`` while ``process`` runs (at most two minutes); run ``then`` once it holds."""
    for _ in range(6000):
        if condition():
            then()
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the moment to inject the fault never came")


def backfill_converged(
    backfilled: Backfilled,
    database: db.ConnectionSettings,
    tmp_path: Path,
    fault: str,
    recovery: str,
    faulted_error: str | None = "interrupted%",
    trials: int = 1,
) -> FaultRecord:
    """After a faulted run: nothing of it half-published, the ledger tells the truth (the run failed
    with ``faulted_error``, a LIKE pattern), and ``backfill resume`` finishes it. Then (and for
    ``faulted_error=None``, two writers that both finished) the marts hold exactly the clean
    backfill's rows, no window is left running and no audit schema behind."""
    if faulted_error is not None:
        # the window under way was not published in part: April to December are missing as a whole
        for table, where in BACKFILL_MARTS.items():
            assert query(database, f"select count(*) from {table} where {where}") == [(0,)], table
        faulted_run = query(database, "select max(run_id) from ops.backfill_runs")[0][0]
        env = cli_env(database, WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "resume"))
        resumed = run_cli("backfill", "resume", env=env)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert query(database, "select status, error like %s from ops.backfill_runs where run_id = %s",
                     (faulted_error, faulted_run)) == [("failed", True)]  # fmt: skip
    unfinished = "select count(*) from ops.backfill_windows where status in ('planned', 'running')"
    assert query(database, unfinished) == [(0,)]
    assert query(database, "select count(*) from pg_namespace where nspname like 'audit_r%%'") == [(0,)]
    faulted = mart_rows(database)
    lost = sum(
        max(0, count - faulted[table][row]) for table, rows in backfilled.rows.items() for row, count in rows.items()
    )
    duplicated = sum(count - 1 for rows in faulted.values() for count in rows.values() if count > 1)
    assert (lost, duplicated) == (0, 0)
    assert faulted == backfilled.rows
    checked = sum(sum(rows.values()) for rows in faulted.values())
    return FaultRecord(fault, trials, checked, lost, duplicated, True, recovery, compared="mart")


def test_sigkill_of_a_backfill_mid_publish(backfilled, database, tmp_path, reliability) -> None:
    backfilled.copy(database)
    with table_locked(database, "marts.fct_hourly_precipitation"):
        killed(start_backfill(database, tmp_path), kill_when_waiting(database, PUBLISH))
    # what a kill leaves behind: the run marked running, until the next command finds its process gone
    assert query(database, "select status from ops.backfill_runs order by run_id desc limit 1") == [("running",)]
    reliability(
        backfill_converged(backfilled, database, tmp_path, "SIGKILL of a backfill mid-publish", "`backfill resume`")
    )


@pytest.mark.parametrize("moment", ["build", "publish"])
def test_ctrl_c_of_a_backfill(backfilled, database, tmp_path, reliability, moment) -> None:
    backfilled.copy(database)
    # the build: the first window's dbt waits in its first model's writer lock, which the test holds
    # (the run is the copy's second, its first window to build is batch 2: audit schema audit_r2_b2);
    # the publish: it waits to replace rows of the hourly fact, which the test holds a SHARE lock on
    held = (
        advisory_locked(database, writer_lock_name("audit_r2_b2", "fct_hourly_precipitation"))
        if moment == "build"
        else table_locked(database, "marts.fct_hourly_precipitation")
    )
    waits_in = "pg_advisory_xact_lock" if moment == "build" else PUBLISH
    with held:
        process = start_backfill(database, tmp_path)
        when(lambda: waiting_on_a_lock(database, waits_in), lambda: os.killpg(process.pid, signal.SIGINT), process)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "Aborted."
    run, status, error = query(database, "select run_id, status, error from ops.backfill_runs order by run_id desc")[0]
    assert (status, error.split(":")[0]) == ("failed", "interrupted"), error
    windows = query(database, "select status, count(*) from ops.backfill_windows where run_id = %s group by 1", (run,))
    assert dict(windows).get("succeeded", 0) == 0 and dict(windows)["failed"] >= 1, windows
    reliability(
        backfill_converged(
            backfilled,
            database,
            tmp_path,
            f"Ctrl-C (SIGINT) of a backfill during a window's {moment}",
            "ledger: interrupted; `backfill resume`",
        )  # fmt: skip
    )


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[db.ConnectionSettings, dict[str, str]]]:
    """An embedded PostgreSQL of the test's own, in its own folder (``WEATHERINSIGHT_PGDATA``), and
    the environment that names it: a test may stop and start it, whatever server the suite runs on
    (the embedded one, or a server of the user's own that PGHOST names)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(WEATHERINSIGHT_PGDATA=str(tmp_path / "pgdata"), PGDATABASE="postgres")
    started = run_cli("db", "up", env=env)
    assert started.returncode == 0, started.stderr
    exports = dict(re.findall(r"export (\w+)=(\S+)", run_cli("db", "env", env=env).stdout))
    connection = db.ConnectionSettings(exports["PGHOST"], int(exports["PGPORT"]), exports["PGUSER"],
                                       exports["PGPASSWORD"], exports["PGDATABASE"], True)  # fmt: skip
    try:
        yield connection, {"WEATHERINSIGHT_PGDATA": env["WEATHERINSIGHT_PGDATA"]}
    finally:
        run_cli("db", "down", env=env)


def test_the_server_restarted_during_a_backfill(backfilled, database, own_server, tmp_path, reliability) -> None:
    # the backfilled copy moves to the test's own server (`db backup`, `db restore`): that one is
    # stopped and started, not the server the other tests use
    dump = tmp_path / "backfilled.dump"
    backed_up = run_cli("db", "backup", str(dump), env=cli_env(backfilled.copy(database)))
    assert backed_up.returncode == 0, backed_up.stderr
    server, pgdata = own_server
    database = server.with_database(worker_name("wi_test_restart"))
    restored = run_cli("db", "restore", str(dump), "--into", database.database, env=cli_env(server, **pgdata))
    assert restored.returncode == 0, restored.stderr
    holder = db.connect(database)
    with holder.cursor() as cursor:
        cursor.execute("lock table marts.fct_hourly_precipitation in share mode")
    process = start_backfill(database, tmp_path)
    try:
        when(lambda: waiting_on_a_lock(database, PUBLISH), lambda: None, process)
        stopped = run_cli("db", "down", env=cli_env(database, **pgdata))
        assert stopped.returncode == 0 and stopped.stdout.startswith("stopped embedded PostgreSQL"), stopped.stdout
        _, stderr = process.communicate(timeout=300)
    finally:
        holder.close()
        started = run_cli("db", "up", env=cli_env(database, **pgdata))
        assert started.returncode == 0, started.stderr
    assert process.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("Error: lost the connection to PostgreSQL (server closed the connection"), stderr[-3000:]
    assert last.endswith("rerun the same command once the server is back")
    reliability(
        backfill_converged(
            backfilled,
            database,
            tmp_path,
            "PostgreSQL stopped and restarted during a backfill's publish",
            "exit 1, one line; `backfill resume`",
        )  # fmt: skip
    )


# ---- two writers at once ----------------------------------------------------------------------


def test_two_loads_of_the_same_product_at_once(
    mirror, database, tmp_path, reference, reliability, busy_machine
) -> None:
    # the same checkout twice (one dlt working folder), as two terminals or a cron job and a person
    loads = [start_load(mirror, database, tmp_path / "pipelines") for _ in range(2)]
    outputs = [load.communicate(timeout=600) for load in loads]
    assert [load.returncode for load in loads] == [0, 0], [err[-2000:] for _, err in outputs]
    # the second waited for the first, then found every file loaded: each archive was fetched once
    fetched = sorted(int(out.split("files fetched: ")[1].split(",")[0]) for out, _ in outputs)
    assert fetched == [0, 5], [out[-2000:] for out, _ in outputs]  # three archives, two station lists
    assert collections.Counter(mirror.downloads()) == {
        f"/{HOURLY}{path}": 1 for path in (STATION_1975, HISTORICAL_2115, RECENT_2115)
    }
    reliability(
        converged(reference, database, tmp_path, "two loads of the same product at once", 2, "the second waits")
    )


def started(command: list[str], database: db.ConnectionSettings, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=cli_env(database, DBT_SEND_ANONYMOUS_USAGE_STATS="false",
                             WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines")),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished_ok(*processes: subprocess.Popen) -> list[float]:
    """Wait for each process; fail unless each succeeded; when each ended (monotonic seconds)."""
    ended = []
    for process in processes:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output[-3000:]
        ended.append(time.monotonic())
    return ended


def test_two_overlapping_backfills_at_once(backfilled, database, tmp_path, reliability) -> None:
    backfilled.copy(database)
    command = [str(VENV_BIN / "weatherinsight"), *BACKFILL, "--wait", "600"]
    finished_ok(*[started(command, database, tmp_path / str(n)) for n in range(2)])
    # both planned the three missing quarters before either published, so each builds them; a
    # quarter's two builds never overlap in time (the second waits for the first's window locks)
    spans = query(
        database,
        "select window_start, started_at, finished_at from ops.backfill_windows"
        " where layer = 'marts' and status = 'succeeded' and run_id > 1 order by window_start, started_at",
    )
    assert collections.Counter(start.isoformat() for start, *_ in spans) == {
        "2021-04-01": 2, "2021-07-01": 2, "2021-10-01": 2
    }, spans  # fmt: skip
    for first, second in zip(spans[::2], spans[1::2], strict=True):
        assert first[2] <= second[1], f"two runs wrote {first[0]} at the same time: {spans}"
    reliability(
        backfill_converged(
            backfilled,
            database,
            tmp_path,
            "two overlapping backfills at once",
            "window locks: one after the other, same rows",
            faulted_error=None,
            trials=2,
        )  # fmt: skip
    )


def test_a_backfill_and_a_plain_dbt_build_at_once(backfilled, database, tmp_path, reliability) -> None:
    backfilled.copy(database)
    backfill = started([str(VENV_BIN / "weatherinsight"), *BACKFILL, "--wait", "600"], database, tmp_path)
    target = tmp_path / "target"
    selection = ["--select", "+quarterly_precipitation_features", "+fct_daily_weather"]
    build = started([str(VENV_BIN / "dbt"), "build", *selection, "--target-path", str(target),
                     "--log-path", str(target / "logs")], database, tmp_path)  # fmt: skip
    finished_ok(backfill, build)
    reliability(
        backfill_converged(
            backfilled,
            database,
            tmp_path,
            "a backfill and a plain `dbt build` at once",
            "writer locks serialise them",
            faulted_error=None,
        )  # fmt: skip
    )


# ---- the working folders fail ------------------------------------------------------------------


def full_disk(limit_bytes: int) -> Callable[[], None]:
    """A child's view of a full disk: writing a file past ``limit_bytes`` fails with EFBIG (no file
    it writes may grow further), as ENOSPC would on a full partition."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_a_full_disk_during_a_load(mirror, database, tmp_path, reference, reliability) -> None:
    env = loader_env(database, tmp_path / "pipelines") | {"WEATHERINSIGHT_LOG_DIR": str(tmp_path / "logs")}
    command = [str(VENV_BIN / "weatherinsight"), "load", "dwd", "--base-url", mirror.base_url, *SCOPE]
    # 2 MiB: more than the station lists, two recent archives and the log need, less than the historical archive
    full = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
                          preexec_fn=full_disk(2 * 2**20))  # fmt: skip
    assert full.returncode == 1, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot write a working file (File too large); free space or fix permissions in")
    assert str(tmp_path / "pipelines") in last and last.endswith("nothing half-written was kept")
    # a load is one dlt package: none of it arrived (the archives that fitted come with the rerun)
    assert query(database, "select count(*) from pg_namespace where nspname = 'raw_dwd'") == [(0,)]
    assert_summary(load(mirror, database, tmp_path / "pipelines"))
    reliability(
        converged(reference, database, tmp_path, "disk full (file size limit) while the loader writes", 1, "rerun")
    )


def test_a_full_disk_during_a_backfill(backfilled, database, tmp_path, reliability) -> None:
    backfilled.copy(database)
    env = cli_env(database, WEATHERINSIGHT_LOG_DIR=str(tmp_path / "logs"))
    # 8 KiB: less than the SQL dbt compiles and writes for every window (the daily fact's is ~10 KiB)
    full = subprocess.run([str(VENV_BIN / "weatherinsight"), *BACKFILL], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600, preexec_fn=full_disk(8 * 1024))  # fmt: skip
    assert full.returncode == 1, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: 3 window(s) failed, published marts unchanged for them") and "File too large" in last
    windows = "select status, count(*) from ops.backfill_windows where run_id = 2 and error like %s group by 1"
    assert query(database, windows, ("%File too large%",)) == [("failed", 3)]
    reliability(
        backfill_converged(
            backfilled,
            database,
            tmp_path,
            "disk full (file size limit) while a backfill's dbt writes",
            "windows failed, named; `backfill resume`",
            faulted_error="3 window(s) failed",
        )  # fmt: skip
    )


@pytest.mark.parametrize("folder", ["logs", "pipelines"])
def test_a_working_folder_that_cannot_be_written(mirror, database, tmp_path, folder) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be\n")  # as root, permissions alone would not stop it
    env = loader_env(database, tmp_path / "pipelines") | {"WEATHERINSIGHT_LOG_DIR": str(tmp_path / "logs")}
    env["WEATHERINSIGHT_LOG_DIR" if folder == "logs" else "WEATHERINSIGHT_PIPELINES_DIR"] = str(blocked / folder)
    result = run_cli("load", "dwd", "--base-url", mirror.base_url, *SCOPE, env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "Not a directory" in lines[-1] and str(blocked) in lines[-1], lines
    assert mirror.downloads() == []  # it stopped before fetching anything
    assert query(database, "select count(*) from pg_namespace where nspname = 'raw_dwd'") == [(0,)]
