"""`make bench`: the loader and windowed rebuilds against the machine's ceilings and against peers,
measured side by side in one run. Prints a table and writes JSON to bench/results/.

Sections (each measured in its own scratch database on the same server):

1. loader: a synthetic DWD-shaped mirror (bench/synth_mirror.py) served on 127.0.0.1, loaded end to
   end by the real loader (HTTP -> parse -> dlt -> raw table); beside it a plain PostgreSQL COPY of
   the same product files into an unindexed table, and where the loader's time goes (download,
   parse, dlt extract/normalize/load); peak memory of a load of a small and of a ~600 k-row file;
2. windows: a windowed rebuild of one day, month, quarter and year against `--full-refresh`, for the
   hourly fact and a quarterly mart, at two table sizes (per-model execution times from dbt's
   run_results.json, so dbt's start-up and parsing are not counted);
3. late deliveries: on a built warehouse of a synthetic mirror, a plain `dbt build` after (a) every
   historical archive re-published, (b) a new station with decades of history, (c) one corrected
   month, each against `--full-refresh` of the same data (model execution times; the daily fact and
   quarterly marts compared byte for byte after both);
4. overhead: a no-op `dbt run` against dbt's bare overhead (a run with an empty selection);
5. peers: SQLMesh restating the same quarter with an INCREMENTAL_BY_TIME_RANGE model over the same
   raw table, and wetterdienst's DWD parser on the same files (each in its own virtualenv under
   bench/.peers/, installed from PyPI on first use).

Usage: python bench/run.py [--smoke] [--no-peers] [--out bench/results]
`--smoke` runs every section at a tiny scale (part of `make test`, so the harness cannot rot).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from weatherinsight import db
from weatherinsight.dwd.indexes import ensure_raw_indexes
from weatherinsight.dwd.settings import PRODUCTS
from weatherinsight.ops.dbt import dbt_environment
from weatherinsight.ops.dbt.worker import DbtWorker

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backfills  # noqa: E402 - bench/ is not a package
import peers  # noqa: E402
import synth_mirror  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).parent / "dbt")
MODELS = ("fct_hourly_air_temperature", "quarterly_temperature_features")
PRODUCT = PRODUCTS["air_temperature"]
# wide tables even when the output is a pipe or a file (rich assumes 80 columns there)
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Scale:
    name: str
    loader_stations: int
    loader_years: int
    #: years of history of the one-station mirrors whose load's peak memory is measured
    memory_years: tuple[int, ...]
    #: (stations, years) of the synthetic hourly tables for the window section
    tables: tuple[tuple[int, int], ...]
    repeats: int
    #: (stations, years) of the synthetic mirror of the late-delivery section, and the new station's years
    late: tuple[int, int, int]
    #: windows of the many-window backfill (quarters up to the end of 2023)
    backfill_windows: int
    #: the windows (of WINDOWS) rebuilt in the window section
    windows: tuple[str, ...] = ("day", "month", "quarter", "year")


SCALES = {
    "full": Scale("full", 30, 6, (1, 12, 68), ((114, 10), (228, 10)), 3, (24, 20, 70), 40),
    # the harness at its smallest: one table and the two extreme windows (each window is a dbt run)
    "smoke": Scale("smoke", 2, 1, (1, 2), ((2, 10),), 1, (2, 3, 4), 5, ("day", "year")),
}
WINDOWS = {
    "day": (date(2019, 5, 15), date(2019, 5, 16)),
    "month": (date(2019, 5, 1), date(2019, 6, 1)),
    "quarter": (date(2019, 4, 1), date(2019, 7, 1)),
    "year": (date(2019, 1, 1), date(2020, 1, 1)),
}


# ---- helpers ------------------------------------------------------------------------------------


def scratch_database(server: db.ConnectionSettings, name: str) -> db.ConnectionSettings:
    connection = server.with_database(name)
    db.drop_database(connection)
    db.ensure_database(connection)
    return connection


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """The folder on http://127.0.0.1:<port>/ (python's http.server, as the tests and the demo use)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def dbt(connection: db.ConnectionSettings, target: Path, *arguments: str) -> tuple[float, dict[str, float]]:
    """Run the dbt CLI as a user does (its start and parse included); wall seconds and each model's
    execution seconds from run_results.json."""
    env = dbt_environment(connection)
    started = time.perf_counter()
    result = subprocess.run(
        [DBT, *arguments, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"dbt {' '.join(arguments)} failed:\n{result.stdout[-3000:]}")
    models = {}
    run_results = target / "run_results.json"
    if run_results.is_file():
        for item in json.loads(run_results.read_text())["results"]:
            models[item["unique_id"].rsplit(".", 1)[-1]] = item["execution_time"]
    return wall, models


#: one dbt worker per database the bench builds in: the project parsed once (as backfills do)
_WORKERS: dict[str, DbtWorker] = {}


def dbt_sql(
    connection: db.ConnectionSettings, target: Path, *arguments: str, variables: dict | None = None
) -> tuple[float, dict[str, float]]:
    """``dbt <arguments>`` in a dbt worker that keeps the project parsed, for figures of the SQL
    dbt runs (each model's execution seconds): no process start, no parse. Wall seconds too."""
    if connection.database not in _WORKERS:
        _WORKERS[connection.database] = DbtWorker(connection, target.parent / f"worker_{connection.database}")
    started = time.perf_counter()
    result = _WORKERS[connection.database].run(list(arguments), target, variables)
    wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"dbt {' '.join(arguments)} failed: {result.first_error_line()} (see {result.log_path})")
    models = {r["unique_id"].rsplit(".", 1)[-1]: r.get("seconds") or 0.0 for r in result.results}
    return wall, models


