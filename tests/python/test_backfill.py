"""Backfill operations end to end, as users run them: `weatherinsight backfill plan|run|resume|restore`,
`status`, `validate` and `doctor` against a real database and the DWD mirror on 127.0.0.1.

The product is precipitation (Hamburg 2020-03 to 2021-09 and Fuhlsbüttel from 2021-08: 26,361
hourly rows), backfilled by quarter over 2021."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from weatherinsight import db

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

PRODUCT = "precipitation"
ARCHIVE = "precipitation/recent/stundenwerte_RR_01975_akt.zip"
YEAR = ("--start", "2021-01-01", "--end", "2022-01-01")
HALF = ("--start", "2021-01-01", "--end", "2021-07-01")
MARTS = (
    "marts.fct_hourly_precipitation",
    "marts.fct_daily_weather",
    "marts.quarterly_precipitation_features",
)


@dataclass
class Ops:
    """One database and one mirror; runs the CLI as a user does."""

    database: db.ConnectionSettings
    mirror: Mirror
    tmp: Path

    @property
    def env(self) -> dict[str, str]:
        # wide enough that rich does not wrap table rows (as in a terminal; pipes default to 80)
        return cli_env(self.database, WEATHERINSIGHT_PIPELINES_DIR=str(self.tmp / "pipelines"), COLUMNS="200")

    def cli(self, *arguments: str) -> subprocess.CompletedProcess:
        return run_cli(*arguments, env=self.env)

    def backfill(self, *arguments: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = self.cli("backfill", "run", "--base-url", self.mirror.base_url, "--products", PRODUCT, *arguments)
        assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    def checksums(self) -> dict:
        return {table: table_checksum(self.database, table) for table in MARTS}

    def windows(self, run_id: int) -> list[tuple]:
        return query(
            self.database,
            "select window_start::text, status, coalesce(rows_built, 0) from ops.backfill_windows"
            " where run_id = %s and layer = 'marts' order by window_start",
            (run_id,),
        )

    def last_run(self) -> tuple:
        return query(self.database, "select run_id, status, error from ops.backfill_runs order by run_id desc limit 1")[
            0
        ]

    def republish(self, mess_datum: str, value: str, field: int = 3) -> None:
        """DWD republishes the archive with one field of one hour changed (a new delivery): by default
        the precipitation amount, field 2 is the quality level."""
        republish(self.mirror, ARCHIVE, mess_datum, value, self.tmp, field)


@pytest.fixture
def ops(mirror, database, tmp_path) -> Ops:
    return Ops(database, mirror, tmp_path)


@dataclass
class HalfPublished:
    database: db.ConnectionSettings
    run: subprocess.CompletedProcess  # the `backfill run` that published it


@pytest.fixture(scope="module")
def half_published(server, tmp_path_factory) -> Iterator[HalfPublished]:
    """The first half of 2021 loaded and published by `backfill run` (Q1 and Q2) on an empty
    database, once for the module: where the repair tests start (each works on a copy)."""
    tmp = tmp_path_factory.mktemp("half_published")
    with scratch_database(server, "wi_test_backfill_half") as database, serve_mirror(tmp / "mirror") as mirror:
        yield HalfPublished(database, Ops(database, mirror, tmp).backfill(*HALF))


@pytest.fixture
def published(half_published, mirror, database, tmp_path) -> Ops:
    """A copy of the module's warehouse with 2021-H1 published; the test's own mirror (the sample's
    files, as the warehouse loaded them)."""
    return Ops(clone_database(half_published.database, database.database), mirror, tmp_path)


def test_plan_skips_complete_windows_and_a_removed_quarter_is_reported_and_refilled(
    half_published: HalfPublished, mirror, database, tmp_path
) -> None:
    ops = Ops(database, mirror, tmp_path)  # empty
    plan = ops.cli("backfill", "plan", *HALF, "--products", PRODUCT)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.count("missing") == 2 and "no history yet" in plan.stdout

    # that plan run (once for the module): a copy of the warehouse it left
    run = half_published.run
    ops = Ops(clone_database(half_published.database, database.database), mirror, tmp_path)
    assert "2021-Q1 precipitation: published" in run.stderr
    run_id, status, _ = ops.last_run()
    assert status == "succeeded"
    assert [(start, state) for start, state, _ in ops.windows(run_id)] == [
        ("2021-01-01", "succeeded"),
        ("2021-04-01", "succeeded"),
    ]
    # each window's rows are the hourly fact's rows of its quarter, as published
    for start, _, rows in ops.windows(run_id):
        # (the quarter's end in UTC: in a session in Europe/Berlin, timestamptz + 3 months would
        # step over the change to summer time in local time)
        published = query(ops.database, "select count(*) from marts.fct_hourly_precipitation where observed_at >= %s"
                                        " and observed_at < (cast(%s as timestamp) + interval '3 months') at time zone"
                                        " 'UTC'", (f"{start} 00:00+00", start))[0][0]  # fmt: skip
        assert rows == published > 2000, (start, rows, published)
    tests_recorded = query(ops.database, "select count(*), count(*) filter (where status = 'pass') "
                                         "from ops.data_quality_results where run_id = %s", (run_id,))[0]  # fmt: skip
    # every test guarding the window ran, relationships included; the only warning: the sample has no
    # precipitation station list, so Hamburg is not in dim_station yet (a warning by design)
    warnings = query(ops.database, "select distinct test_name from ops.data_quality_results where run_id = %s "
                                   "and status <> 'pass'", (run_id,))  # fmt: skip
    assert warnings == [("relationships_fct_hourly_precipitation_station_id__station_id__ref_dim_station_",)]
    assert tests_recorded[0] > 50 and tests_recorded[1] == tests_recorded[0] - 2

    plan = ops.cli("backfill", "plan", *HALF, "--products", PRODUCT)
    assert plan.stdout.count("skip") == 2 and "to build: 0 of 2" in plan.stdout
    before = ops.checksums()
    again = ops.backfill(*HALF)  # nothing to do: the same command twice changes nothing
    assert ops.windows(ops.last_run()[0]) == [] and ops.checksums() == before
    assert "2 skipped" not in again.stderr
    assert query(ops.database, "select windows_skipped from ops.backfill_runs order by run_id desc limit 1") == [(2,)]

    # someone deletes a published quarter: status and validate see it, the plan lists it, a run refills it
    execute(ops.database, "delete from marts.fct_hourly_precipitation where observed_at < '2021-04-01 00:00+00'"
                               " and observed_at >= '2021-01-01 00:00+00'")  # fmt: skip
    status = ops.cli("status", "--products", PRODUCT, "--start", "2021-01-01", "--end", "2021-07-01",
                     "--html", str(ops.tmp / "coverage.html"))  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert re.search(r"precipitation\s*│\s*2021-Q1\s*│\s*all\s*│\s*missing", status.stdout), status.stdout
    assert 'class="missing" title="precipitation 2021-Q1: missing' in (ops.tmp / "coverage.html").read_text()
    validate = ops.cli("validate", "--products", PRODUCT, *HALF)
    assert validate.returncode == 1
    assert "precipitation 2021-Q1: missing" in validate.stdout and "problem(s) in the warehouse" in validate.stderr
    plan = ops.cli("backfill", "plan", *HALF, "--products", PRODUCT)
    assert "to build: 1 of 2" in plan.stdout
    ops.backfill(*HALF)
    assert [start for start, *_ in ops.windows(ops.last_run()[0])] == ["2021-01-01"]
    assert ops.checksums() == before
    assert ops.cli("validate", "--products", PRODUCT, *HALF).returncode == 0


def start_and_wait_for_a_published_window(ops: Ops) -> subprocess.Popen:
    """A year's backfill in its own process group, once its first window is published (on the
    half-published warehouse: Q1 and Q2 skipped, Q3 and Q4 to build)."""
    runs_before = query(ops.database, "select coalesce(max(run_id), 0) from ops.backfill_runs")[0][0]
    command = [str(VENV_BIN / "weatherinsight"), "backfill", "run", "--base-url", ops.mirror.base_url,
               "--products", PRODUCT, *YEAR]  # fmt: skip
    # Ctrl-C as in a terminal: a test run started in the background (nohup, CI) ignores SIGINT, and
    # the run would inherit that
    victim = subprocess.Popen(command, env=ops.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    published = 0
    for _ in range(600):  # bounded: at most ~5 minutes
        if victim.poll() is not None:
            break
        published = query(ops.database, "select count(*) from ops.backfill_windows where layer = 'marts' "
                                        "and status = 'succeeded' and run_id > %s", (runs_before,))[0][0]  # fmt: skip
        if published >= 1:
            break
        time.sleep(0.5)
    if victim.poll() is not None or published < 1:
        os.killpg(victim.pid, signal.SIGKILL)
        pytest.fail("the run ended before it could be stopped mid-way")
    return victim


def dbt_workers_of(ops: Ops) -> list[int]:
    """Process ids of the dbt workers backfills started for this test's database (not the test
    session's own, which are this process's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid():
            continue
        if b"weatherinsight.ops.dbt.worker" in command and any(
            part.endswith(f"/{ops.database.database}".encode()) for part in command
        ):
            found.append(int(entry.name))
    return found


