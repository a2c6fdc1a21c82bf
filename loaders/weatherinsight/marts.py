"""Read published marts for the terminal."""

from __future__ import annotations

from psycopg2 import sql

from weatherinsight import db

MART_SCHEMA = "marts"


class UnknownMart(ValueError):
    """The named mart does not exist (yet)."""


def list_marts(connection: db.Connection) -> list[str]:
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = %s order by 1", (MART_SCHEMA,)
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def read_mart(
    connection: db.Connection, name: str, station_id: int | None = None, limit: int = 12
) -> tuple[list[str], list[tuple]]:
    """Column names and the newest ``limit`` rows of mart ``name`` (optionally of one station)."""
    marts = list_marts(connection)
    if name not in marts:
        known = ", ".join(marts) or "none yet: run dbt build"
        raise UnknownMart(f"no mart {name!r} in schema {MART_SCHEMA} (available: {known})")
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "order by ordinal_position",
                (MART_SCHEMA, name),
            )
            columns = [row[0] for row in cursor.fetchall()]
            order = [column for column in ("year", "quarter", "observed_date", "observed_at") if column in columns]
            query = sql.SQL("select * from {}.{} {} order by {} limit %s").format(
                sql.Identifier(MART_SCHEMA),
                sql.Identifier(name),
                sql.SQL("where station_id = %s") if station_id is not None else sql.SQL(""),
                sql.SQL(", ").join(
                    [sql.SQL("{} desc").format(sql.Identifier(column)) for column in order]
                    + [sql.Identifier(columns[0])]
                ),
            )
            cursor.execute(query, ((station_id,) if station_id is not None else ()) + (limit,))
            return columns, cursor.fetchall()
    finally:
        conn.close()
