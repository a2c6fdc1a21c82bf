"""`make bench` cannot rot: its smoke scale runs every section (loader vs COPY, memory, windowed
rebuilds at two table sizes, late deliveries, dbt's overhead) against the real database and checks the figures it
reports hang together. Speed is never asserted here: figures belong to `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from weatherinsight import db

from conftest import REPO, cli_env, query


def test_bench_smoke_runs_every_section_and_reports_consistent_figures(
    server: db.ConnectionSettings, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        env=cli_env(server),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (report,) = tmp_path.glob("bench-smoke-*.json")
    figures = json.loads(report.read_text())
    loader = figures["loader"]
    # the loader loaded every row the mirror holds, as the plain COPY of the same files did
    assert loader["loader_rows"] == loader["copy_rows"] == loader["mirror"]["rows"] > 0
    assert loader["parsed_rows"] == loader["mirror"]["rows"]
    assert {"dlt extract", "dlt normalize", "dlt load", "download (HTTP only)"} <= set(loader["time_split_s"])
    assert all(entry["peak_rss_mib"] > 0 for entry in figures["memory"].values())
    # 2 stations, every hour of 2011-2020 (3,653 days); the smoke scale rebuilds a day and a year
    assert [entry["rows"] for entry in figures["windows"]] == [2 * 87_672]
    for entry in figures["windows"]:
        assert set(entry["windows"]) == {"day", "year"}
        shares = [window["row_share"] for window in entry["windows"].values()]
        assert shares == sorted(shares) and shares[-1] < 0.11
    late = figures["late"]["scenarios"]
    assert len(late) == 3 and all(scenario["rows_loaded"] > 0 for scenario in late.values())
    # every plain build after a late delivery ends where a full refresh of the same rows ends
    assert all(scenario["plain_equals_full_refresh"] for scenario in late.values())
    # the corrected month: the loader takes the one corrected archive again (500 days), nothing else
    assert late["c) one month of one station corrected"]["rows_loaded"] == 500 * 24
    backfills = figures["backfills"]
    # every window of both backfills published, each with a split of its wall time that adds up
    assert (backfills["four_windows"]["windows"], backfills["many_windows"]["windows"]) == (4, 5)
    for entry in (backfills["four_windows"], backfills["many_windows"]):
        window = entry["median_window"]
        assert 0 < window["models_s"] <= window["dbt_execution_s"] <= window["dbt_s"] <= window["wall_s"]
        assert window["parse_s"] == 0  # the worker parsed once, before the windows
    # each ratio the report prints is the quotient of the two timings it names (a ratio of a
    # timing that was never taken, or of the wrong pair, fails here)
    year = backfills["year"]
    assert year["backfill_over_dbt_build"] == pytest.approx(year["backfill_by_quarter_s"] / year["dbt_build_year_s"],
                                                            rel=0.03)  # fmt: skip
    overhead = figures["overhead"]
    assert overhead["noop_over_empty"] == pytest.approx(overhead["noop_s"] / overhead["empty_selection_s"], rel=0.03)
    assert backfills["quarter_restatement"]["weatherinsight_dbt_s"] > 0 and overhead["repeats"] >= 1
    assert "loader / COPY" in result.stdout and "no-op / bare" in result.stdout and "overhead s" in result.stdout
    leftovers = [
        name for (name,) in query(server, "select datname from pg_database where datname like 'weatherinsight_bench%%'")
    ]
    assert leftovers == []
