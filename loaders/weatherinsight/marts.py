"""Read published marts for the terminal."""

from __future__ import annotations

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.errors import RequestError

MART_SCHEMA = "marts"
#: Newest first: the first of these a mart has orders its rows.
TIME_COLUMNS = ("year", "quarter", "observed_date", "observed_at")


class UnknownMart(RequestError):
    """The named mart does not exist (yet): a usage error."""


def read_mart(
    connection: db.ConnectionSettings,
    name: str,
    station_id: int | None = None,
    limit: int = 12,
    location_id: int | None = None,
) -> tuple[list[str], list[tuple]]:
    """Column names and the newest ``limit`` rows of mart ``name`` (optionally of one DWD station or
    one Open-Meteo location)."""
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select table_name, column_name from information_schema.columns where table_schema = %s "
                "order by table_name, ordinal_position",
                (MART_SCHEMA,),
            )
            catalogue = cursor.fetchall()
            columns = [column for table, column in catalogue if table == name]
            if not columns:
                known = ", ".join(sorted({table for table, _ in catalogue})) or "none yet: run dbt build"
                raise UnknownMart(f"no mart {name!r} in schema {MART_SCHEMA} (available: {known})")
            order = [column for column in TIME_COLUMNS if column in columns]
            key, value = ("location_id", location_id) if location_id is not None else ("station_id", station_id)
            if value is not None and key not in columns:
                raise UnknownMart(f"mart {name!r} has no {key} column")
            query = sql.SQL("select * from {}.{} {} order by {} limit %s").format(
                sql.Identifier(MART_SCHEMA),
                sql.Identifier(name),
                sql.SQL("where {} = %s").format(sql.Identifier(key)) if value is not None else sql.SQL(""),
                sql.SQL(", ").join(
                    [sql.SQL("{} desc").format(sql.Identifier(column)) for column in order]
                    + [sql.Identifier(columns[0])]
                ),
            )
            cursor.execute(query, ((value,) if value is not None else ()) + (limit,))
            return columns, cursor.fetchall()
    finally:
        conn.close()
