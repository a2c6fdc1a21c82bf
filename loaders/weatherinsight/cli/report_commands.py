"""``weatherinsight status``, ``validate`` and ``doctor``: read-only reports (ops/report.py)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click
from rich.table import Table

from weatherinsight import db
from weatherinsight.cli.common import ISO_DATE, report, user_errors
from weatherinsight.dwd.service import parse_stations
from weatherinsight.ops.backfill.request import (
    BackfillRequestError,
    parse_any_products,
    parse_location_ids,
    report_products,
)
from weatherinsight.ops.reports import doctor, status, validate


def _scope(
    products: str,
    start: date | None,
    end: date | None,
    connection: db.ConnectionSettings,
    stations: list[int] | None = None,
    locations: list[int] | None = None,
):
    names = report_products(products, stations, locations)
    if start is not None and end is not None and end <= start:
        raise BackfillRequestError(f"--end {end} is not after --start {start}")
    if start is None or end is None:
        found = status.data_range(connection, names)
        if found is None:
            raise click.ClickException("no data loaded yet for these products (run: weatherinsight backfill run …)")
        start = start or found[0]
        end = end or date.fromordinal(found[1].toordinal() + 1)
    return names, start, end


def _print_matrix(result: status.Coverage) -> None:
    """Years down, products across; one glyph per quarter."""
    keys = list(dict.fromkeys((cell.product, cell.station) for cell in result.cells))
    table = Table(title=f"coverage {result.start} – {result.end} (one glyph per quarter, Q1..Q4)")
    table.add_column("year")
    for product, station in keys:
        table.add_column(product + (f"\n{station}" if station is not None else ""))
    by_key: dict[tuple, dict[tuple[int, int], str]] = {}
    for cell in result.cells:
        quarter = (cell.quarter.start.year, (cell.quarter.start.month - 1) // 3)
        by_key.setdefault((cell.product, cell.station), {})[quarter] = cell.state
    for year in sorted({cell.quarter.start.year for cell in result.cells}):
        row = [str(year)]
        for key in keys:
            states = by_key[key]
            row.append("".join(status.GLYPHS[states.get((year, q), "none")] for q in range(4)))
        table.add_row(*row)
    report.print(table)
    report.print("  ".join(f"{glyph or ' '} {state}" for state, glyph in status.GLYPHS.items() if state != "none"))
    totals = Table(title="quarters per state")
    totals.add_column("product")
    for state in status.STATES[:-1]:
        totals.add_column(state, justify="right")
    for product in result.products:
        counts = result.counts(product)
        totals.add_row(product, *(str(counts[state]) for state in status.STATES[:-1]))
    report.print(totals)
    problems = result.problems()
    if problems:
        listing = Table(title=f"quarters needing work ({len(problems)})")
        for column in ("product", "quarter", "station / location", "state", "raw hours", "published", "coverage"):
            listing.add_column(column)
        for cell in problems[:40]:
            listing.add_row(
                cell.product,
                status.quarter_label(cell.quarter),
                str(cell.station or "all"),
                cell.state,
                f"{cell.raw_hours:,}",
                f"{cell.built_hours:,}",
                f"{cell.coverage:.1%}" if cell.coverage is not None else "-",
            )
        report.print(listing)


@click.command("status")
@click.option("--start", type=ISO_DATE, help="First day (default: first day with data).")
@click.option("--end", type=ISO_DATE, help="Day after the last (default: after the last day with data).")
@click.option("--products", default="", help="Comma-separated products (default: every DWD and Open-Meteo product).")
@click.option("--stations", default="", help="Only these stations (comma-separated ids; alone: only DWD products).")
@click.option(
    "--locations", default="", help="Only these Open-Meteo locations (comma-separated ids; alone: only their products)."
)
@click.option("--by-station", is_flag=True, help="One column per station (or location) instead of per product.")
@click.option(
    "--by-day",
    is_flag=True,
    help="Gaps per day of one --station or --location: hours per product, where each gap lies.",
)
@click.option("--station", type=click.IntRange(1, 99_999), help="The station of --by-day (its DWD products).")
@click.option("--location", type=click.IntRange(1), help="The Open-Meteo location of --by-day (its products).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page: the backfill runs as charts, and the coverage matrix.",
)
@user_errors()
def status_command(
    start: date | None,
    end: date | None,
    products: str,
    stations: str,
    locations: str,
    by_station: bool,
    by_day: bool,
    station: int | None,
    location: int | None,
    html_path: Path | None,
) -> None:
    """Coverage matrix product × quarter: complete, partial, missing, stale, failed — with row counts.

    Every published layer counts (hourly fact, daily fact, quarterly mart); a quarter the delivered
    files cover without a row is a gap at the source (empty). Every DWD and Open-Meteo product by
    default. With --by-day --station ID (or --location ID): per day and product the published and
    expected hours, and each missing hour as a gap at the source (no delivery or answer has it) or
    in the warehouse (raw has it, the published hourly fact does not).

    \b
    Example: weatherinsight status --start 2018-01-01 --end 2021-04-01 --html coverage.html
             weatherinsight status --by-day --station 1975 --start 2021-03-01 --end 2021-04-01
             weatherinsight status --by-day --location 2 --start 2022-03-01 --end 2022-04-01
    """
    connection = db.resolve(start=True)
    if by_day or station is not None or location is not None:
        if not by_day or (station is None) == (location is None):
            raise click.UsageError(
                "--by-day goes with one --station or one --location: gaps per day of one station or location"
            )
        _print_days(connection, station or location, location is not None, start, end, products, html_path)
        return
    chosen_stations = sorted(parse_stations(stations) or []) or None
    chosen_locations = parse_location_ids(locations)
    names, start, end = _scope(products, start, end, connection, chosen_stations, chosen_locations)
    result = status.coverage(
        connection, names, start, end, chosen_stations, by_station=by_station, locations=chosen_locations
    )
    _print_matrix(result)
    if html_path:
        from weatherinsight.ops.reports import monitor

        html_path.write_text(monitor.page(result, monitor.recent_runs(connection)), encoding="utf-8")
        report.print(f"wrote {html_path} (backfill runs as charts, and the coverage matrix)")


def _print_days(
    connection: db.ConnectionSettings,
    station: int,
    is_location: bool,
    start: date | None,
    end: date | None,
    products: str,
    html_path: Path | None,
) -> None:
    """Gaps per day of ``station`` (its DWD products), or of a location (its Open-Meteo products)."""
    from datetime import timedelta

    from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS
    from weatherinsight.ops.reports import gaps

    unit = "location" if is_location else "station"
    chosen = parse_any_products(products, default_open_meteo=is_location)
    names = [name for name in chosen if (name in OPENMETEO_PRODUCTS) == is_location]
    if not names:
        raise BackfillRequestError(f"--products names no product of a {unit}: {products}")
    if start is None or end is None:
        span = gaps.station_days(connection, station, names)
        if span is None:
            raise click.ClickException(f"no deliveries for {unit} {station} ({', '.join(names)})")
        end = end or span[1]
        start = start or max(span[0], end - timedelta(days=31))
    if end <= start:
        raise BackfillRequestError(f"--end {end} is not after --start {start}")
    if (end - start).days > 3660:
        raise BackfillRequestError("--by-day covers at most ten years at a time")
    days = gaps.daily_gaps(connection, station, start, end, names)
    shown = list(dict.fromkeys(item.product for item in days if item.expected))
    table = Table(title=f"{unit} {station}: published / expected hours per UTC day, {start} – {end}")
    table.add_column("day")
    for product in shown:
        table.add_column(product, justify="right")
    marks = {"complete": "", "source": " [dim]src[/]", "warehouse": " [red]wh[/]", "none": ""}
    by_day: dict[date, dict[str, gaps.DayGaps]] = {}
    for item in days:
        by_day.setdefault(item.day, {})[item.product] = item
    for day in sorted(by_day):
        cells = []
        for product in shown:
            item = by_day[day].get(product)
            cells.append(f"{item.observed}/{item.expected}{marks[item.state]}" if item and item.expected else "")
        table.add_row(str(day), *cells)
    report.print(table)
    listed = [item for item in days if item.source_gaps or item.warehouse_gaps]
    for item in listed[:200]:
        where = []
        if item.source_gaps:
            where.append(f"at the source {gaps.hour_ranges(item.source_gaps)}")
        if item.warehouse_gaps:
            where.append(f"in the warehouse {gaps.hour_ranges(item.warehouse_gaps)}")
        report.print(f"{item.day} {item.product}: missing {'; '.join(where)} (UTC hours)")
    source = sum(len(item.source_gaps) for item in days)
    warehouse = sum(len(item.warehouse_gaps) for item in days)
    report.print(
        f"{source:,} hours missing at the source, {warehouse:,} in the warehouse"
        + (" (a build publishes them: weatherinsight backfill run …)" if warehouse else "")
    )
    if html_path:
        html_path.write_text(gaps.gaps_html(station, start, end, days, unit), encoding="utf-8")
        report.print(f"wrote {html_path}")


@click.command("validate")
@click.option("--start", type=ISO_DATE, help="First day (default: first day with data).")
@click.option("--end", type=ISO_DATE, help="Day after the last (default: after the last day with data).")
@click.option("--products", default="", help="Comma-separated products (default: every DWD and Open-Meteo product).")
@click.option("--stations", default="", help="Only these stations (comma-separated ids; alone: only DWD products).")
@click.option(
    "--locations", default="", help="Only these Open-Meteo locations (comma-separated ids; alone: only their products)."
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also run every data test over whole tables (dbt test; builds and update test only the rows they changed).",
)
@user_errors()
def validate_command(
    start: date | None, end: date | None, products: str, stations: str, locations: str, deep: bool
) -> None:
    """Check the warehouse against what was delivered, without reprocessing anything.

    Every source by default: the DWD products per station and the Open-Meteo products per location.
    Row counts, completeness against each station's (location's) expected hours, duplicate keys,
    stations missing from dim_station (locations from dim_location), every published layer's
    quarters (missing / partial / stale / failed), the latest data-test results. Exit code 1 for a
    problem in the warehouse (something to rebuild or fix); gaps at the source (quarters the
    delivered files cover without a row) are listed and counted, but exit 0: no build can fill them.

    With --deep it also runs every data test over whole tables (the weekly check: a plain build and
    `update` test the rows they changed).

    \b
    Example: weatherinsight validate --start 2020-01-01 --end 2021-01-01 --products wind
             weatherinsight validate --locations 2 --start 2022-01-01 --end 2023-01-01
    """
    connection = db.resolve(start=True)
    chosen_stations = sorted(parse_stations(stations) or []) or None
    chosen_locations = parse_location_ids(locations)
    names, start, end = _scope(products, start, end, connection, chosen_stations, chosen_locations)
    result = validate.validate(connection, names, start, end, chosen_stations, chosen_locations)
    if deep:
        report.print("running every data test over whole tables (dbt test)…")
        result.deep_failures = validate.deep_tests(connection)
        report.print(f"whole-table data tests: {len(result.deep_failures)} failed")
    table = Table(title=f"validate {start} – {end}")
    for column in (
        "product",
        "published rows",
        "raw hours",
        "expected hours",
        "completeness",
        "duplicates",
        "unknown stations / locations",
        "failed tests",
        "quarters ok / needing work",
    ):
        table.add_column(column, justify="left" if column == "product" else "right")
    for check in result.checks:
        counts = result.coverage.counts(check.product)
        needing = sum(counts[state] for state in ("missing", "partial", "stale", "failed"))
        table.add_row(
            check.product,
            f"{check.published_rows:,}",
            f"{check.raw_hours:,}",
            f"{check.expected_hours:,}",
            f"{check.completeness:.1%}" if check.completeness is not None else "-",
            str(check.duplicate_keys),
            str(check.unknown_stations),
            str(len(check.failed_tests)),
            f"{counts['complete'] + counts['empty']} / {needing}",
        )
    report.print(table)
    for warning in result.warnings:
        report.print(f"warning: {warning}")
    for gap in result.source_gaps[:50]:
        report.print(f"gap at the source: {gap} (the delivered files hold no rows there)")
    for error in result.errors[:50]:
        report.print(f"problem: {error}")
    gaps = f"; {len(result.source_gaps)} quarter(s) with gaps at the source" if result.source_gaps else ""
    if result.errors:
        raise click.ClickException(f"{len(result.errors)} problem(s) in the warehouse (listed above){gaps}")
    report.print(f"valid: no problems in the warehouse{gaps}")


@click.command("doctor")
@user_errors()
def doctor_command() -> None:
    """Check the set-up: database, versions, disk space, pending dlt packages and whether this
    checkout's loader state is the warehouse's (DWD's and Open-Meteo's pipelines), unsettled DWD
    loads, Open-Meteo locations whose last load failed and the provider's budget used, stale runs
    and locks.

    Example: weatherinsight doctor
    """
    findings = doctor.doctor(lambda: db.resolve(start=True), os.environ.get("WEATHERINSIGHT_PIPELINES_DIR"))
    table = Table(title="weatherinsight doctor")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    marks = {"ok": "ok", "warn": "[yellow]warn[/]", "error": "[red]error[/]"}
    for finding in findings:
        table.add_row(finding.check, marks[finding.level], finding.detail)
    report.print(table)
    errors = [finding for finding in findings if finding.level == "error"]
    if errors:
        raise click.ClickException(f"{errors[0].check}: {errors[0].detail}")