def close_workers() -> None:
    while _WORKERS:
        _WORKERS.popitem()[1].close()


def window_vars(start: date, end: date) -> dict[str, str]:
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


# ---- 1. loader ----------------------------------------------------------------------------------


def copy_ceiling(connection: db.ConnectionSettings, archives: list[Path]) -> tuple[int, float]:
    """Plain COPY of the archives' product files into an unindexed, logged table: (rows, seconds)."""
    columns = ", ".join(f"{m.raw_column} double precision" for m in PRODUCT.measures)
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "drop table if exists copy_ceiling; create table copy_ceiling "
                f"(station_id integer, mess_datum text, quality_level integer, {columns}, eor text)"
            )
            started = time.perf_counter()
            for path in archives:
                with zipfile.ZipFile(path) as archive:
                    member = next(name for name in archive.namelist() if name.startswith("produkt_"))
                    with archive.open(member) as stream:
                        cursor.copy_expert(
                            "copy copy_ceiling from stdin with (format csv, delimiter ';', header true)",
                            io.TextIOWrapper(stream, encoding="latin-1"),
                        )
            seconds = time.perf_counter() - started
            cursor.execute("select count(*) from copy_ceiling")
            return cursor.fetchone()[0], seconds
    finally:
        conn.close()


def download_seconds(base_url: str, root: Path, archives: list[Path]) -> float:
    from weatherinsight.dwd.listing import make_client

    session = make_client()
    started = time.perf_counter()
    for path in archives:
        response = session.get(base_url + path.relative_to(root).as_posix(), timeout=60)
        response.raise_for_status()
        len(response.content)
    return time.perf_counter() - started


def parse_seconds(archives: list[Path]) -> tuple[int, float]:
    from weatherinsight.dwd.parser import parse_product_file

    rows = 0
    started = time.perf_counter()
    for path in archives:
        station = int(path.name.split("_")[2])
        with zipfile.ZipFile(path) as archive:
            member = next(name for name in archive.namelist() if name.startswith("produkt_"))
            with archive.open(member) as stream:
                for batch in parse_product_file(stream, PRODUCT, station):
                    rows += batch.table.num_rows
    return rows, time.perf_counter() - started


