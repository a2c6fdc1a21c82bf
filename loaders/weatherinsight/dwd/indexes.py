"""Indexes on the raw tables, so that dbt's windowed and incremental builds read only what they need.

dlt creates the raw tables without indexes. A windowed build selects raw rows by observation time
(``observed_at`` first); a plain incremental build selects the hours of each station that new
deliveries touched (``station_id`` first, then a range of ``observed_at``); dbt finds those
deliveries by load id in ``deliveries``, and staging joins each raw row to its delivery by key.
Creating an index that exists is a no-op, so this runs after every load.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.settings import DATASET_NAME, PRODUCTS

DELIVERIES = "deliveries"


def index_statements(table: str, schema: str = DATASET_NAME) -> list[sql.Composed]:
    """The indexes one raw table needs (a product table, or ``deliveries``)."""
    relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))

    def create(suffix: str, columns: str) -> sql.Composed:
        name = sql.Identifier(f"{table}__{suffix}")
        return sql.SQL("create index if not exists {} on {} (" + columns + ")").format(name, relation)

    if table == DELIVERIES:
        # staging joins every raw row to its delivery by key; plain builds find deliveries by load
        return [create("load_id", "_dlt_load_id"), create("delivery_id", "delivery_id")]
    return [
        create("observed_at_station_id", "observed_at, station_id"),
        create("station_id_observed_at", "station_id, observed_at"),
        # the load-id index of earlier versions is not read any more: drop it so loads do not pay for it
        sql.SQL("drop index if exists {}").format(sql.Identifier(schema, f"{table}__load_id")),
    ]


def ensure_raw_indexes(
    connection: db.ConnectionSettings, analyze: Iterable[str] | None = None, schema: str = DATASET_NAME
) -> None:
    """Create the raw tables' indexes where missing (tables not created yet are skipped) and refresh
    the statistics of the ``analyze`` tables (default: all), those a load just added rows to."""
    conn = db.connect(connection)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("select table_name from information_schema.tables where table_schema = %s", (schema,))
            existing = {row[0] for row in cursor.fetchall()} & {*PRODUCTS, DELIVERIES}
            for table in sorted(existing):
                for statement in index_statements(table, schema):
                    cursor.execute(statement)
            for table in sorted(existing if analyze is None else existing & {*analyze, DELIVERIES}):
                cursor.execute(sql.SQL("analyze {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    finally:
        conn.close()
