"""The same marts on two engines: each quarterly DWD mart of the spark target (parquet files of its
warehouse folder) against the PostgreSQL warehouse's, row for row.

Rows are matched by their key (station, year, quarter); every column but the lineage ones (load
ids differ by nature: the lake and the warehouse were loaded by different dlt loads) must be
equal. Decimals are compared exactly at the scale Spark gives them (PostgreSQL's numeric keeps
more digits; the value rounded half up to Spark's scale must be Spark's value). Standard deviations
are doubles on Spark (its stddev over decimals is computed in floating point): they must agree to
1e-9 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from psycopg2 import sql

from weatherinsight import db
from weatherinsight.marts import TIME_COLUMNS

#: columns that say which load a row came from, not what it holds
LINEAGE = {"latest_load_id", "lake_quarter"}
KEY = ("station_id", "year", "quarter")
RELATIVE_TOLERANCE = 1e-9


@dataclass
class MartComparison:
    """One mart on both engines."""

    mart: str
    postgres_rows: int = 0
    spark_rows: int = 0
    columns: int = 0
    only_postgres: list[tuple] = field(default_factory=list)
    only_spark: list[tuple] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.only_postgres or self.only_spark or self.differences)


def spark_tables(warehouse: Path, schema: str = "marts") -> list[str]:
    """The tables the spark target built in ``schema`` (folders of its warehouse)."""
    folder = warehouse / f"{schema}.db"
    return sorted(path.name for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []


def spark_marts(warehouse: Path, schema: str = "marts") -> list[str]:
    """The quarterly DWD marts the spark target built."""
    return [
        name for name in spark_tables(warehouse, schema) if name.startswith("quarterly_") and name.endswith("_features")
    ]


def read_spark_mart(warehouse: Path, mart: str, schema: str = "marts") -> pa.Table:
    """A mart of the spark target from its parquet files (partition folders included)."""
    dataset = ds.dataset(warehouse / f"{schema}.db" / mart, format="parquet", partitioning="hive")
    return dataset.to_table()


def newest_rows(
    warehouse: Path, mart: str, limit: int = 12, station_id: int | None = None
) -> tuple[list[str], list[tuple]]:
    """Column names (without the partition column) and the newest ``limit`` rows of a spark mart,
    ordered as ``weatherinsight show`` orders PostgreSQL's."""
    table = read_spark_mart(warehouse, mart).drop_columns(["lake_quarter"])
    if station_id is not None:
        table = table.filter(pc.field("station_id") == station_id)
    names = table.column_names
    order = [(column, "descending") for column in TIME_COLUMNS if column in names] + [(names[0], "ascending")]
    rows = table.sort_by(order).slice(0, limit).to_pylist()
    return names, [tuple(row[name] for name in names) for row in rows]


def compare_mart(connection: db.ConnectionSettings, warehouse: Path, mart: str) -> MartComparison:
    """Compare one mart; the PostgreSQL side is ``marts.<mart>``."""
    result = MartComparison(mart)
    spark = read_spark_mart(warehouse, mart)
    columns = [name for name in spark.column_names if name not in LINEAGE]
    result.columns = len(columns)
    types = {name: spark.schema.field(name).type for name in columns}
    spark_rows = {tuple(row[k] for k in KEY): row for row in spark.select(columns).to_pylist()}
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("select {} from marts.{}").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(mart)
                )
            )
            postgres_rows = {}
            for values in cursor.fetchall():
                row = dict(zip(columns, values, strict=True))
                postgres_rows[tuple(row[k] for k in KEY)] = row
    finally:
        conn.close()
    result.postgres_rows, result.spark_rows = len(postgres_rows), len(spark_rows)
    result.only_postgres = sorted(set(postgres_rows) - set(spark_rows))
    result.only_spark = sorted(set(spark_rows) - set(postgres_rows))
    for key in sorted(set(postgres_rows) & set(spark_rows)):
        for name in columns:
            left, right = postgres_rows[key][name], spark_rows[key][name]
            if not values_equal(left, right, types[name]):
                result.differences.append(f"{mart} {key} {name}: postgres {left!r}, spark {right!r}")
    return result


def values_equal(postgres: object, spark: object, spark_type: pa.DataType) -> bool:
    """One value of PostgreSQL against Spark's, by the rules in this module's docstring."""
    if postgres is None or spark is None:
        return postgres is None and spark is None
    if pa.types.is_decimal(spark_type):
        exponent = Decimal(1).scaleb(-spark_type.scale)
        return Decimal(postgres).quantize(exponent, rounding=ROUND_HALF_UP) == spark
    if pa.types.is_floating(spark_type):
        return math.isclose(float(postgres), float(spark), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    if isinstance(postgres, datetime) and isinstance(spark, datetime):
        as_utc = [value if value.tzinfo else value.replace(tzinfo=timezone.utc) for value in (postgres, spark)]
        return as_utc[0] == as_utc[1]
    return postgres == spark


def compare_engines(connection: db.ConnectionSettings, warehouse: Path) -> list[MartComparison]:
    """Every quarterly DWD mart of the spark target against PostgreSQL's."""
    return [compare_mart(connection, warehouse, mart) for mart in spark_marts(warehouse)]