def run_loader(base_url: str, connection: db.ConnectionSettings, pipelines_dir: Path) -> dict:
    """The real loader, end to end, with dlt's step timings from the pipeline trace."""
    from weatherinsight.dwd.parser import TimeWindow
    from weatherinsight.dwd.service import load_dwd
    from weatherinsight.dwd.settings import DATASET_NAME, PIPELINE_NAME
    from weatherinsight.pipelines import make_pipeline

    started = time.perf_counter()
    result = load_dwd(base_url, [PRODUCT], None, TimeWindow(), connection, pipelines_dir=str(pipelines_dir))
    seconds = time.perf_counter() - started
    trace = make_pipeline(connection, PIPELINE_NAME, DATASET_NAME, pipelines_dir).last_trace
    steps = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in (trace.steps if trace else [])
        if step.step in ("extract", "normalize", "load") and step.finished_at
    }
    return {"rows": result.rows_loaded, "seconds": seconds, "steps": steps}


def bench_loader(server: db.ConnectionSettings, tmp: Path, scale: Scale) -> dict:
    started = time.perf_counter()
    mirror = synth_mirror.generate(tmp / "mirror", scale.loader_stations, scale.loader_years, [PRODUCT.name])
    generated = time.perf_counter() - started
    product_archives = [path for path in mirror.archives if path.suffix == ".zip"]
    connection = scratch_database(server, "weatherinsight_bench_loader")
    with serve(mirror.root) as base_url:
        download = download_seconds(base_url, mirror.root, product_archives)
        parsed_rows, parse = parse_seconds(product_archives)
        loader = run_loader(base_url, connection, tmp / "pipelines")
    copy_rows, copy = copy_ceiling(connection, product_archives)
    db.drop_database(connection)
    loader_rate = loader["rows"] / loader["seconds"]
    copy_rate = copy_rows / copy
    return {
        "mirror": {
            "stations": scale.loader_stations,
            "years": scale.loader_years,
            "archives": len(product_archives),
            "mib": round(mirror.bytes / 2**20, 1),
            "rows": mirror.rows,
            "generate_s": round(generated, 1),
        },
        "loader_rows": loader["rows"],
        "loader_s": round(loader["seconds"], 2),
        "loader_rows_per_s": round(loader_rate),
        "copy_rows": copy_rows,
        "copy_s": round(copy, 2),
        "copy_rows_per_s": round(copy_rate),
        "loader_over_copy": round(loader_rate / copy_rate, 3),
        "time_split_s": {
            "download (HTTP only)": round(download, 2),
            "parse (parser only)": round(parse, 2),
            **{f"dlt {name}": round(value, 2) for name, value in loader["steps"].items()},
            "listing, state, indexes": round(loader["seconds"] - sum(loader["steps"].values()), 2),
        },
        "parsed_rows": parsed_rows,
    }


def memory_child(base_url: str, database: str, pipelines_dir: str) -> None:
    """Entry point of the memory measurement: load in this fresh process, print peak RSS."""
    connection = db.resolve(start=True).with_database(database)
    result = run_loader(base_url, connection, Path(pipelines_dir))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": result["rows"], "peak_rss_mib": round(peak_kib / 1024, 1)}))


def bench_memory(server: db.ConnectionSettings, tmp: Path, scale: Scale) -> dict:
    """Peak RSS of a load in a fresh process per file size: the parser reads ~20 k lines at a time, so
    memory should grow up to one batch and stay flat beyond it."""
    figures = {}
    for years in scale.memory_years:
        label = f"{years} year{'s' if years > 1 else ''} of one station"
        root = tmp / f"memory_{years}"
        mirror = synth_mirror.generate(root, 1, years, [PRODUCT.name], first_station=900)
        largest = max(mirror.archives, key=lambda path: path.stat().st_size)
        connection = scratch_database(server, f"weatherinsight_bench_mem_{years}")
        with serve(root) as base_url:
            output = subprocess.run(
                [sys.executable, __file__, "--memory-child", base_url, connection.database, str(root / "pipelines")],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            ).stdout
        db.drop_database(connection)
        measured = json.loads(output.strip().splitlines()[-1])
        with zipfile.ZipFile(largest) as archive:
            member = next(name for name in archive.namelist() if name.startswith("produkt_"))
            largest_rows = archive.read(member).count(b"\n") - 1
        figures[label] = {"largest_file_rows": largest_rows, **measured}
    return figures


