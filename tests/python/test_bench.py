"""`make bench` cannot rot: its smoke scale runs every section (loader vs COPY, memory, windowed
rebuilds at two table sizes, late deliveries, dbt's overhead) against the real database and checks the figures it
reports hang together. Speed is never asserted here: figures belong to `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
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


@pytest.mark.quick
def test_bench_scale_mirror_follows_the_real_station_list_and_regenerates_like_dwd(tmp_path: Path) -> None:
    """`make bench-scale`'s mirror: each chosen station of DWD's real air-temperature list with its
    real first and last day; a station still reporting gets a recent archive of 500 days, which a
    simulated day of DWD's regeneration rolls by one day."""
    sys.path.insert(0, str(REPO / "bench"))
    import synth_mirror

    from weatherinsight.dwd.settings import HOURLY_PATH, PRODUCTS
    from weatherinsight.dwd.stations import parse_station_list

    product = PRODUCTS["air_temperature"]
    listing = REPO / "sample_data" / "dwd_mirror" / HOURLY_PATH / product.folder / "recent"
    listing = listing / product.station_list_name
    rows, _ = parse_station_list(listing.read_bytes())
    mirror = synth_mirror.generate_listed(tmp_path, product.name, listing.read_bytes(), stations=3)
    spans = {row["station_id"]: row for row in rows}
    newest = max(row["last_observed_on"] for row in rows)
    recent = [path for path in mirror.archives if path.name.endswith("_akt.zip")]
    assert recent and len(recent) < len(mirror.archives)
    hours = 0
    for path in mirror.archives:
        station = int(path.name.split("_")[2])
        with zipfile.ZipFile(path) as archive:
            name = next(member for member in archive.namelist() if member.startswith("produkt_"))
            lines = archive.read(name).decode("latin-1").split("\r\n")[1:-1]
        first, last = lines[0].split(";")[1].strip(), lines[-1].split(";")[1].strip()
        hours += len(lines)
        if path in recent:
            assert spans[station]["last_observed_on"] >= newest - timedelta(days=7)
            assert len(lines) == min(500, (newest - spans[station]["first_observed_on"]).days + 1) * 24
            assert last == f"{newest:%Y%m%d}23"
        else:
            assert first == f"{spans[station]['first_observed_on']:%Y%m%d}00"
    assert hours == mirror.rows and len({int(p.name.split("_")[2]) for p in mirror.archives}) == 3
    day = synth_mirror.regenerate_recent(tmp_path / HOURLY_PATH, datetime(2026, 1, 2, 8, 30))
    assert day.archives == len(recent) and day.new_hours == 24 * len(recent)
