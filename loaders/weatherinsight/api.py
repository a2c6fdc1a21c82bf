"""``weatherinsight serve``: a read-only HTTP API over the published marts and the backfill ledger.

FastAPI on uvicorn, reading through a psycopg 3 connection pool whose sessions run as the role
``weatherinsight_api`` (``SELECT`` on the marts, the reference data and the ledger, nothing else) in
read-only transactions with a statement timeout. Every query is composed with ``psycopg.sql`` from
validated parameters; a product names a table only after it was found among the published
quarterly marts. Each response is read in one snapshot (``REPEATABLE READ``), so a page and its
total agree and a backfill publishing a window meanwhile is seen whole or not at all.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

import psycopg
import psycopg2
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg2 import sql as pg2sql
from psycopg_pool import AsyncConnectionPool

from weatherinsight import __version__, db
from weatherinsight.dwd.settings import DATASET_NAME as DWD_DATASET
from weatherinsight.openmeteo.settings import DATASET_NAME as OPENMETEO_DATASET
from weatherinsight.ops.catalogue import MARTS_SCHEMA

log = logging.getLogger(__name__)

READER_ROLE = "weatherinsight_api"
#: schemas the API reads: the published marts, the seeds, the ledger and its read models, and what
#: the coverage matrix compares them with (raw deliveries, staging views)
READ_SCHEMAS = (MARTS_SCHEMA, "reference", "ops", "staging", DWD_DATASET, OPENMETEO_DATASET)
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATEMENT_TIMEOUT_MS = 30_000
#: seconds /health waits for a connection before it answers 503
HEALTH_CONNECT_SECONDS = 5.0
FEATURE_TABLE = re.compile(r"^quarterly_([a-z0-9_]+)_features$")
#: what a product of the API is called when it differs from the ledger's product name
LEDGER_PRODUCTS = {"temperature": "air_temperature", "humidity": "moisture"}


class ApiError(Exception):
    """An error answered as JSON: ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def reader(
    connection: db.ConnectionSettings, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> db.ConnectionSettings:
    """``connection`` with every session switched to the read-only role, read-only transactions and
    a statement timeout (libpq startup options: no statement of ours can forget them)."""
    return connection.with_options(
        f"-c role={READER_ROLE} -c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
        " -c timezone=UTC"
    )


def ensure_reader_role(connection: db.ConnectionSettings) -> None:
    """Create the read-only role when missing and grant it ``SELECT`` on what the API reads, now and
    on tables created later by the same user (dbt's full refreshes create new tables)."""
    role = pg2sql.Identifier(READER_ROLE)
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            # two servers starting at once must not race on create role
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.reader-role'))")
            cursor.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,))
            if cursor.fetchone() is None:
                cursor.execute(pg2sql.SQL("create role {} nologin").format(role))
            cursor.execute("select rolsuper from pg_roles where rolname = current_user")
            if not cursor.fetchone()[0]:
                cursor.execute(pg2sql.SQL("grant {} to current_user").format(role))
            for name in READ_SCHEMAS:
                schema = pg2sql.Identifier(name)
                cursor.execute(pg2sql.SQL("create schema if not exists {}").format(schema))
                for statement in (
                    "grant usage on schema {schema} to {role}",
                    "grant select on all tables in schema {schema} to {role}",
                    "alter default privileges in schema {schema} grant select on tables to {role}",
                ):
                    cursor.execute(pg2sql.SQL(statement).format(schema=schema, role=role))
    except psycopg2.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise db.DatabaseError(
            f"cannot set up the read-only role {READER_ROLE} (the user needs CREATEROLE, or create the role"
            f" and grant it to the user): {first}"
        ) from error
    finally:
        conn.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- JSON -----------------------------------------------------------------------------------------


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
    return {**extra, "total": total, "limit": limit, "offset": offset, "items": [jsonable(row) for row in items]}


# ---- queries --------------------------------------------------------------------------------------


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


def _error(status_code: int, message: str, /, **extra: Any) -> JSONResponse:
    """A JSON error answer; ``extra`` fields may be named anything (``/health`` has its own ``status``)."""
    return JSONResponse(status_code=status_code, content={"error": message, **extra})


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page (1 to {MAX_LIMIT}).")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Year = Annotated[int | None, Query(ge=1800, le=2200, description="Calendar year (UTC).")]
Quarter = Annotated[int | None, Query(ge=1, le=4, description="Quarter of the year, 1 to 4.")]
Id = Annotated[int | None, Query(ge=0, le=2_147_483_647)]


