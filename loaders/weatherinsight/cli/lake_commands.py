"""``weatherinsight lake``: the spark target's side of the project (the lake, Spark's warehouse)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from weatherinsight import db, lake
from weatherinsight.cli.common import console, user_errors


@click.group("lake")
def lake_group() -> None:
    """The lake of parquet files and the spark dbt target that reads it.

    \b
    Example:
      weatherinsight load dwd --destination lake --base-url http://127.0.0.1:8765/
      weatherinsight dbt build --target spark
      weatherinsight lake compare
    """


def _warehouse(spark_dir: Path | None) -> Path:
    return (spark_dir or lake.spark_dir()) / "warehouse"


SPARK_DIR = click.option(
    "--spark-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Spark's folder (default: WEATHERINSIGHT_SPARK_DIR, else .spark/ in the checkout).",
)


@lake_group.command("show")
@click.argument("mart", default="quarterly_temperature_features")
@click.option("--station", "station_id", type=int, help="Only this DWD station id.")
@click.option("--limit", default=12, show_default=True, type=click.IntRange(1, 10_000), help="Rows to show.")
@click.option("--columns", default="", help="Comma-separated columns to show (default: all).")
@SPARK_DIR
@user_errors()
def show_command(mart: str, station_id: int | None, limit: int, columns: str, spark_dir: Path | None) -> None:
    """Print the newest rows of a mart the spark target built (read from its parquet files).

    Example: weatherinsight lake show quarterly_wind_features --station 2115 --limit 8
    """
    from weatherinsight.cli.show_command import print_rows
    from weatherinsight.engines import newest_rows, spark_tables

    warehouse = _warehouse(spark_dir)
    if mart not in spark_tables(warehouse):
        known = ", ".join(spark_tables(warehouse)) or "none yet: run weatherinsight dbt build --target spark"
        raise click.UsageError(f"no spark mart {mart!r} in {warehouse} (available: {known})")
    names, rows = newest_rows(warehouse, mart, limit, station_id)
    print_rows(f"marts.{mart} (spark)", names, rows, columns)


@lake_group.command("compare")
@SPARK_DIR
@click.option("--show", default=5, show_default=True, help="Differences to print per mart.")
@user_errors()
def compare_command(spark_dir: Path | None, show: int) -> None:
    """Check that each quarterly DWD mart of the spark target equals PostgreSQL's, row for row.

    Exit 1 when a mart differs (rows on one engine only, or a value), naming the first differences.

    Example: weatherinsight lake compare --spark-dir .spark
    """
    from weatherinsight.engines import compare_engines

    warehouse = _warehouse(spark_dir)
    connection = db.resolve(start=True)
    results = compare_engines(connection, warehouse)
    if not results:
        raise click.ClickException(
            f"no quarterly marts in {warehouse}: build them with weatherinsight dbt build --target spark"
        )
    table = Table(title="quarterly marts: spark target against PostgreSQL")
    for column in ("mart", "postgres rows", "spark rows", "columns compared", "equal"):
        table.add_column(column, justify="left" if column == "mart" else "right")
    for result in results:
        table.add_row(
            result.mart,
            f"{result.postgres_rows:,}",
            f"{result.spark_rows:,}",
            str(result.columns),
            "yes" if result.equal else "NO",
        )
    console.print(table)
    different = [result for result in results if not result.equal]
    for result in different:
        for key in result.only_postgres[:show]:
            console.print(f"{result.mart} {key}: only on PostgreSQL")
        for key in result.only_spark[:show]:
            console.print(f"{result.mart} {key}: only on spark")
        for line in result.differences[:show]:
            console.print(line)
    if different:
        raise click.ClickException(
            f"{len(different)} of {len(results)} marts differ between the engines: "
            + ", ".join(result.mart for result in different)
        )
    rows = sum(result.spark_rows for result in results)
    console.print(f"all {len(results)} quarterly marts equal on both engines ({rows:,} rows)")
