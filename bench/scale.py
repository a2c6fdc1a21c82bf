"""`make bench-scale`: the everyday cycle at a product's real size.

A DWD-shaped mirror of air temperature built from DWD's real station list (every station with its
real first and last day: ~152 M station-hours; `--fraction 0.1` or `--stations 50` for smaller runs)
is served on 127.0.0.1, loaded (against a plain `COPY` of the same files) and fully built; then three
simulated days of DWD's daily regeneration of every recent archive (the rolling window gains a day
and loses one; on day 2 one hour's quality level is revised), each followed by the real
`weatherinsight update` (run in-process: DWD only). Printed side by side, and written to
bench/results/scale.json: load rows/s against COPY, full-build rows/s, per day the update's seconds
split into fetch + parse + dlt load, compare + store (settle), models, tests and validate, raw rows
added against new station-hours, database bytes per station-hour, peak RSS, and the projection
to all eight products.

Usage: python bench/scale.py [--fraction 1.0 | --stations N] [--days 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_mirror  # noqa: E402
from run import console, copy_ceiling, dbt, scratch_database, serve  # noqa: E402
from spark import archive_station_hours  # noqa: E402

from weatherinsight import db  # noqa: E402
from weatherinsight.dwd.service import load_dwd, make_window, parse_products  # noqa: E402
from weatherinsight.dwd.settings import HOURLY_PATH, PRODUCTS  # noqa: E402
from weatherinsight.ops.update import UpdateScope, run_update  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRODUCT = PRODUCTS["air_temperature"]
LISTING = REPO / "sample_data" / "dwd_mirror" / HOURLY_PATH / PRODUCT.folder / "recent" / PRODUCT.station_list_name
TARGETS = {
    "raw rows added per day <= 2 x (new station-hours + revised rows)": "raw_ratio",
    "a day's update of the whole product <= 60 s": "update_seconds",
    "a plain build with nothing new <= 10 s": "idle_build_seconds",
    "initial load >= 0.5 x the rows/s of COPY": "load_vs_copy",
}


def sizes(connection: db.ConnectionSettings) -> dict[str, int]:
    """Bytes on disk: raw tables, hourly facts, other marts (heap + TOAST), and all their indexes."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                """
                select
                    case
                        when n.nspname = 'raw_dwd' then 'raw'
                        when n.nspname = 'marts' and c.relname like 'fct\\_hourly\\_%%' then 'facts'
                        when n.nspname = 'marts' then 'marts'
                        else 'other'
                    end as part,
                    sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid))
                from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                where c.relkind in ('r', 'm') and n.nspname in ('raw_dwd', 'marts', 'ops', 'staging')
                group by 1
                """
            )
            found = {part: (int(heap), int(indexes)) for part, heap, indexes in cursor.fetchall()}
    finally:
        conn.close()
    return {
        "raw": found.get("raw", (0, 0))[0],
        "facts": found.get("facts", (0, 0))[0],
        "marts": found.get("marts", (0, 0))[0],
        "indexes": sum(indexes for _, indexes in found.values()),
    }


def scalar(connection: db.ConnectionSettings, statement: str) -> int:
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return int(cursor.fetchone()[0] or 0)
    finally:
        conn.close()


def build_split(target: Path | None) -> dict[str, float]:
    """Seconds dbt spent executing models and tests in a build (from run_results.json)."""
    split = {"models": 0.0, "tests": 0.0}
    if target is None or not (target / "run_results.json").is_file():
        return split
    for item in json.loads((target / "run_results.json").read_text())["results"]:
        kind = item["unique_id"].split(".")[0]
        if kind in ("model", "snapshot", "seed"):
            split["models"] += item["execution_time"]
        elif kind in ("test", "unit_test"):
            split["tests"] += item["execution_time"]
    return split


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the listed stations (every n-th)")
    parser.add_argument("--stations", type=int, help="this many listed stations instead of a fraction")
    parser.add_argument("--days", type=int, default=3, help="simulated days of DWD's daily regeneration")
    parser.add_argument("--keep", action="store_true", help="keep the database wi_bench_scale afterwards")
    parser.add_argument("--report", action="store_true", help="print the last run's figures again (no run)")
    options = parser.parse_args()
    out = REPO / "bench" / "results" / "scale.json"
    if options.report:
        figures = json.loads(out.read_text())
        figures["projection"] = projection(figures)
        out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
        report(figures)
        return
    server = db.resolve(start=True)
    tmp = Path(tempfile.mkdtemp(prefix="wi-bench-scale-"))
    figures: dict = {"fraction": options.fraction, "stations": options.stations}

    started = time.perf_counter()
    mirror = synth_mirror.generate_listed(
        tmp / "mirror", PRODUCT.name, LISTING.read_bytes(), options.fraction, options.stations
    )
    recent = [path for path in mirror.archives if path.name.endswith("_akt.zip")]
    figures["mirror"] = {
        "station_hours": mirror.rows,
        "archives": len(mirror.archives),
        "recent_archives": len(recent),
        "bytes": mirror.bytes,
        "seconds": time.perf_counter() - started,
    }
    console.print(f"mirror: {mirror.rows:,} station-hours in {len(mirror.archives)} archives ({len(recent)} recent)")
    connection = scratch_database(server, "wi_bench_scale")
    try:
        copied, copy_seconds = copy_ceiling(connection, mirror.archives)
        scalar(connection, "drop table copy_ceiling; select 1")
        with serve(tmp / "mirror") as base_url:
            loaded = load_dwd(
                base_url,
                parse_products(PRODUCT.name),
                None,
                make_window(None, None),
                connection,
                pipelines_dir=tmp / "pipelines",
            )
            figures["load"] = {
                "rows": loaded.rows_loaded,
                "seconds": loaded.seconds,
                "settle_seconds": loaded.settle_seconds,
                "rows_per_second": loaded.rows_loaded / loaded.seconds,
                "copy_rows_per_second": copied / copy_seconds,
            }
            figures["load"]["load_vs_copy"] = (
                figures["load"]["rows_per_second"] / figures["load"]["copy_rows_per_second"]
            )
            console.print(f"load: {figures['load']}")
            build_seconds, _ = dbt(connection, tmp / "target", "build")
            hours = scalar(connection, f"select count(*) from marts.fct_hourly_{PRODUCT.name}")
            figures["full_build"] = {
                "seconds": build_seconds,
                "station_hours": hours,
                "rows_per_second": hours / build_seconds,
            }
            # as users run it: the dbt CLI, its partial parse from the build before
            idle_seconds, _ = dbt(connection, tmp / "target", "build")
            figures["idle_build_seconds"] = idle_seconds
            figures["bytes_after_full_build"] = sizes(connection)
            console.print(f"full build: {figures['full_build']}; plain build with nothing new: {idle_seconds:.1f} s")

            scope = UpdateScope((PRODUCT.name,), None, (), 0)
            figures["days"] = []
            for day in range(options.days):
                raw_before = scalar(connection, f"select count(*) from raw_dwd.{PRODUCT.name}")
                # day 2: one hour in the middle of the first recent archive's window is revised
                revise = {recent[0].name: synth_mirror.middle_hour(recent[0])} if day == 1 else None
                regenerated = synth_mirror.regenerate_recent(
                    tmp / "mirror" / HOURLY_PATH, datetime(2026, 1, 2 + day, 8, 30), revise
                )
                outcome = run_update(connection, scope, dwd_base_url=base_url)
                added = scalar(connection, f"select count(*) from raw_dwd.{PRODUCT.name}") - raw_before
                changed = regenerated.new_hours + regenerated.revised_hours
                split = build_split(outcome.build_target)
                phases = outcome.phases
                record = {
                    "new_station_hours": regenerated.new_hours,
                    "revised_rows": regenerated.revised_hours,
                    "raw_rows_added": added,
                    "raw_ratio": added / changed if changed else None,
                    "update_seconds": outcome.seconds,
                    "fetch_parse_load_seconds": phases.get("dwd load", 0.0) - phases.get("dwd settle", 0.0),
                    "settle_seconds": phases.get("dwd settle", 0.0),
                    "build_seconds": phases.get("build", 0.0),
                    "models_seconds": split["models"],
                    "tests_seconds": split["tests"],
                    "validate_seconds": phases.get("validate", 0.0),
                    "problems": outcome.problems,
                }
                figures["days"].append(record)
                console.print(f"day {day + 1}: {record}")
        figures["bytes"] = sizes(connection)
        figures["station_hours"] = scalar(connection, f"select count(*) from marts.fct_hourly_{PRODUCT.name}")
        figures["peak_rss_mib"] = peak_rss_mib()
    finally:
        if not options.keep:
            db.drop_database(connection)
    figures["projection"] = projection(figures)
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    report(figures)
    console.print(f"written to {out.relative_to(REPO)}")


def projection(figures: dict) -> dict:
    """All eight products at the measured rates: station-hours from DWD's station lists (products
    without a list in the sample: the mean of those with one). A day's update from the days after the
    first (the first re-reads the freshly loaded rows: hint bits, statistics): its fetch + parse + load
    and settle grow with the recent archives (DWD regenerates ~3,500 a day; air temperature alone
    ~500), its build and validate with the day's changes, counted here as measured (a lower bound)."""
    listed = archive_station_hours()
    total = round(sum(listed.values()) / len(listed) * len(PRODUCTS))
    measured = figures["mirror"]["station_hours"]
    archives = max(figures["mirror"]["recent_archives"], 1)
    steady = figures["days"][1:] or figures["days"]

    def mean(key: str) -> float:
        return sum(day[key] for day in steady) / len(steady) if steady else 0.0

    per_archive = (mean("fetch_parse_load_seconds") + mean("settle_seconds")) / archives
    fixed = mean("build_seconds") + mean("validate_seconds")
    return {
        "station_hours_all_products": total,
        "scale_factor": total / measured,
        "initial_load_hours": total / figures["load"]["rows_per_second"] / 3600,
        "full_build_hours": total / figures["full_build"]["rows_per_second"] / 3600,
        "daily_update_seconds_one_product_500_archives": per_archive * 500 + fixed,
        "daily_update_minutes_3500_archives": (per_archive * 3500 + fixed) / 60,
        "raw_bytes": figures["bytes"]["raw"] / measured * total,
        "total_bytes": sum(figures["bytes"].values()) / measured * total,
    }


