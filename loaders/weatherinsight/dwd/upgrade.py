"""Raw tables of earlier versions brought to the current layout, in place, by the next load.

Earlier versions repeated six per-file columns (release, source file, size, two version stamps, load
time) on every raw row. Now each row carries only ``delivery_id``, the key of its row in
``raw_dwd.deliveries``, and staging joins the facts back. A warehouse loaded before keeps its rows:
the next ``weatherinsight load dwd`` keys its deliveries, adds a delivery for any (load, file) that
has none, and sets ``delivery_id`` on the old rows. The old columns stay (dlt's stored schema still
lists them) but nothing reads them; a comment on ``source_file`` marks a table as done, so later
loads check one catalogue row, not the table.
"""

from __future__ import annotations

import logging

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.archives import delivery_id
from weatherinsight.dwd.settings import DATASET_NAME, PRODUCTS

log = logging.getLogger(__name__)

DONE = "not read since per-file facts moved to deliveries (delivery_id)"


def tables_to_upgrade(connection: db.ConnectionSettings, schema: str = DATASET_NAME) -> list[str]:
    """The product tables that still have the per-row delivery columns and are not upgraded yet."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                """
                select columns.table_name
                from information_schema.columns as columns
                where columns.table_schema = %s and columns.column_name = 'source_file'
                    and col_description(
                        format('%%I.%%I', columns.table_schema, columns.table_name)::regclass,
                        columns.ordinal_position
                    ) is distinct from %s
                order by columns.table_name
                """,
                (schema, DONE),
            )
            return [name for (name,) in cursor.fetchall() if name in PRODUCTS]
    finally:
        conn.close()


def upgrade_raw_tables(connection: db.ConnectionSettings, tables: list[str], schema: str = DATASET_NAME) -> int:
    """Key the old rows of ``tables`` to their deliveries (``delivery_id`` must exist: the load that
    calls this has just added it). One transaction per table; returns the rows keyed."""
    keyed = 0
    for table in tables:
        conn = db.connect(connection)
        try:
            with conn, conn.cursor() as cursor:
                keyed += _upgrade_table(cursor, schema, table)
        finally:
            conn.close()
    return keyed


def _upgrade_table(cursor, schema: str, table: str) -> int:
    raw = sql.Identifier(schema, table)
    deliveries = sql.Identifier(schema, "deliveries")
    # a (load, file) of rows loaded before deliveries were recorded gets its delivery from the rows
    cursor.execute(
        sql.SQL(
            """
            insert into {deliveries} (
                product, station_id, release, source_file, file_size, file_last_modified, file_created_at,
                first_observed_at, last_observed_at, row_count, loaded_at, _dlt_load_id
            )
            select
                %(product)s, min(station_id), release, source_file, file_size, file_last_modified, file_created_at,
                min(observed_at), max(observed_at), count(*), loaded_at, _dlt_load_id
            from {raw} as raw
            where delivery_id is null and not exists (
                select from {deliveries} as known
                where known._dlt_load_id = raw._dlt_load_id and known.source_file = raw.source_file
            )
            group by _dlt_load_id, source_file, release, file_size, file_last_modified, file_created_at, loaded_at
            """
        ).format(deliveries=deliveries, raw=raw),
        {"product": table},
    )
    cursor.execute(
        sql.SQL("select distinct _dlt_load_id, source_file from {} where delivery_id is null").format(deliveries)
    )
    keys = [(delivery_id(load_id, path), load_id, path) for load_id, path in cursor.fetchall()]
    cursor.executemany(
        sql.SQL("update {} set delivery_id = %s where _dlt_load_id = %s and source_file = %s").format(deliveries),
        keys,
    )
    cursor.execute(
        sql.SQL(
            """
            update {raw} as raw set delivery_id = deliveries.delivery_id
            from {deliveries} as deliveries
            where raw.delivery_id is null
                and deliveries._dlt_load_id = raw._dlt_load_id and deliveries.source_file = raw.source_file
            """
        ).format(raw=raw, deliveries=deliveries)
    )
    rows = cursor.rowcount
    cursor.execute(sql.SQL("comment on column {}.source_file is {}").format(raw, sql.Literal(DONE)))
    log.info("keyed %s old rows of %s.%s to their deliveries", rows, schema, table)
    return rows


def tables_missing_columns(connection: db.ConnectionSettings, schema: str = DATASET_NAME) -> list[str]:
    """Raw tables that exist but lack a column of today's layout (a warehouse loaded by an earlier
    version: e.g. ``quarantine`` before ``source_row_number``). A load then runs even with nothing
    new to fetch, so dlt adds the columns and the staging views that read them build."""
    from weatherinsight.dwd.archives import empty_tables

    expected = {item.meta.table_name: set(item.data.schema.names) for item in empty_tables()}
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select table_name, array_agg(column_name::text) from information_schema.columns"
                " where table_schema = %s group by table_name",
                (schema,),
            )
            present = dict(cursor.fetchall())
    finally:
        conn.close()
    return sorted(name for name, columns in expected.items() if name in present and columns - set(present[name]))
