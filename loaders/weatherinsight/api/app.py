"""The app: a pool of read-only connections for its lifetime, the error handlers, the routers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from weatherinsight import __version__, db
from weatherinsight.api.access import STATEMENT_TIMEOUT_MS, reader
from weatherinsight.api.errors import install_handlers
from weatherinsight.api.models import ErrorAnswer
from weatherinsight.api.reads import Warehouse
from weatherinsight.api.routers import coverage, features, health, ledger, reference

#: the statement timeout ``serve`` hands to the app of each worker process (milliseconds)
TIMEOUT_ENV = "WEATHERINSIGHT_API_STATEMENT_TIMEOUT_MS"

DESCRIPTION = (
    "Read-only access to the published quarterly features per DWD station and Open-Meteo location,"
    " the stations, coverage, the backfill ledger and dataset versions. Times are UTC (ISO 8601)."
)
#: every error is one JSON line (weatherinsight.api.errors)
ERRORS = {status: {"model": ErrorAnswer} for status in (400, 404, 422, 500, 503)}


def create_app(
    connection: db.ConnectionSettings, pool_size: int = 8, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> FastAPI:
    """The ASGI app reading the warehouse at ``connection`` through the read-only role; a statement
    running past ``statement_timeout_ms`` is cancelled and answered 503."""
    settings = reader(connection, statement_timeout_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connections are checked when taken: a restarted server costs no failed request
        pool = AsyncConnectionPool(
            conninfo(settings), min_size=1, max_size=pool_size, open=False, timeout=20,
            check=AsyncConnectionPool.check_connection,
        )  # fmt: skip
        await pool.open(wait=False)
        app.state.warehouse = Warehouse(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="WeatherInsight API", version=__version__, description=DESCRIPTION, lifespan=lifespan, responses=ERRORS
    )
    app.state.reader_settings = settings
    app.state.statement_timeout_ms = statement_timeout_ms
    install_handlers(app)
    for module in (features, reference, ledger, coverage, health):
        app.include_router(module.router)
    return app


def conninfo(settings: db.ConnectionSettings) -> str:
    """libpq's connection string for psycopg 3's pool."""
    return make_conninfo(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password or None,
        dbname=settings.database,
        options=settings.options,
        connect_timeout=10,
    )


def app_from_env() -> FastAPI:
    """The app for the connection this process resolves (uvicorn's factory for several workers)."""
    return create_app(
        db.resolve(start=False), statement_timeout_ms=int(os.environ.get(TIMEOUT_ENV, STATEMENT_TIMEOUT_MS))
    )