def report(figures: dict) -> None:
    table = Table(title=f"bench-scale: air temperature, {figures['mirror']['station_hours']:,} station-hours")
    table.add_column("figure")
    table.add_column("value", justify="right")
    load = figures["load"]
    table.add_row(
        "initial load rows/s (loader / COPY)",
        f"{load['rows_per_second']:,.0f} / {load['copy_rows_per_second']:,.0f} = {load['load_vs_copy']:.2f}",
    )
    table.add_row("  of which settle (s)", f"{load['settle_seconds']:.1f} of {load['seconds']:.1f}")
    table.add_row(
        "full build rows/s",
        f"{figures['full_build']['rows_per_second']:,.0f} ({figures['full_build']['seconds']:.0f} s)",
    )
    table.add_row("plain build with nothing new (s)", f"{figures['idle_build_seconds']:.1f}")
    for index, day in enumerate(figures["days"], 1):
        table.add_row(
            f"day {index}: update s (fetch+parse+load / settle / models / tests / validate)",
            f"{day['update_seconds']:.1f} ({day['fetch_parse_load_seconds']:.1f} / {day['settle_seconds']:.1f} / "
            f"{day['models_seconds']:.1f} / {day['tests_seconds']:.1f} / {day['validate_seconds']:.1f})",
        )
        table.add_row(
            f"day {index}: raw rows added / (new + revised)",
            f"{day['raw_rows_added']:,} / {day['new_station_hours'] + day['revised_rows']:,}",
        )
    hours = figures["station_hours"]
    for part, size in figures["bytes"].items():
        table.add_row(f"bytes per station-hour: {part}", f"{size / hours:.0f}")
    table.add_row("peak RSS (MiB)", f"{figures['peak_rss_mib']:.0f}")
    projected = figures["projection"]
    table.add_row(
        "whole product (~500 recent archives): a day's update (s, projected)",
        f"{projected['daily_update_seconds_one_product_500_archives']:.0f}",
    )
    table.add_row("all 8 products: station-hours", f"{projected['station_hours_all_products']:,}")
    table.add_row(
        "all 8 products: initial load (h) / full build (h)",
        f"{projected['initial_load_hours']:.1f} / {projected['full_build_hours']:.1f}",
    )
    table.add_row(
        "all 8 products: daily update of ~3,500 archives (min)",
        f"{projected['daily_update_minutes_3500_archives']:.1f}",
    )
    table.add_row(
        "all 8 products: disk (GB raw / total)",
        f"{projected['raw_bytes'] / 1e9:.0f} / {projected['total_bytes'] / 1e9:.0f}",
    )
    console.print(table)


if __name__ == "__main__":
    main()
