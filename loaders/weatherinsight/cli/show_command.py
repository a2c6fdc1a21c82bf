"""``weatherinsight show``: a published mart as a table in the terminal."""

from __future__ import annotations

from decimal import Decimal

import click
from rich.console import Console
from rich.table import Table

from weatherinsight import db
from weatherinsight.cli.common import user_errors
from weatherinsight.marts import read_mart


def _cell(value: object) -> str:
    if isinstance(value, float | Decimal):
        return f"{value:.2f}"
    return "" if value is None else str(value)


@click.command("show")
@click.argument("mart", default="quarterly_temperature_features")
@click.option("--station", "station_id", type=int, help="Only this DWD station id.")
@click.option("--location", "location_id", type=int, help="Only this Open-Meteo location id (seeds/locations.csv).")
@click.option("--limit", default=12, show_default=True, type=click.IntRange(1, 10_000), help="Rows to show.")
@click.option("--columns", default="", help="Comma-separated columns to show (default: all).")
@user_errors()
def show_command(mart: str, station_id: int | None, location_id: int | None, limit: int, columns: str) -> None:
    """Print the newest rows of a mart in the `marts` schema.

    Example: weatherinsight show quarterly_wind_features --station 2115 --limit 8
    """
    names, rows = read_mart(db.resolve(start=True), mart, station_id, limit, location_id)
    print_rows(f"marts.{mart}", names, rows, columns)


def print_rows(title: str, names: list[str], rows: list[tuple], columns: str = "") -> None:
    """A table of ``rows`` (``names`` their columns), of the comma-separated ``columns`` only if given."""
    chosen = [name.strip() for name in columns.split(",") if name.strip()] or names
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise click.UsageError(f"unknown columns {', '.join(unknown)} (available: {', '.join(names)})")
    table = Table(title=title)
    for name in chosen:
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for row in rows:
        values = dict(zip(names, row, strict=True))
        table.add_row(*(_cell(values[name]) for name in chosen))
    needed = sum(len(name) + 3 for name in chosen) + 1
    Console(width=max(needed, Console().width)).print(table)
