"""Benchmark: a one-quarter windowed rebuild versus --full-refresh, and a no-op build versus dbt's
bare overhead, on a synthetic hourly table of realistic shape (and on the demo data if loaded).

Usage: python bench/windowed_rebuild.py [--stations 114] [--years 10] [--quarter 2019-04-01]
Prints a table and writes bench/results/windowed_rebuild-<timestamp>.json. Figures are wall-clock
seconds on whatever machine runs it; ratios are measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from weatherinsight import db
from weatherinsight.dwd.indexes import ensure_raw_indexes

REPO = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).parent / "dbt")
MODELS = ("fct_hourly_air_temperature", "quarterly_temperature_features")
console = Console()


def dbt(connection: db.Connection, target: Path, *arguments: str) -> float:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")} | connection.env()
    started = time.perf_counter()
    result = subprocess.run(
        [DBT, *arguments, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"dbt {' '.join(arguments)} failed:\n{result.stdout[-3000:]}")
    return elapsed


def synthesise(connection: db.Connection, stations: int, years: int) -> int:
    """Fill raw_dwd.air_temperature with one delivery of `stations` x `years` hourly rows."""
    conn = db.connect(connection)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("drop schema if exists raw_dwd cascade; create schema raw_dwd")
        cursor.execute(
            """
            create table raw_dwd.air_temperature (
                station_id integer, observed_at timestamptz, quality_level smallint, tt_tu double precision,
                rf_tu double precision, source_row_number bigint, release varchar, source_file varchar,
                file_size bigint, file_last_modified timestamptz, file_created_at timestamptz,
                loaded_at timestamptz, _dlt_load_id varchar(64) not null
            )
            """
        )
        cursor.execute(
            """
            insert into raw_dwd.air_temperature
            select
                station, hour, 3, round((10 + 8 * sin(extract(epoch from hour) / 5e6) + random() * 4)::numeric, 1),
                round((70 + random() * 25)::numeric, 0), row_number() over (), 'historical',
                'air_temperature/historical/synthetic_' || station || '.zip', 1, now(), now(), now(), '1700000000.0'
            from generate_series(1, %s) as station,
                generate_series('2011-01-01 00:00+00'::timestamptz, %s::timestamptz - interval '1 hour',
                                interval '1 hour') as hour
            """,
            (stations, datetime(2011 + years, 1, 1, tzinfo=timezone.utc)),
        )
        cursor.execute("select count(*) from raw_dwd.air_temperature")
        rows = cursor.fetchone()[0]
        # the other raw tables the project's sources name, empty
        for table in (
            "precipitation",
            "wind",
            "pressure",
            "cloud_cover",
            "moisture",
            "dew_point",
            "sun",
            "station_lists",
            "quarantine",
        ):
            cursor.execute(f"create table raw_dwd.{table} (like raw_dwd.air_temperature)")
    conn.close()
    ensure_raw_indexes(connection)  # as the loader does after every load
    return rows


def measure(connection: db.Connection, target: Path, quarter_start: date) -> dict:
    """Each configuration runs twice and the second, warm run is timed: dbt re-parses the whole
    project whenever --vars change, which the first run pays and is reported on its own."""
    quarter_end = date(quarter_start.year + (quarter_start.month + 3 > 12), (quarter_start.month + 2) % 12 + 1, 1)
    window = ("--vars", f"{{start_date: {quarter_start}, end_date: {quarter_end}}}")
    select = ("--select", *MODELS)
    empty = ("--select", "fct_hourly_air_temperature,tag:none")
    dbt(connection, target, "run", "--select", "stg_dwd__air_temperature_observations")
    figures = {"full_refresh_s": dbt(connection, target, "run", *select, "--full-refresh")}
    cold = dbt(connection, target, "run", *select, *window)
    figures["quarter_window_s"] = dbt(connection, target, "run", *select, *window)
    figures["reparse_on_new_vars_s"] = cold - figures["quarter_window_s"]
    dbt(connection, target, "run", *select)
    figures["noop_incremental_s"] = dbt(connection, target, "run", *select)
    figures["empty_selection_s"] = dbt(connection, target, "run", *empty)
    figures["quarter_over_full"] = figures["quarter_window_s"] / figures["full_refresh_s"]
    figures["noop_over_empty"] = figures["noop_incremental_s"] / figures["empty_selection_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=114)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--quarter", default="2019-04-01")
    parser.add_argument("--keep", action="store_true", help="keep the weatherinsight_bench database")
    arguments = parser.parse_args()
    server = db.resolve(start=True)
    bench = server.with_database("weatherinsight_bench")
    db.drop_database(bench)
    db.ensure_database(bench)
    target = REPO / "target" / "bench"
    started = time.perf_counter()
    rows = synthesise(bench, arguments.stations, arguments.years)
    console.print(f"synthesised {rows:,} hourly rows in {time.perf_counter() - started:.1f} s")
    figures = measure(bench, target, date.fromisoformat(arguments.quarter))
    quarter_share = 1 / (arguments.years * 4)
    table = Table(title=f"windowed rebuild vs full refresh ({rows:,} hourly rows, {date.today()})")
    for column in ("measure", "seconds / ratio"):
        table.add_column(column)
    for name, value in figures.items():
        table.add_row(name, f"{value:.3f}" if "over" in name else f"{value:.1f}")
    table.add_row("quarter row share", f"{quarter_share:.3f}")
    console.print(table)
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    output = results / f"windowed_rebuild-{datetime.now():%Y%m%dT%H%M%S}.json"
    output.write_text(json.dumps({"rows": rows, "quarter_share": quarter_share, **figures}, indent=2))
    console.print(f"written {output.relative_to(REPO)}")
    if not arguments.keep:
        db.drop_database(bench)


if __name__ == "__main__":
    main()