def test_killed_run_resumes_and_ends_identical_to_a_full_rebuild(published: Ops) -> None:
    ops = published
    victim = start_and_wait_for_a_published_window(ops)
    assert dbt_workers_of(ops), "the run builds its windows in a dbt worker"
    os.kill(victim.pid, signal.SIGKILL)  # the run only: its dbt worker must not outlive it
    victim.wait()
    for _ in range(100):
        if not dbt_workers_of(ops):
            break
        time.sleep(0.1)
    assert not dbt_workers_of(ops), "a dbt worker outlived its killed run"
    killed_run = ops.last_run()
    assert killed_run[1] == "running"  # what a kill leaves behind; the next command notices

    doctor = ops.cli("doctor")
    assert "are marked running but their process is gone" in doctor.stdout

    resumed = ops.backfill(*YEAR)
    assert query(ops.database, "select status, error like 'interrupted%%' from ops.backfill_runs where run_id = %s",
                 (killed_run[0],)) == [("failed", True)]  # fmt: skip
    resumed_run = ops.last_run()[0]
    built_again = [start for start, *_ in ops.windows(resumed_run)]
    assert built_again == ["2021-10-01"]  # Q3 was published before the kill
    assert query(ops.database, "select count(*) from pg_namespace where nspname like 'audit_r%%'") == [(0,)]
    assert "published" in resumed.stderr

    # the resumed marts equal a from-scratch rebuild of the same rows
    in_year = {
        "marts.fct_hourly_precipitation": (
            "observed_at >= '2021-01-01 00:00+00' and observed_at < '2022-01-01 00:00+00'"
        ),
        "marts.fct_daily_weather": "observed_date >= '2021-01-01' and observed_date < '2022-01-01'",
        "marts.quarterly_precipitation_features": "year = 2021",
    }
    resumed_sums = {table: table_checksum(ops.database, table, where=where) for table, where in in_year.items()}
    dbt_ok(ops.database, ops.tmp / "target", "build", "--full-refresh", "--select", "+quarterly_precipitation_features",
           "+fct_daily_weather", "--exclude-resource-type", "test", "unit_test")  # fmt: skip
    assert resumed_sums == {table: table_checksum(ops.database, table, where=where) for table, where in in_year.items()}
    assert resumed_sums["marts.fct_hourly_precipitation"][0] > 6000


