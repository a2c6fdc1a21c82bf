"""Scale plan, measured: the same synthetic DWD mirror at two sizes on both engines (PostgreSQL and
the spark target over a parquet lake), side by side in one run, then the full archive's size from
DWD's station lists and what its history costs on each engine at the measured rates.

Per engine and size: the raw load, a full refresh of the air-temperature models (hourly fact and
quarterly features), a one-quarter window, and a plain build with nothing to do (the fixed cost of
one dbt invocation: on Spark, starting the JVM and the session). Needs the spark extra.

Usage: python bench/spark.py [--sizes 40x3,160x3] [--json bench/results/spark.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import scratch_database, serve  # noqa: E402  (bench/ is not a package)
from synth_mirror import generate  # noqa: E402

from weatherinsight import db  # noqa: E402
from weatherinsight.dwd.settings import HOURLY_PATH, PRODUCTS  # noqa: E402
from weatherinsight.dwd.stations import parse_station_list  # noqa: E402
from weatherinsight.ops.dbt import dbt_environment, venv_executable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "dwd_mirror" / HOURLY_PATH
SELECT = ("--select", "+quarterly_temperature_features")
WINDOW = "{start_date: 2023-04-01, end_date: 2023-07-01}"
console = Console()


def timed(command: list[str], env: dict[str, str], target: Path | None = None) -> dict[str, float]:
    """Run a command: its wall seconds and, for dbt, the seconds its models spent compiling (plans
    included: Spark's plain-build plan scans inputs) and executing, from run_results.json."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    figures = {"wall": time.perf_counter() - started, "compile": 0.0, "execute": 0.0}
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}… failed:\n{(result.stdout + result.stderr)[-3000:]}")
    results = target / "run_results.json" if target else None
    if results and results.is_file():
        for item in json.loads(results.read_text())["results"]:
            for phase in item.get("timing", []):
                if phase["name"] in ("compile", "execute") and phase.get("completed_at"):
                    begin = datetime.fromisoformat(phase["started_at"].rstrip("Z"))
                    end = datetime.fromisoformat(phase["completed_at"].rstrip("Z"))
                    figures[phase["name"]] += (end - begin).total_seconds()
    return figures


def measure(size: tuple[int, int], tmp: Path, server: db.ConnectionSettings) -> list[dict]:
    """Both engines on one synthetic mirror of ``size`` (stations, years)."""
    stations, years = size
    mirror = generate(tmp / "mirror", stations, years, ["air_temperature"])
    connection = scratch_database(server, f"wi_bench_spark_{stations}x{years}")
    cli = venv_executable("weatherinsight")
    base = {
        **dbt_environment(connection),
        "WEATHERINSIGHT_PIPELINES_DIR": str(tmp / "pipelines"),
        "WEATHERINSIGHT_LAKE_URL": str(tmp / "lake"),
        "WEATHERINSIGHT_SPARK_DIR": str(tmp / "spark"),
    }
    results = []
    try:
        with serve(mirror.root) as base_url:
            for engine in ("postgres", "spark"):
                target_path = tmp / f"t-{engine}"
                target = ["--target", engine if engine == "spark" else "dev", "--target-path", str(target_path)]
                load = [cli, "load", "dwd", "--base-url", base_url, "--products", "air_temperature"]
                if engine == "spark":
                    load += ["--destination", "lake"]
                dbt = [cli, "dbt", "run", *SELECT, *target]
                figures = {"engine": engine, "stations": stations, "years": years, "rows": mirror.rows}
                figures["load"] = timed(load, base)
                figures["full"] = timed([*dbt, "--full-refresh"], base, target_path)
                figures["window"] = timed([*dbt, "--vars", WINDOW], base, target_path)
                figures["nothing"] = timed(dbt, base, target_path)
                results.append(figures)
                console.print(f"{engine} {stations}×{years}: {figures}")
    finally:
        db.drop_database(connection)
    return results


def archive_station_hours() -> dict[str, int]:
    """Station-hours per product from DWD's station lists (each station's first to last day)."""
    hours: dict[str, int] = {}
    for product in PRODUCTS.values():
        folders = [SAMPLE / product.folder / release for release in ("historical", "recent")]
        listing = next((path for path in (f / product.station_list_name for f in folders) if path.is_file()), None)
        if listing is None:
            continue
        rows, _ = parse_station_list(listing.read_bytes())
        hours[product.name] = sum(
            ((row["last_observed_on"] - row["first_observed_on"]).days + 1) * 24
            for row in rows
            if row.get("first_observed_on") and row.get("last_observed_on")
        )
    return hours


def projection(results: list[dict], hours: dict[str, int]) -> dict:
    """The full history's cost at the larger size's measured rates (assumptions in the README)."""
    known = sum(hours.values())
    total = round(known / len(hours) * len(PRODUCTS))  # products without a list: the mean of those with one
    largest = max(results, key=lambda figures: figures["rows"])
    rates = {
        figures["engine"]: figures["rows"] / figures["full"]["execute"]
        for figures in results
        if figures["rows"] == largest["rows"]
    }
    return {
        "station_hours_listed": hours,
        "station_hours_total": total,
        "rows_per_second": rates,
        "postgres_full_hours": total / rates["postgres"] / 3600,
        "spark_local2_full_hours": total / rates["spark"] / 3600,
        "spark_rows_per_core_second": rates["spark"] / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="40x3,160x3", help="stations×years, comma-separated")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "spark.json")
    args = parser.parse_args()
    sizes = [tuple(int(part) for part in item.split("x")) for item in args.sizes.split(",")]
    server = db.resolve(start=True)
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="wi-bench-spark-") as folder:
            results += measure(size, Path(folder), server)
    table = Table(title="the same models on both engines (air temperature: hourly fact + quarterly features)")
    columns = ("engine", "size", "raw rows", "load s", "full refresh s", "of it models s", "rows/s",
               "1-quarter window s", "of it models s", "nothing new s", "of it plans s")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "engine" else "right")
    for figures in results:
        full, window, nothing = figures["full"], figures["window"], figures["nothing"]
        table.add_row(
            figures["engine"],
            f"{figures['stations']}×{figures['years']}",
            f"{figures['rows']:,}",
            f"{figures['load']['wall']:.1f}",
            f"{full['wall']:.1f}",
            f"{full['execute']:.1f}",
            f"{figures['rows'] / full['execute']:,.0f}",
            f"{window['wall']:.1f}",
            f"{window['execute']:.1f}",
            f"{nothing['wall']:.1f}",
            f"{nothing['compile']:.1f}",
        )
    console.print(table)
    plan = projection(results, archive_station_hours())
    console.print(
        f"full archive: {plan['station_hours_total']:,} station-hours over {len(PRODUCTS)} products "
        f"(listed: {', '.join(f'{name} {hours:,}' for name, hours in plan['station_hours_listed'].items())}); "
        f"one full refresh at the measured rates: PostgreSQL {plan['postgres_full_hours']:.1f} h, "
        f"Spark local[2] {plan['spark_local2_full_hours']:.1f} h "
        f"({plan['spark_rows_per_core_second']:,.0f} rows per core-second)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"measured": str(date.today()), "runs": results, "plan": plan}, indent=2))
    console.print(f"figures written to {args.json}")


if __name__ == "__main__":
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    main()