# ---- 2. and 3. windowed rebuilds and dbt's overhead ---------------------------------------------


def synthesise(connection: db.ConnectionSettings, stations: int, years: int) -> int:
    """raw_dwd.air_temperature with ``stations`` × ``years`` hourly rows of one delivery (SQL-generated:
    the window section measures dbt, not the loader), the other raw tables empty."""
    conn = db.connect(connection)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("drop schema if exists raw_dwd cascade; create schema raw_dwd")
        cursor.execute(
            """
            create table raw_dwd.air_temperature (
                station_id integer, observed_at timestamptz, quality_level smallint, tt_tu double precision,
                rf_tu double precision, source_row_number bigint, delivery_id bigint,
                _dlt_load_id varchar(64) not null
            );
            create table raw_dwd.deliveries (
                delivery_id bigint, product varchar, station_id integer, release varchar, source_file varchar,
                file_size bigint, file_last_modified timestamptz, file_created_at timestamptz,
                first_observed_at timestamptz, last_observed_at timestamptz, row_count bigint,
                loaded_at timestamptz, _dlt_load_id varchar(64) not null, rows_stored bigint, is_history boolean
            )
            """
        )
        cursor.execute(
            """
            insert into raw_dwd.air_temperature
            select
                station, hour, 3, round((10 + 8 * sin(extract(epoch from hour) / 5e6) + random() * 4)::numeric, 1),
                round((70 + random() * 25)::numeric, 0), row_number() over (), station, '1700000000.0'
            from generate_series(1, %(stations)s) as station,
                generate_series('2011-01-01 00:00+00'::timestamptz, %(end)s::timestamptz - interval '1 hour',
                                interval '1 hour') as hour;
            -- one historical archive per station, delivered in one load
            insert into raw_dwd.deliveries
            select
                station, 'air_temperature', station, 'historical',
                'air_temperature/historical/synthetic_' || station || '.zip', 1, now(), now(),
                '2011-01-01 00:00+00', %(end)s::timestamptz - interval '1 hour', 0, now(), '1700000000.0'
            from generate_series(1, %(stations)s) as station
            """,
            {"stations": stations, "end": datetime(2011 + years, 1, 1, tzinfo=timezone.utc)},
        )
        cursor.execute("select count(*) from raw_dwd.air_temperature")
        rows = cursor.fetchone()[0]
        for table in (*(name for name in PRODUCTS if name != "air_temperature"), "station_lists", "quarantine"):
            cursor.execute(f"create table raw_dwd.{table} (like raw_dwd.air_temperature)")
    conn.close()
    ensure_raw_indexes(connection)
    return rows


