"""``weatherinsight explain``: the provenance of one quarterly mart row (:mod:`weatherinsight.ops.reports.explain`)."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from weatherinsight import db
from weatherinsight.cli.common import report, user_errors


@click.command("explain")
@click.argument("mart")
@click.option("--station", type=click.IntRange(1, 99_999), help="DWD station id (the DWD marts).")
@click.option("--location", type=click.IntRange(1), help="Open-Meteo location id of seeds/locations.csv (its marts).")
@click.option("--year", type=click.IntRange(1800, 2200), required=True, help="Calendar year (UTC).")
@click.option("--quarter", type=click.IntRange(1, 4), required=True, help="Quarter of the year, 1-4.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@user_errors()
def explain_command(
    mart: str, station: int | None, location: int | None, year: int, quarter: int, as_json: bool
) -> None:
    """Where a quarterly mart value came from: the deliveries behind the row, what each won and lost.

    MART is a quarterly mart (quarterly_temperature_features) or its product name (temperature).
    Per delivery and quality level: source file, release, DWD's version stamp, hours delivered, won
    (with a value, as observation_count counts them) and lost to a better delivery; then missing
    hours, quarantined rows and the run that published the row. For an Open-Meteo mart (--location):
    per request its window, when it was fetched, provisional or final, hours delivered, won (the
    latest fetch of an hour wins) and lost; quarantined answers. Exit 1 when the row does not exist
    (naming the nearest quarters), 2 for an unknown mart, station or location.

    \b
    Example: weatherinsight explain quarterly_temperature_features --station 44 --year 2021 --quarter 3
             weatherinsight explain quarterly_air_quality_features --location 2 --year 2022 --quarter 1
    """
    from weatherinsight.ops.reports.explain import ExplainError, explain

    connection = db.resolve(start=True)
    try:
        found = explain(connection, mart, station, year, quarter, location=location)
    except ExplainError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    who = f"station {station}" if "station_id" in found else f"location {location}"
    report.print(
        f"{found['mart']} {who} {year}-Q{quarter}: {found['observation_count']:,} of "
        f"{found['expected_hours']:,} hours with {found['measure']} ({found['missing_hours']:,} missing)"
    )
    if "requests" in found:
        _print_requests(found)
    else:
        _print_deliveries(found)
    published = found["published_by"]
    if published is None:
        report.print("published by: no record (built before change tracking existed)")
    elif published["kind"] == "backfill":
        report.print(
            f"published by: backfill run {published['run_id']}, window {published['window']},"
            f" at {published['published_at']}"
        )
    else:
        report.print(f"published by: dbt build {published['dbt_invocation_id']} at {published['published_at']}")


def _print_requests(found: dict) -> None:
    table = Table(title="requests behind the row (hours in the quarter; the latest fetch of an hour wins)")
    for column in ("request", "window", "fetched at", "", "delivered", "won", "lost"):
        table.add_column(column, justify="right" if column in ("delivered", "won", "lost") else "left")
    for item in found["requests"]:
        table.add_row(
            item["request_id"],
            item["window"],
            item["fetched_at"],
            "provisional" if item["provisional"] else "final",
            f"{item['delivered_hours']:,}",
            f"{item['winning_hours']:,}"
            + (f" (+{item['winning_hours_without_value']} empty)" if item["winning_hours_without_value"] else ""),
            f"{item['lost_hours']:,}",
        )
    report.print(table)
    quarantined = found["quarantined_answers"]
    reasons = ", ".join(f"{reason}: {count}" for reason, count in quarantined["reasons"].items())
    report.print(f"quarantined: {quarantined['answers']} answers" + (f" ({reasons})" if reasons else ""))


def _print_deliveries(found: dict) -> None:
    table = Table(
        title="versions behind the row (hours in the quarter, as stored by the delivery that first brought them)"
    )
    for column in ("source file", "release", "version stamp", "quality", "stored", "won", "lost"):
        table.add_column(column, justify="right" if column in ("stored", "won", "lost", "quality") else "left")
    for item in found["deliveries"]:
        table.add_row(
            item["source_file"],
            item["release"],
            item["version_stamp"] or "",
            str(item["quality_level"]),
            f"{item['raw_hours']:,}",
            f"{item['winning_hours']:,}"
            + (f" (+{item['winning_hours_without_value']} empty)" if item["winning_hours_without_value"] else ""),
            f"{item['lost_hours']:,}",
        )
    report.print(table)
    if found["confirmed_by"]:
        confirmed = Table(title="later deliveries that confirmed hours unchanged (stored nothing for them)")
        for column in ("source file", "release", "version stamp", "confirmed"):
            confirmed.add_column(column, justify="right" if column == "confirmed" else "left")
        for item in found["confirmed_by"]:
            confirmed.add_row(
                item["source_file"], item["release"], item["version_stamp"] or "", f"{item['confirmed_hours']:,}"
            )
        report.print(confirmed)
    quarantined = found["quarantined_rows"]
    reasons = ", ".join(f"{reason}: {count}" for reason, count in quarantined["reasons"].items())
    report.print(
        f"quarantined: {quarantined['rows']} rows, {quarantined['whole_files']} whole files"
        + (f" ({reasons})" if reasons else "")
    )
