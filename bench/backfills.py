"""Backfill section of `make bench`: what a window costs besides its SQL, on a built warehouse.

- per-window overhead of `weatherinsight backfill run` for a 4-window and a many-window backfill
  (window wall minus its SQL: staging the audit schema, dbt executing models, tests and hooks,
  publishing), with the split of one window's wall time;
- a year backfilled by quarter (`weatherinsight backfill run`, as a user runs it) against one
  windowed `dbt build` of that year over the same models, and against SQLMesh backfilling the
  same year's intervals of the hourly fact;
- one quarter of the hourly fact restated: `weatherinsight dbt run --vars` (in process, parsed
  once), plain `dbt run --vars` (dbt re-parses because the vars changed) and SQLMesh.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import load_catalogue
from weatherinsight.ops.backfill.request import Request
from weatherinsight.ops.backfill.run import run_backfill
from weatherinsight.ops.dbt import dbt_environment

PRODUCT = "air_temperature"
HOURLY = "fct_hourly_air_temperature"
YEAR = (date(2023, 1, 1), date(2024, 1, 1))
QUARTER = (date(2023, 4, 1), date(2023, 7, 1))
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def timed(connection: db.ConnectionSettings, *command: str) -> float:
    """Wall seconds of a command run as a user runs it (from the repository, against ``connection``)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=dbt_environment(connection), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def window_vars(start: date, end: date, products: bool = True) -> str:
    extra = f", products: [{PRODUCT}]" if products else ""
    return f"{{start_date: {start.isoformat()}, end_date: {end.isoformat()}{extra}}}"


def backfill_split(connection: db.ConnectionSettings, start: date, end: date) -> dict:
    """A forced backfill of ``PRODUCT`` by quarter through the service (the CLI's code path), with
    where each window's wall time went."""
    request = Request.make(start, end, PRODUCT, None, "quarter", force=True, load=False)
    started = time.perf_counter()
    summary = run_backfill(connection, request)
    wall = time.perf_counter() - started
    outcomes = sorted(summary.outcomes, key=lambda outcome: outcome.batch)
    if not outcomes or not all(outcome.ok for outcome in outcomes):
        raise SystemExit(f"backfill {start}..{end} failed: {[o.problems for o in outcomes if not o.ok]}")

    def split(outcome) -> dict:
        timings = outcome.timings
        sql = timings.get("stage", 0) + timings.get("dbt_execution", 0) + timings.get("publish", 0)
        return {
            "wall_s": round(outcome.seconds, 3),
            "parse_s": round(timings.get("parse", 0), 3),
            "stage_s": round(timings.get("stage", 0), 3),
            "dbt_s": round(timings.get("dbt", 0), 3),
            "dbt_execution_s": round(timings.get("dbt_execution", 0), 3),
            "models_s": round(timings.get("models", 0), 3),
            "publish_s": round(timings.get("publish", 0), 3),
            "overhead_s": round(outcome.seconds - sql, 3),
            "wall_minus_models_s": round(outcome.seconds - timings.get("models", 0), 3),
        }

    windows = [split(outcome) for outcome in outcomes]
    # the first window also pays the worker's start and parse; the others show the steady state
    steady = windows[1:] or windows
    return {
        "windows": len(windows),
        "wall_s": round(wall, 2),
        "first_window": windows[0],
        "median_window": {key: round(statistics.median(w[key] for w in steady), 3) for key in steady[0]},
    }


#: the hourly fact alone, a year as four quarter windows in one dbt session (the worker's code path):
#: the same work as SQLMesh restating the year of its one model in four batches
FOUR_QUARTERS = """
import sys
from datetime import date
from pathlib import Path
from weatherinsight.ops.dbt.session import DbtSession
session = DbtSession(Path(sys.argv[1]))
for quarter in range(4):
    start, end = date(2023, 1 + 3 * quarter, 1), date(2023 + quarter // 3, (4 + 3 * quarter - 1) % 12 + 1, 1)
    variables = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    result = session.invoke(["run", "--select", sys.argv[2]], Path(sys.argv[1]) / f"q{quarter}", variables)
    if not result.ok:
        raise SystemExit(result.first_error_line())
"""


def bench_backfills(
    connection: db.ConnectionSettings, tmp: Path, many_windows: int, restatements: int = 2, warm: bool = True
) -> dict:
    """Run on the built late-delivery warehouse (raw and marts of ``PRODUCT`` in place). Without
    ``warm`` (the smoke scale) the runs that only warm dbt's parse state before a timed one are
    left out: every timed command still runs once, its figure a cold one."""
    results: dict = {}
    results["four_windows"] = backfill_split(connection, *YEAR)
    months = YEAR[1].year * 12 + YEAR[1].month - 1 - 3 * many_windows  # ``many_windows`` quarters back
    many_start = date(months // 12, months % 12 + 1, 1)
    results["many_windows"] = backfill_split(connection, many_start, YEAR[1])

    selection = [model.name for model in load_catalogue(connection).selection([PRODUCT])]
    year = window_vars(*YEAR)
    weatherinsight, dbt = str(BIN / "weatherinsight"), str(BIN / "dbt")
    backfill = (weatherinsight, "backfill", "run", "--no-load", "--force", "--products", PRODUCT,
                "--start", YEAR[0].isoformat(), "--end", YEAR[1].isoformat())  # fmt: skip
    build = ("build", "--select", *selection, "--exclude-resource-type", "unit_test", "--indirect-selection", "eager")
    target = ("--target-path", str(tmp / "target_backfills"), "--log-path", str(tmp / "target_backfills"))
    # one windowed build of the year as a user runs it: dbt re-parses (the vars differ from the last run)
    if warm:
        timed(connection, dbt, "parse", *target)
    results["year"] = {
        "backfill_by_quarter_s": round(timed(connection, *backfill), 2),
        "dbt_build_year_s": round(timed(connection, dbt, *build, "--vars", year, *target), 2),
        "weatherinsight_dbt_build_year_s": round(timed(connection, weatherinsight, "dbt", *build, "--vars", year), 2),
        "models": selection,
    }
    results["year"]["backfill_over_dbt_build"] = round(
        results["year"]["backfill_by_quarter_s"] / results["year"]["dbt_build_year_s"], 3
    )

    quarter = window_vars(*QUARTER, products=False)
    run = ("run", "--select", HOURLY)
    if warm:
        timed(connection, weatherinsight, "dbt", *run, "--vars", quarter)  # warm: the worker's parse state
    ours = [timed(connection, weatherinsight, "dbt", *run, "--vars", quarter) for _ in range(restatements)]
    plain = []
    for index in range(restatements):  # a new window each time, as a restatement is: dbt parses again
        if warm:
            other = window_vars(date(2022, 1 + 3 * index, 1), date(2022, 4 + 3 * index, 1), products=False)
            timed(connection, dbt, *run, "--vars", other, *target)
        plain.append(timed(connection, dbt, *run, "--vars", quarter, *target))
    results["quarter_restatement"] = {
        "weatherinsight_dbt_s": round(statistics.median(ours), 2),
        "plain_dbt_s": round(statistics.median(plain), 2),
    }
    session_dir = str(tmp / "four_quarters")
    if warm:
        timed(connection, sys.executable, "-c", FOUR_QUARTERS, session_dir, HOURLY)  # warm the parse state
    results["year"]["hourly_four_quarters_one_session_s"] = round(
        timed(connection, sys.executable, "-c", FOUR_QUARTERS, session_dir, HOURLY), 2
    )
    return results