def bench_windows(
    server: db.ConnectionSettings, tmp: Path, stations: int, years: int, windows: tuple[str, ...] = tuple(WINDOWS)
) -> dict:
    connection = scratch_database(server, f"weatherinsight_bench_windows_{stations}")
    started = time.perf_counter()
    rows = synthesise(connection, stations, years)
    generated = time.perf_counter() - started
    target = tmp / f"target_{stations}"
    select = ("--select", *MODELS)
    dbt_sql(connection, target, "run", "--select", "stg_dwd__air_temperature_observations")
    full_wall, full = dbt_sql(connection, target, "run", *select, "--full-refresh")
    total_hours = years * 365.25 * 24
    figures = {
        "rows": rows,
        "stations": stations,
        "years": years,
        "generate_s": round(generated, 1),
        "full_refresh": {"wall_s": round(full_wall, 2), **{m: round(full[m], 2) for m in MODELS}},
        "windows": {},
    }
    for name in windows:
        start, end = WINDOWS[name]
        wall, models = dbt_sql(connection, target, "run", *select, variables=window_vars(start, end))
        share = (end - start).days * 24 / total_hours
        figures["windows"][name] = {
            "row_share": round(share, 5),
            "wall_s": round(wall, 2),
            **{model: round(models[model], 3) for model in MODELS},
            **{f"{model}_over_full": round(models[model] / full[model], 4) for model in MODELS},
            "hourly_over_full_per_row_share": round(models[MODELS[0]] / full[MODELS[0]] / share, 2),
        }
    figures["connection"] = connection
    return figures


def bench_overhead(connection: db.ConnectionSettings, tmp: Path, repeats: int, warm: bool = True) -> dict:
    """dbt's cost of a run with nothing to do against its bare overhead. Without ``warm`` (the smoke
    scale) the two warm-up runs are left out: the figures are cold ones."""
    target = tmp / "target_overhead"
    select = ("--select", *MODELS)
    empty = ("--select", "fct_hourly_air_temperature,tag:none")
    if warm:
        dbt(connection, target, "run", *select)  # parse once, take in anything new
        dbt(connection, target, "run", *empty)
    noop = [dbt(connection, target, "run", *select)[0] for _ in range(repeats)]
    bare = [dbt(connection, target, "run", *empty)[0] for _ in range(repeats)]
    return {
        "noop_s": round(statistics.median(noop), 2),
        "empty_selection_s": round(statistics.median(bare), 2),
        "noop_over_empty": round(statistics.median(noop) / statistics.median(bare), 3),
        "repeats": repeats,
    }


# ---- 5. late deliveries --------------------------------------------------------------------------

LATE_PRODUCTS = ["air_temperature", "wind"]
#: the models whose execution times the late-delivery section adds up (hourly, daily, quarterly)
LATE_MODELS = (
    "fct_hourly_air_temperature",
    "fct_hourly_wind",
    "fct_daily_weather",
    "quarterly_temperature_features",
    "quarterly_wind_features",
)


def model_seconds(models: dict[str, float]) -> float:
    return sum(models.get(name, 0.0) for name in LATE_MODELS)


