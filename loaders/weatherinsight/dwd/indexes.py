"""Indexes on the raw tables, so that dbt's windowed and incremental builds read only what they need.

dlt creates the raw tables without indexes. A windowed build selects raw rows by observation time
and a plain incremental build by load id (the staging views expose ``cast(_dlt_load_id as numeric)``,
which the expression index below serves); both then join the hours they found on
(station_id, observed_at). Creating an index that exists is a no-op, so this runs after every load.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.settings import DATASET_NAME, PRODUCTS


def index_statements(table: str, schema: str = DATASET_NAME) -> list[sql.Composed]:
    """The indexes one raw product table needs."""
    relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    return [
        sql.SQL("create index if not exists {} on {} (observed_at, station_id)").format(
            sql.Identifier(f"{table}__observed_at_station_id"), relation
        ),
        sql.SQL("create index if not exists {} on {} ((cast(_dlt_load_id as numeric)))").format(
            sql.Identifier(f"{table}__load_id"), relation
        ),
    ]


def ensure_raw_indexes(
    connection: db.Connection, analyze: Iterable[str] | None = None, schema: str = DATASET_NAME
) -> None:
    """Create the raw product tables' indexes where missing (tables not created yet are skipped) and
    refresh the statistics of the ``analyze`` tables (default: all), those a load just added rows to."""
    conn = db.connect(connection)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("select table_name from information_schema.tables where table_schema = %s", (schema,))
            existing = {row[0] for row in cursor.fetchall()} & set(PRODUCTS)
            for table in sorted(existing):
                for statement in index_statements(table, schema):
                    cursor.execute(statement)
            for table in sorted(existing if analyze is None else existing & set(analyze)):
                cursor.execute(sql.SQL("analyze {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    finally:
        conn.close()