def create_app(
    connection: db.ConnectionSettings, pool_size: int = 8, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> FastAPI:
    """The ASGI app reading the warehouse at ``connection`` through the read-only role; a statement
    running past ``statement_timeout_ms`` is cancelled and answered 503."""
    settings = reader(connection, statement_timeout_ms)
    conninfo = make_conninfo(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password or None,
        dbname=settings.database,
        options=settings.options,
        connect_timeout=10,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connections are checked when taken: a restarted server costs no failed request
        pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=20,
            check=AsyncConnectionPool.check_connection,
        )
        await pool.open(wait=False)
        app.state.warehouse = Warehouse(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="WeatherInsight API",
        version=__version__,
        description=(
            "Read-only access to the published quarterly features per DWD station and Open-Meteo location,"
            " the stations, coverage, the backfill ledger and dataset versions. Times are UTC (ISO 8601)."
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.message, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"parameter": str(item["loc"][-1]), "message": item["msg"], "input": jsonable(item.get("input"))}
            for item in error.errors()
        ]
        first = problems[0] if problems else {"parameter": "?", "message": "invalid request"}
        return _error(
            422, f"invalid {first['parameter']}: {first['message']}", parameter=first["parameter"], problems=problems
        )

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_slow(request: Request, error: psycopg.errors.QueryCanceled) -> JSONResponse:
        log.warning("%s %s ran past the statement timeout", request.method, request.url.path)
        return _error(
            503, f"the query ran past the API's statement timeout ({statement_timeout_ms / 1000:g} s): try again later"
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return _error(500, f"{type(error).__name__}: {first}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    def warehouse(request: Request) -> Warehouse:
        return request.app.state.warehouse

    @app.get("/api/v1/features", summary="The products with published quarterly features")
    async def products(request: Request) -> dict:
        async with warehouse(request).snapshot() as cursor:
            tables = await warehouse(request).feature_tables(cursor)
        return {
            "items": [
                {"product": name, "key": _key(columns), "columns": list(columns)}
                for name, columns in sorted(tables.items())
            ]
        }

    @app.get("/api/v1/features/{product}", summary="Quarterly features of one product, per station or location")
    async def features(
        request: Request,
        product: str,
        year: Year = None,
        quarter: Quarter = None,
        station_id: Id = None,
        location_id: Id = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict:
        store = warehouse(request)
        async with store.snapshot() as cursor:
            tables = await store.feature_tables(cursor)
            if product not in tables:
                raise ApiError(404, f"unknown product {product!r}", products=sorted(tables))
            key = _key(tables[product])
            other = "location_id" if key == "station_id" else "station_id"
            if (station_id if other == "station_id" else location_id) is not None:
                raise ApiError(400, f"{product} is kept per {key}, not per {other}", parameter=other)
            chosen = station_id if key == "station_id" else location_id
            where = [
                (column, value)
                for column, value in (("year", year), ("quarter", quarter), (key, chosen))
                if value is not None
            ]
            rows, total = await store.rows(
                cursor,
                sql.Identifier(MARTS_SCHEMA, f"quarterly_{product}_features"),
                where,
                ["year", "quarter", key],
                limit,
                offset,
            )
        return page(rows, total, limit, offset, product=product, key=key)

    @app.get("/api/v1/stations", summary="DWD stations as they are now (dim_station)")
    async def stations(request: Request, limit: Limit = MAX_LIMIT, offset: Offset = 0) -> dict:
        where = [("is_current", True)]
        return await _listing(warehouse(request), MARTS_SCHEMA, "dim_station", "station_id", where, limit, offset)

    @app.get("/api/v1/locations", summary="Open-Meteo locations (dim_location)")
    async def locations(request: Request, limit: Limit = MAX_LIMIT, offset: Offset = 0) -> dict:
        return await _listing(warehouse(request), MARTS_SCHEMA, "dim_location", "location_id", [], limit, offset)

    @app.get("/api/v1/runs", summary="Backfill runs, newest first (the ledger)")
    async def runs(
        request: Request,
        status: Annotated[str | None, Query(pattern="^(planned|running|succeeded|failed|rolled back)$")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict:
        where = [("status", status)] if status else []
        return await _listing(
            warehouse(request), "ops", "backfill_runs", "run_id", where, limit, offset, descending=True
        )

    @app.get("/api/v1/runs/{run_id}", summary="One backfill run with its windows")
    async def run(request: Request, run_id: int) -> dict:
        store = warehouse(request)
        async with store.snapshot() as cursor:
            if not await store.exists(cursor, "ops", "backfill_runs"):
                raise ApiError(404, f"no run {run_id}: no backfill has run yet")
            await cursor.execute("select * from ops.backfill_runs where run_id = %s", (run_id,))
            found = await cursor.fetchone()
            if found is None:
                raise ApiError(404, f"no run {run_id}")
            await cursor.execute("select * from ops.backfill_windows where run_id = %s order by window_id", (run_id,))
            windows = await cursor.fetchall()
        return jsonable({**found, "windows": windows})

    @app.get("/api/v1/dataset-versions", summary="Dataset versions: one per product and quarter published")
    async def dataset_versions(
        request: Request,
        product: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
        year: Year = None,
        quarter: Quarter = None,
        latest: Annotated[bool, Query(description="Only the version each quarter holds now.")] = False,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict:
        store = warehouse(request)
        async with store.snapshot() as cursor:
            if not await store.exists(cursor, "ops", "dataset_versions"):
                raise ApiError(503, "ops.dataset_versions is not built yet (run: weatherinsight dbt build)")
            ledger_product = LEDGER_PRODUCTS.get(product, product) if product else None
            where = [
                (column, value)
                for column, value in (("product", ledger_product), ("year", year), ("quarter", quarter))
                if value is not None
            ]
            if latest:
                where.append(("is_latest", True))
            rows, total = await store.rows(
                cursor,
                sql.Identifier("ops", "dataset_versions"),
                where,
                ["product", "year", "quarter", "version"],
                limit,
                offset,
            )
        return page(rows, total, limit, offset)

    @app.get("/api/v1/coverage", summary="The coverage matrix (product × quarter) as `weatherinsight status` shows it")
    async def coverage(
        request: Request,
        product: Annotated[str, Query(pattern="^[a-z_]{1,40}$", description="A ledger product, e.g. precipitation.")],
        start: Annotated[date, Query(description="First day (UTC).")],
        end: Annotated[date, Query(description="Day after the last (UTC).")],
    ) -> dict:
        from starlette.concurrency import run_in_threadpool

        from weatherinsight.ops import status
        from weatherinsight.ops.request import parse_any_products

        if end <= start:
            raise ApiError(422, "invalid end: not after start", parameter="end")
        if (end - start).days > 366 * 80:
            raise ApiError(422, "invalid end: at most 80 years at a time", parameter="end")
        try:
            names = parse_any_products(LEDGER_PRODUCTS.get(product, product))
        except Exception as error:  # noqa: BLE001 - the parser's one-line message is the answer
            raise ApiError(404, f"unknown product {product!r}: {error}", parameter="product") from error
        result = await run_in_threadpool(status.coverage, settings, names, start, end)
        return {
            "product": product,
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "quarters": [
                {
                    "quarter": status.quarter_label(cell.quarter),
                    "start": cell.quarter.start.isoformat(),
                    "state": cell.state,
                    "raw_hours": cell.raw_hours,
                    "published_hours": cell.built_hours,
                    "coverage": cell.coverage,
                    "detail": cell.detail,
                }
                for cell in result.cells
            ],
        }

    @app.get("/health", summary="Database reachable, latest successful run, dataset freshness")
    async def health(request: Request) -> JSONResponse:
        store = warehouse(request)
        try:
            # a health check answers quickly: a database that cannot be reached is 503 within seconds
            async with store.snapshot(timeout=HEALTH_CONNECT_SECONDS) as cursor:
                latest = None
                if await store.exists(cursor, "ops", "backfill_runs"):
                    await cursor.execute(
                        "select run_id, finished_at from ops.backfill_runs where status = 'succeeded'"
                        " and command in ('run', 'update') order by finished_at desc limit 1"
                    )
                    latest = await cursor.fetchone()
                freshness = {}
                for name in sorted(await store.feature_tables(cursor)):
                    await cursor.execute(
                        sql.SQL(
                            "select max(quarter_start_at) as newest_quarter_start,"
                            " to_timestamp(max(latest_load_id)) as newest_load_at, count(*) as rows from {}"
                        ).format(sql.Identifier(MARTS_SCHEMA, f"quarterly_{name}_features"))
                    )
                    freshness[name] = await cursor.fetchone()
        except Exception as error:  # noqa: BLE001 - any failure to read means unhealthy
            log.warning("health check failed: %s", error)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return _error(503, f"database unreachable: {first}", status="unavailable", database=False)
        return JSONResponse(
            jsonable({"status": "ok", "database": True, "latest_successful_run": latest, "freshness": freshness})
        )

    return app


def _key(columns: dict[str, str]) -> str:
    return "location_id" if "location_id" in columns else "station_id"


async def _listing(
    store: Warehouse,
    schema: str,
    table: str,
    key: str,
    where: list[tuple[str, Any]],
    limit: int,
    offset: int,
    descending: bool = False,
) -> dict:
    """A page of ``schema.table`` in ``key`` order; an empty page while the table does not exist."""
    async with store.snapshot() as cursor:
        if not await store.exists(cursor, schema, table):
            return page([], 0, limit, offset)
        rows, total = await store.rows(
            cursor, sql.Identifier(schema, table), where, [key], limit, offset, descending=descending
        )
    return page(rows, total, limit, offset)


#: the statement timeout ``serve`` hands to the app of each worker process (milliseconds)
TIMEOUT_ENV = "WEATHERINSIGHT_API_STATEMENT_TIMEOUT_MS"


def app_from_env() -> FastAPI:
    """The app for the connection this process resolves (uvicorn's factory for several workers)."""
    return create_app(
        db.resolve(start=False), statement_timeout_ms=int(os.environ.get(TIMEOUT_ENV, STATEMENT_TIMEOUT_MS))
    )