def test_ctrl_c_stops_the_run_between_windows_and_resume_finishes_it(published: Ops) -> None:
    ops = published
    victim = start_and_wait_for_a_published_window(ops)
    os.killpg(victim.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the run and its dbt worker
    _, stderr = victim.communicate(timeout=300)
    assert victim.returncode == 130 and stderr.strip().splitlines()[-1] == "Aborted.", stderr[-3000:]
    run_id, status, error = ops.last_run()
    assert status == "failed"
    assert error == "interrupted: stopped by Ctrl-C (SIGINT); `weatherinsight backfill resume` finishes it"
    assert not dbt_workers_of(ops)
    # no window is left running, and no audit schema behind
    assert query(ops.database, "select count(*) from ops.backfill_windows where status = 'running'") == [(0,)]
    assert query(ops.database, "select count(*) from pg_namespace where nspname like 'audit_r%%'") == [(0,)]
    resumed = ops.cli("backfill", "resume", "--base-url", ops.mirror.base_url)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    statuses = query(ops.database, "select distinct status from ops.backfill_windows where run_id = %s "
                                   "and layer = 'marts'", (ops.last_run()[0],))  # fmt: skip
    assert statuses in ([], [("succeeded",)])
    assert ops.cli("validate", *YEAR).returncode == 0


def test_a_window_failing_its_tests_leaves_the_published_marts_byte_identical(published: Ops) -> None:
    ops = published
    before = ops.checksums()
    # a bad delivery: 350 mm in one hour passes the loader (it quarantines from 400 mm, what cannot be
    # true anywhere) but fails the marts' test (300 mm: implausible for a German station)
    ops.republish("2021020112", "350.0")
    failed = ops.backfill("--start", "2021-01-01", "--end", "2021-04-01", expect=1)
    assert "accepted_range_fct_hourly_precipitation_precipitation_mm" in failed.stderr
    assert "published marts unchanged" in failed.stderr
    assert ops.checksums() == before
    run_id, status, _ = ops.last_run()
    assert status == "failed"
    window = query(ops.database, "select status, error from ops.backfill_windows where run_id = %s and layer = 'marts'",
                   (run_id,))  # fmt: skip
    assert window[0][0] == "failed" and "precipitation_mm" in window[0][1]
    assert query(ops.database, "select failures from ops.data_quality_results where run_id = %s and status = 'fail'",
                 (run_id,)) == [(1,)]  # fmt: skip
    # the failure stays visible and is not retried by accident
    assert re.search(r"2021-Q1\s*│\s*all\s*│\s*failed", ops.cli("status", "--products", PRODUCT, *HALF).stdout)
    assert ops.cli("validate", "--products", PRODUCT, *HALF).returncode == 1
    assert "skip (failed in run" in ops.cli("backfill", "plan", *HALF, "--products", PRODUCT).stdout
    assert query(ops.database, "select count(*) from pg_namespace where nspname like 'audit_r%%'") == [(0,)]


def test_two_or_four_lanes_build_the_same_marts_as_one(ops: Ops) -> None:
    """`--parallel 2` and `--parallel 4`: dbt workers build the year's quarters at once, each in its
    own audit schema; the marts end identical to a run with one lane."""
    ops.backfill(*YEAR, "--parallel", "2")
    assert [status for _, status, _ in ops.windows(ops.last_run()[0])] == ["succeeded"] * 4
    two_lanes = ops.checksums()
    ops.backfill(*YEAR, "--force", "--no-load", "--parallel", "1")
    assert ops.checksums() == two_lanes
    ops.backfill(*YEAR, "--force", "--no-load", "--parallel", "4")
    assert [status for _, status, _ in ops.windows(ops.last_run()[0])] == ["succeeded"] * 4
    assert ops.checksums() == two_lanes
    assert query(ops.database, "select count(*) from pg_namespace where nspname like 'audit_r%%'") == [(0,)]


def test_a_forced_reprocess_is_undone_by_restore(published: Ops) -> None:
    ops = published
    before = ops.checksums()
    ops.republish("2021020112", "4.2")  # a plausible correction from DWD
    ops.backfill(*HALF, "--force")
    reprocess_run = ops.last_run()[0]
    after = ops.checksums()
    assert after != before
    assert query(ops.database, "select precipitation_mm from marts.fct_hourly_precipitation "
                               "where observed_at = '2021-02-01 12:00+00'") == [(Decimal("4.2"),)]  # fmt: skip
    restored = ops.cli("backfill", "restore", str(reprocess_run))
    assert restored.returncode == 0, restored.stderr
    assert ops.checksums() == before
    assert query(ops.database, "select status from ops.backfill_runs where run_id = %s", (reprocess_run,)) == [
        ("rolled back",)
    ]
    assert query(ops.database, "select command, status from ops.backfill_runs order by run_id desc limit 1") == [
        ("restore", "succeeded")
    ]
    # the restored window holding the corrected hour is older than raw now: the plan offers to
    # rebuild it, and says why; the republished archive stored only that hour, so the other window
    # of its span is still complete
    plan = ops.cli("backfill", "plan", *HALF, "--products", PRODUCT).stdout
    assert re.search(r"2021-Q1 │ precipitation │ stale\s+│ .* │ build \(1 raw delivery\(ies\) not processed by"
                     r" the hourly fact\) │", plan), plan  # fmt: skip
    assert re.search(r"2021-Q2 │ precipitation │ complete\s+│ .* │ skip \(complete\)", plan), plan


def test_a_run_refuses_a_window_another_run_holds(published: Ops) -> None:
    ops = published
    before = ops.checksums()
    # another run holds the window: a second one refuses, with one line, and changes nothing
    holder = db.connect(ops.database)
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.window:fct_hourly_precipitation:2021-01-01'))")
    try:
        refused = ops.backfill("--start", "2021-02-01", "--end", "2021-03-01", "--by", "month", "--force", "--no-load",
                               expect=1)  # fmt: skip
        assert "being written by another run" in refused.stderr
        assert ops.checksums() == before
    finally:
        holder.close()
    # two real runs at once, waiting for each other: tests/python/test_faults.py


def test_bad_input_is_one_line_exit_2_and_changes_nothing(ops: Ops) -> None:
    cases = [
        ("backfill", "plan", "--start", "2021-02-30", "--end", "2021-04-01"),
        ("backfill", "run", "--start", "2021-04-01", "--end", "2021-01-01"),
        ("backfill", "run", *HALF, "--products", "snow"),
        ("backfill", "run", *HALF, "--parallel", "0"),
        ("backfill", "run", *HALF, "--by", "week"),
        ("backfill", "restore", "4711"),
        ("backfill", "resume", "4711"),
        ("status", "--products", "snow"),
        ("validate", "--start", "2021-04-01", "--end", "2021-01-01"),
    ]
    for arguments in cases:
        result = ops.cli(*arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (arguments, result.stderr)
        assert "Traceback" not in result.stderr
    assert query(ops.database, "select count(*) from information_schema.tables where table_schema = 'marts'") == [(0,)]
    doctor = ops.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "database" in doctor.stdout and "dlt packages" in doctor.stdout


def test_a_quarter_deleted_from_a_feature_mart_is_reported_and_refilled(ops: Ops) -> None:
    """The runbook's repair step: delete the bad quarter from quarterly_temperature_features, then
    reprocess. Every published layer counts: the hourly and daily facts are complete, the mart is not."""
    arguments = ("--products", "air_temperature", "--start", "2020-01-01", "--end", "2020-04-01")
    ops.cli("backfill", "run", "--base-url", ops.mirror.base_url, *arguments)
    mart = "marts.quarterly_temperature_features"
    before = table_checksum(ops.database, mart)
    deleted = execute(ops.database, f"delete from {mart} where year = 2020 and quarter = 1")
    assert deleted == 3  # Großenkneten, Hamburg and Ulm

    status = ops.cli("status", *arguments)
    assert re.search(r"air_temperature\s*│\s*2020-Q1\s*│\s*all\s*│\s*partial", status.stdout), status.stdout
    validate = ops.cli("validate", *arguments)
    assert validate.returncode == 1
    assert "air_temperature 2020-Q1: partial (quarterly_temperature_features lacks 3 station-quarters)" in (
        validate.stdout
    ), validate.stdout
    plan = ops.cli("backfill", "plan", *arguments)
    assert re.search(
        r"partial\s*│.*│\s*build \(quarterly_temperature_features lacks 3 station-quarters\)", plan.stdout
    ), plan.stdout

    run = ops.cli("backfill", "run", "--base-url", ops.mirror.base_url, *arguments)  # no --force
    assert run.returncode == 0, run.stderr
    assert table_checksum(ops.database, mart) == before
    assert ops.cli("validate", *arguments).returncode == 0


def test_a_delivery_with_an_unknown_quality_level_fails_its_window_and_publishes_nothing(published: Ops) -> None:
    """The audit runs every test that guards the window's rows, relationships to the seeds and to
    dim_station included: a re-delivered file with a quality level the seed does not know fails."""
    ops = published
    before = ops.checksums()
    ops.republish("2021020112", "6", field=2)  # QN_8 = 6: no such level in seeds/dwd_quality_levels.csv
    failed = ops.backfill("--start", "2021-01-01", "--end", "2021-04-01", "--force", expect=1)
    assert "relationships_fct_hourly_precipitation_quality_level" in failed.stderr
    assert "published marts unchanged" in failed.stderr
    assert ops.checksums() == before
    run_id = ops.last_run()[0]
    relationships = query(
        ops.database,
        "select test_name, status from ops.data_quality_results where run_id = %s and test_name like 'relationships%%'"
        " order by test_name",
        (run_id,),
    )
    assert [status for name, status in relationships if "quality_level" in name] == ["fail"]
    assert any("dim_station" in name and status in ("pass", "warn") for name, status in relationships)
    validate = ops.cli("validate", "--products", PRODUCT, *HALF)
    assert validate.returncode == 1
    assert "data test failed: relationships_fct_hourly_precipitation_quality_level" in validate.stdout


def schemas(ops: Ops) -> list[str]:
    return [row[0] for row in query(ops.database, "select nspname from pg_namespace order by 1")]


def test_plan_and_dry_run_change_nothing_and_retry_failed_and_restore_keep_their_word(
    half_published: HalfPublished, mirror, database, tmp_path
) -> None:
    """The README's promises, one by one: `plan` and `run --dry-run` create nothing, not even a
    schema; the plan's estimate comes from past windows once there are some; `status --by-station`
    counts each station's hours; a failed window is skipped until `--retry-failed`; `restore`
    refuses a run that a later run published over, unless `--force`."""
    Q1 = ("--start", "2021-01-01", "--end", "2021-04-01")
    ops = Ops(database, mirror, tmp_path)  # empty
    untouched = schemas(ops)
    plan = ops.cli("backfill", "plan", "--products", PRODUCT, *HALF)
    assert plan.returncode == 0, plan.stderr
    assert "no history yet, assuming" in plan.stdout
    dry = ops.cli("backfill", "run", "--dry-run", "--base-url", ops.mirror.base_url, "--products", PRODUCT, *HALF)
    assert dry.returncode == 0, dry.stderr
    assert schemas(ops) == untouched and ops.mirror.downloads() == []

    # that run (`backfill run` of the half year, once for the module): a copy of what it left
    ops = Ops(clone_database(half_published.database, database.database), mirror, tmp_path)
    median = "select percentile_cont(0.5) within group (order by seconds) from ops.backfill_windows"
    seconds = query(ops.database, median + " where layer = 'marts' and status = 'succeeded'")[0][0]
    plan = ops.cli("backfill", "plan", "--products", PRODUCT, *YEAR)
    assert f"(median of past windows {seconds:.0f} s per window)" in plan.stdout, plan.stdout

    # one column per station, a glyph per quarter: Hamburg's second quarter deleted from the
    # quarterly mart turns partial there
    by_station = ops.cli("status", "--by-station", "--products", PRODUCT, *HALF)
    assert re.search(r"┃ year ┃ 1975 +┃\n.*\n│ 2021 │ ██ +│", by_station.stdout), by_station.stdout
    execute(ops.database, "delete from marts.quarterly_precipitation_features where station_id = 1975"
                               " and year = 2021 and quarter = 2")  # fmt: skip
    by_station = ops.cli("status", "--by-station", "--products", PRODUCT, *HALF)
    assert re.search(r"│ 2021 │ █▒ +│", by_station.stdout), by_station.stdout

    # a delivery fails Q1's tests: the failed window is skipped by the next run until --retry-failed
    ops.republish("2021020112", "350.0")
    ops.backfill(*Q1, "--force", expect=1)
    ops.republish("2021020112", "0.0")
    skipped = ops.backfill(*Q1)
    assert ops.windows(ops.last_run()[0]) == [] and "skip" in skipped.stdout + skipped.stderr
    ops.backfill(*Q1, "--retry-failed")
    retried = ops.last_run()[0]
    assert [status for _, status, _ in ops.windows(retried)] == ["succeeded"]

    # a later run publishes over Q1: restoring the earlier one refuses, unless forced
    ops.backfill(*Q1, "--force", "--no-load")
    later = ops.last_run()[0]
    refused = ops.cli("backfill", "restore", str(retried))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"Error: run(s) {later} published overlapping windows after run {retried}; restore those first, or pass --force"
    )
    forced = ops.cli("backfill", "restore", str(retried), "--force")
    assert forced.returncode == 0, forced.stderr


def test_a_quarter_the_source_never_delivered_is_empty_not_a_problem(ops: Ops) -> None:
    """DWD's file spans 2020-03 to 2021-09 but holds no hour of 2021-Q2 (a station out of service):
    once built, the quarter is empty — skipped by later runs, `○` in the status, listed by `validate`
    as a gap at the source, exit 0 — while 2021-Q1 is complete."""
    source = ops.mirror.hourly / ARCHIVE
    with zipfile.ZipFile(source) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in members.items():
            if name.startswith("produkt"):
                lines = data.decode("latin-1").split("\n")
                kept = [line for line in lines if not re.search(r";20210[456]\d{4};", line)]
                assert len(lines) - len(kept) == 2184  # April to June 2021, every hour
                data = "\n".join(kept).encode("latin-1")
            new.writestr(name, data)
    # three quarters loaded: the delivered rows around the gap show the file covers it
    nine_months = ("--start", "2021-01-01", "--end", "2021-10-01")
    ops.backfill(*nine_months)
    # the run builds the quarter once and finds nothing there; from then on it is empty, not missing
    (q1, q2, q3) = ops.windows(ops.last_run()[0])
    assert q1[:2] == ("2021-01-01", "succeeded") and q1[2] > 2000 and q2 == ("2021-04-01", "succeeded", 0)
    assert q3[:2] == ("2021-07-01", "succeeded") and q3[2] > 1000
    plan = ops.cli("backfill", "plan", *nine_months, "--products", PRODUCT).stdout
    assert re.search(r"2021-Q2 │ precipitation │ empty +│ +0 │ +0 │ skip \(empty\)", plan), plan
    status = ops.cli("status", "--products", PRODUCT, *nine_months)
    assert re.search(r"│ 2021 │ █○█ +│", status.stdout), status.stdout
    validated = ops.cli("validate", "--products", PRODUCT, *nine_months)
    assert validated.returncode == 0, validated.stdout[-3000:]
    assert "gap at the source: precipitation 2021-Q2" in validated.stdout
    assert "valid: no problems in the warehouse; 1 quarter(s) with gaps at the source" in validated.stdout