def mart_digest(connection: db.ConnectionSettings) -> str:
    """md5 over the daily fact and the quarterly marts of the late-delivery section (not the hourly
    facts: hashing millions of rows would cost more than the builds being compared)."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            parts = []
            for name in LATE_MODELS[2:]:
                cursor.execute(f"select md5(string_agg(t::text, ',' order by t::text)) from marts.{name} as t")
                parts.append(cursor.fetchone()[0] or "")
            return "".join(parts)
    finally:
        conn.close()


def settle(connection: db.ConnectionSettings, tables: list[str]) -> None:
    """Vacuum the raw tables a load wrote, as autovacuum soon would: the first query to read fresh
    pages sets their hint bits (writing them again), and neither build compared should pay that."""
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for table in tables:
                cursor.execute(f"vacuum (analyze) raw_dwd.{table}")
    finally:
        conn.close()


def bench_late_deliveries(server: db.ConnectionSettings, tmp: Path, scale: Scale) -> dict:
    """Plain `dbt build` after late deliveries on a built warehouse, against `--full-refresh` of the
    same data: (a) DWD re-publishes every station's historical archive (new version stamps, same
    values, some quality levels raised), (b) a new station with decades of history, (c) one month
    of one station corrected. Model execution seconds from run_results.json."""
    from weatherinsight.dwd.parser import TimeWindow
    from weatherinsight.dwd.service import load_dwd, parse_products

    stations, years, new_years = scale.late
    root = tmp / "late_mirror"
    mirror = synth_mirror.generate(root, stations, years, LATE_PRODUCTS)
    connection = scratch_database(server, "weatherinsight_bench_late")
    target = tmp / "target_late"
    build = ("build", "--exclude-resource-type", "test", "unit_test")
    results: dict = {"stations": stations, "years": years, "raw_rows": mirror.rows, "scenarios": {}}
    with serve(root) as base_url:

        def load() -> int:
            result = load_dwd(
                base_url, parse_products(LATE_PRODUCTS), None, TimeWindow(), connection, pipelines_dir=tmp / "late"
            )
            settle(connection, LATE_PRODUCTS)
            return result.rows_loaded

        load()
        wall, models = dbt_sql(connection, target, *build)
        results["initial_build"] = {"wall_s": round(wall, 2), "models_s": round(model_seconds(models), 2)}
        changes = {
            "a) historical archives re-published": lambda: synth_mirror.rerelease_historical(mirror),
            f"b) a new station with {new_years} years": lambda: (
                synth_mirror.generate(
                    root,
                    1,
                    new_years,
                    LATE_PRODUCTS,
                    first_station=90_000,
                    listed_stations=list(range(100, 100 + stations)),
                ).rows
            ),
            "c) one month of one station corrected": lambda: synth_mirror.correct_month(
                mirror, 100, "air_temperature", "202406"
            ),
        }
        for name, change in changes.items():
            change()
            rows = load()
            plain_wall, plain = dbt_sql(connection, target, *build)
            after_plain = mart_digest(connection)
            full_wall, full = dbt_sql(connection, target, *build, "--full-refresh")
            results["scenarios"][name] = {
                "rows_loaded": rows,
                "plain_equals_full_refresh": after_plain == mart_digest(connection),
                "plain_wall_s": round(plain_wall, 2),
                "plain_models_s": round(model_seconds(plain), 2),
                "full_wall_s": round(full_wall, 2),
                "full_models_s": round(model_seconds(full), 2),
                "plain_over_full": round(model_seconds(plain) / model_seconds(full), 3),
                "models_plain_full_s": {
                    name: [round(plain.get(name, 0.0), 2), round(full.get(name, 0.0), 2)] for name in LATE_MODELS
                },
            }
    results["connection"] = connection  # the backfill section runs on this warehouse next
    return results


# ---- report -------------------------------------------------------------------------------------


def measure_table(title: str) -> Table:
    table = Table(title=title)
    for column in ("measure", "value"):
        table.add_column(column)
    return table


def print_report(results: dict) -> None:
    loader = results["loader"]
    table = measure_table(f"loader ({loader['mirror']['rows']:,} rows in {loader['mirror']['archives']} archives)")
    table.add_row("loader end to end", f"{loader['loader_rows_per_s']:,} rows/s ({loader['loader_s']} s)")
    table.add_row("plain COPY, no indexes", f"{loader['copy_rows_per_s']:,} rows/s ({loader['copy_s']} s)")
    table.add_row("loader / COPY (target ≥ 0.5)", f"{loader['loader_over_copy']:.3f}")
    for name, seconds in loader["time_split_s"].items():
        table.add_row(f"  time: {name}", f"{seconds} s")
    for label, figures in results["memory"].items():
        table.add_row(
            f"peak RSS, {label}", f"{figures['peak_rss_mib']} MiB ({figures['largest_file_rows']:,}-row file)"
        )
    console.print(table)
    table = Table(title="windowed rebuild vs --full-refresh (model execution seconds; ratio to full)")
    for column in ("rows", "window", "row share", "hourly s", "hourly/full", "÷ share (target ≤ 3)", "quarterly s",
                   "quarterly/full", "wall s"):  # fmt: skip
        table.add_column(column, justify="right")
    for entry in results["windows"]:
        full = entry["full_refresh"]
        table.add_row(f"{entry['rows']:,}", "full refresh", "1", f"{full[MODELS[0]]}", "1", "", f"{full[MODELS[1]]}",
                      "1", f"{full['wall_s']}")  # fmt: skip
        for name, window in entry["windows"].items():
            hourly, quarterly = MODELS
            table.add_row(
                "",
                name,
                f"{window['row_share']:.4f}",
                f"{window[hourly]}",
                f"{window[hourly + '_over_full']:.4f}",
                f"{window['hourly_over_full_per_row_share']}",
                f"{window[quarterly]}",
                f"{window[quarterly + '_over_full']:.4f}",
                f"{window['wall_s']}",
            )
    console.print(table)
    late = results["late"]
    table = Table(
        title=f"plain build after late deliveries vs --full-refresh ({late['stations']} stations × {late['years']} "
        f"years × {len(LATE_PRODUCTS)} products, {late['raw_rows']:,} raw rows; model execution seconds)"
    )
    for column in ("late delivery", "rows loaded", "plain s", "full refresh s", "plain / full", "target"):
        table.add_column(column, justify="right")
    targets = ["≤ 1.2", "≤ 1.2", "≤ 0.05"]
    for (name, scenario), target in zip(late["scenarios"].items(), targets, strict=True):
        table.add_row(name, f"{scenario['rows_loaded']:,}", f"{scenario['plain_models_s']}",
                      f"{scenario['full_models_s']}", f"{scenario['plain_over_full']:.3f}", target)  # fmt: skip
    console.print(table)
    print_backfills(results["backfills"], results["peers"].get("SQLMesh", {}))
    overhead = results["overhead"]
    table = measure_table("dbt overhead and peers")
    table.add_row("no-op dbt run (median)", f"{overhead['noop_s']} s")
    table.add_row("empty selection (dbt's bare overhead)", f"{overhead['empty_selection_s']} s")
    table.add_row("no-op / bare (target ≤ 1.5)", f"{overhead['noop_over_empty']}")
    for name, peer in results["peers"].items():
        if "summary" in peer:
            table.add_row(name, peer["summary"])
    console.print(table)


def print_backfills(figures: dict, sqlmesh: dict) -> None:
    table = Table(title="backfill windows (weatherinsight backfill run; seconds per window, median after the first)")
    for column in ("backfill", "windows", "wall s", "window s", "parse s", "stage s", "dbt s", "dbt executing s",
                   "models s", "publish s", "overhead s (target ≤ 1)", "wall − models s"):  # fmt: skip
        table.add_column(column, justify="right")
    for name in ("four_windows", "many_windows"):
        entry = figures[name]
        for label, window in (("first", entry["first_window"]), ("median", entry["median_window"])):
            table.add_row(
                f"{name.replace('_', ' ')} ({label})",
                str(entry["windows"]),
                f"{entry['wall_s']}",
                *(f"{window[key]}" for key in ("wall_s", "parse_s", "stage_s", "dbt_s", "dbt_execution_s",
                                               "models_s", "publish_s", "overhead_s", "wall_minus_models_s")),
            )  # fmt: skip
    console.print(table)
    table = measure_table("a year and a quarter, wall seconds as a user runs them")
    year = figures["year"]
    table.add_row("year by quarter: weatherinsight backfill run", f"{year['backfill_by_quarter_s']} s")
    table.add_row("year: one windowed dbt build (same models)", f"{year['dbt_build_year_s']} s")
    table.add_row("year: weatherinsight dbt build --vars (in process)", f"{year['weatherinsight_dbt_build_year_s']} s")
    table.add_row("backfill by quarter / one dbt build (target ≤ 1)", f"{year['backfill_over_dbt_build']}")
    quarter = figures["quarter_restatement"]
    table.add_row("quarter of the hourly fact: weatherinsight dbt run --vars", f"{quarter['weatherinsight_dbt_s']} s")
    table.add_row("quarter of the hourly fact: dbt run --vars (re-parse)", f"{quarter['plain_dbt_s']} s")
    if "quarter_s" in sqlmesh:
        table.add_row(
            "SQLMesh: quarter restated / year in 4 batches",
            f"{sqlmesh['quarter_s']} s / {sqlmesh['year_s']} s (initial {sqlmesh['initial_backfill_s']} s)",
        )
        table.add_row(
            "ours / SQLMesh: quarter (target < 1)", f"{quarter['weatherinsight_dbt_s'] / sqlmesh['quarter_s']:.2f}"
        )
        table.add_row(
            "hourly fact only, the year as 4 quarter windows in one dbt session",
            f"{year['hourly_four_quarters_one_session_s']} s",
        )
        table.add_row(
            "ours / SQLMesh: year by quarter, hourly fact only (target < 1)",
            f"{year['hourly_four_quarters_one_session_s'] / sqlmesh['year_s']:.2f}",
        )
        table.add_row("ours / SQLMesh: year by quarter, backfill (3 models, tests, audit, publish)",
                      f"{year['backfill_by_quarter_s'] / sqlmesh['year_s']:.2f}")  # fmt: skip
    elif "summary" in sqlmesh:
        table.add_row("SQLMesh", sqlmesh["summary"])
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny scale: checks the harness, not the speed")
    parser.add_argument("--no-peers", action="store_true", help="skip SQLMesh and wetterdienst")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory_child:
        memory_child(*arguments.memory_child)
        return
    scale = SCALES["smoke" if arguments.smoke else "full"]
    server = db.resolve(start=True)
    started = time.perf_counter()
    results: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": asdict(scale),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "server": server.describe(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="wi-bench-") as folder:
        tmp = Path(folder)
        console.print("[bold]1/6 loader[/] (synthetic mirror on 127.0.0.1 -> raw tables; plain COPY beside it)")
        results["loader"] = bench_loader(server, tmp, scale)
        results["memory"] = bench_memory(server, tmp, scale)
        console.print("[bold]2/6 windowed rebuilds[/] (day, month, quarter, year vs --full-refresh)")
        results["windows"] = []
        first = None
        for stations, years in scale.tables:
            figures = bench_windows(server, tmp, stations, years, scale.windows)
            connection = figures.pop("connection")
            results["windows"].append(figures)
            if first is None:
                first = connection
            else:
                db.drop_database(connection)
        console.print(
            "[bold]3/6 late deliveries[/] (plain build vs --full-refresh after re-releases, a new station, a fix)"
        )
        results["late"] = bench_late_deliveries(server, tmp, scale)
        late = results["late"].pop("connection")
        console.print("[bold]4/6 backfills[/] (per-window overhead, a year by quarter, a quarter restated)")
        results["backfills"] = backfills.bench_backfills(
            late, tmp, scale.backfill_windows, 1 if arguments.smoke else 2, warm=not arguments.smoke
        )
        console.print("[bold]5/6 dbt overhead[/] (no-op run vs empty selection)")
        results["overhead"] = bench_overhead(first, tmp, scale.repeats, warm=not arguments.smoke)
        console.print("[bold]6/6 peers[/]")
        if arguments.no_peers or arguments.smoke:
            results["peers"] = {"skipped": {"summary": "skipped (--smoke or --no-peers)"}}
        else:
            results["peers"] = {
                "SQLMesh": peers.sqlmesh_restatements(late, tmp, {"quarter": backfills.QUARTER,
                                                                  "year": backfills.YEAR}),
                "wetterdienst": peers.wetterdienst_parse(tmp / "mirror", results["loader"]),
            }  # fmt: skip
        close_workers()
        db.drop_database(late)
        db.drop_database(first)
    results["total_s"] = round(time.perf_counter() - started, 1)
    print_report(results)
    arguments.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = arguments.out / f"bench-{'smoke' if arguments.smoke else 'full'}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"total {results['total_s']} s; results in {path}")


if __name__ == "__main__":
    main()
