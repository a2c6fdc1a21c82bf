"""Everything the API reads, and the only module of the API that holds SQL: each answer is read in
one snapshot (``REPEATABLE READ``), so a page and its total agree and a backfill publishing a window
meanwhile is seen whole or not at all. Queries are composed with ``psycopg.sql`` from validated
parameters; a product names a table only after it was found among the published quarterly marts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA

FEATURE_TABLE = re.compile(r"^quarterly_([a-z0-9_]+)_features$")
LEDGER_SCHEMA = "ops"


def jsonable(value: Any) -> Any:
    """Mart values as JSON: numbers as numbers, times as ISO 8601 UTC, dates as ISO dates."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def page(items: Sequence[dict], total: int, limit: int, offset: int, **extra: Any) -> dict:
    """One page of rows as the API answers it."""
    return {**extra, "total": total, "limit": limit, "offset": offset, "items": [jsonable(row) for row in items]}


def product_key(columns: dict[str, str]) -> str:
    """The column a quarterly mart is kept per: ``location_id`` (Open-Meteo) or ``station_id`` (DWD)."""
    return "location_id" if "location_id" in columns else "station_id"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """The API's reads, each in one read-only snapshot from the pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def snapshot(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """A cursor in one read-only snapshot; ``timeout`` seconds at most to get a connection
        (default: the pool's)."""
        async with self.pool.connection(timeout=timeout) as conn:
            await conn.set_isolation_level(3)  # REPEATABLE READ: one snapshot for all queries
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
                yield cursor

    async def feature_tables(self, cursor) -> dict[str, dict[str, str]]:
        """Published quarterly marts by product, each with its columns and types."""
        await cursor.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name like 'quarterly\\_%%\\_features' order by ordinal_position",
            (MARTS_SCHEMA,),
        )
        tables: dict[str, dict[str, str]] = {}
        for row in await cursor.fetchall():
            match = FEATURE_TABLE.match(row["table_name"])
            if match:
                tables.setdefault(match.group(1), {})[row["column_name"]] = row["data_type"]
        return tables

    async def exists(self, cursor, schema: str, table: str) -> bool:
        await cursor.execute("select to_regclass(%s) is not null as found", (f"{_quoted(schema)}.{_quoted(table)}",))
        return bool((await cursor.fetchone())["found"])

    async def rows(
        self,
        cursor,
        table: sql.Composable,
        where: Sequence[tuple[str, Any]],
        order: Sequence[str],
        limit: int,
        offset: int,
        descending: bool = False,
    ) -> tuple[list[dict], int]:
        """A page of ``table`` filtered by ``column = value`` pairs, and the total of the filter."""
        condition = sql.SQL(" and ").join(
            [sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column, _ in where]
            or [sql.SQL("true")]
        )
        params = [value for _, value in where]
        await cursor.execute(sql.SQL("select count(*) as total from {} where {}").format(table, condition), params)
        total = (await cursor.fetchone())["total"]
        await cursor.execute(
            sql.SQL("select * from {} where {} order by {} limit %s offset %s").format(
                table,
                condition,
                sql.SQL(", ").join(
                    sql.SQL("{} desc" if descending else "{}").format(sql.Identifier(column)) for column in order
                ),
            ),
            [*params, limit, offset],
        )
        return await cursor.fetchall(), total

    async def features(
        self, cursor, product: str, where: Sequence[tuple[str, Any]], key: str, limit: int, offset: int
    ) -> tuple[list[dict], int]:
        """A page of one published quarterly mart (``product`` found by ``feature_tables`` first)."""
        table = sql.Identifier(MARTS_SCHEMA, f"quarterly_{product}_features")
        return await self.rows(cursor, table, where, ["year", "quarter", key], limit, offset)

    async def listing(
        self,
        schema: str,
        table: str,
        key: str,
        where: list[tuple[str, Any]],
        limit: int,
        offset: int,
        descending: bool = False,
    ) -> dict:
        """A page of ``schema.table`` in ``key`` order; an empty page while the table does not exist."""
        async with self.snapshot() as cursor:
            if not await self.exists(cursor, schema, table):
                return page([], 0, limit, offset)
            rows, total = await self.rows(
                cursor, sql.Identifier(schema, table), where, [key], limit, offset, descending=descending
            )
        return page(rows, total, limit, offset)

    async def stations(self, limit: int, offset: int) -> dict:
        """A page of the stations as they are now."""
        return await self.listing(MARTS_SCHEMA, "dim_station", "station_id", [("is_current", True)], limit, offset)

    async def locations(self, limit: int, offset: int) -> dict:
        """A page of the Open-Meteo locations."""
        return await self.listing(MARTS_SCHEMA, "dim_location", "location_id", [], limit, offset)

    async def runs(self, status: str | None, limit: int, offset: int) -> dict:
        """A page of the ledger's runs, newest first."""
        where = [("status", status)] if status else []
        return await self.listing(LEDGER_SCHEMA, "backfill_runs", "run_id", where, limit, offset, descending=True)

    async def has_ledger(self, cursor) -> bool:
        return await self.exists(cursor, LEDGER_SCHEMA, "backfill_runs")

    async def has_dataset_versions(self, cursor) -> bool:
        return await self.exists(cursor, LEDGER_SCHEMA, "dataset_versions")

    async def dataset_versions(
        self, cursor, where: Sequence[tuple[str, Any]], limit: int, offset: int
    ) -> tuple[list[dict], int]:
        """A page of the published dataset versions, by product, quarter and version."""
        table = sql.Identifier(LEDGER_SCHEMA, "dataset_versions")
        return await self.rows(cursor, table, where, ["product", "year", "quarter", "version"], limit, offset)

    async def run_with_windows(self, cursor, run_id: int) -> dict | None:
        """One backfill run of the ledger with its windows, or none."""
        await cursor.execute("select * from ops.backfill_runs where run_id = %s", (run_id,))
        found = await cursor.fetchone()
        if found is None:
            return None
        await cursor.execute("select * from ops.backfill_windows where run_id = %s order by window_id", (run_id,))
        return {**found, "windows": await cursor.fetchall()}

    async def latest_successful_run(self, cursor) -> dict | None:
        """The ledger's newest succeeded ``run`` or ``update``: its id and when it finished."""
        if not await self.exists(cursor, LEDGER_SCHEMA, "backfill_runs"):
            return None
        await cursor.execute(
            "select run_id, finished_at from ops.backfill_runs where status = 'succeeded'"
            " and command in ('run', 'update') order by finished_at desc limit 1"
        )
        return await cursor.fetchone()

    async def freshness(self, cursor) -> dict[str, dict]:
        """Per published product: its newest quarter, its newest load and its rows."""
        fresh = {}
        for name in sorted(await self.feature_tables(cursor)):
            await cursor.execute(
                sql.SQL(
                    "select max(quarter_start_at) as newest_quarter_start,"
                    " to_timestamp(max(latest_load_id)) as newest_load_at, count(*) as rows from {}"
                ).format(sql.Identifier(MARTS_SCHEMA, f"quarterly_{name}_features"))
            )
            fresh[name] = await cursor.fetchone()
        return fresh
