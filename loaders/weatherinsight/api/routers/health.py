"""``/health``: the database reachable, the latest successful run, each product's freshness; 503
within seconds when the database cannot be reached."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from weatherinsight.api.dependencies import WarehouseDep
from weatherinsight.api.errors import error_answer, first_line
from weatherinsight.api.models import ErrorAnswer, Health
from weatherinsight.api.reads import jsonable

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

#: seconds /health waits for a connection before it answers 503
HEALTH_CONNECT_SECONDS = 5.0


@router.get(
    "/health",
    summary="Database reachable, latest successful run, dataset freshness",
    response_model=Health,
    responses={503: {"model": ErrorAnswer, "description": "The database cannot be reached."}},
)
async def health(store: WarehouseDep) -> JSONResponse:
    try:
        # a health check answers quickly: a database that cannot be reached is 503 within seconds
        async with store.snapshot(timeout=HEALTH_CONNECT_SECONDS) as cursor:
            latest = await store.latest_successful_run(cursor)
            freshness = await store.freshness(cursor)
    except Exception as error:  # noqa: BLE001 - any failure to read means unhealthy
        log.warning("health check failed: %s", error)
        return error_answer(503, f"database unreachable: {first_line(error)}", status="unavailable", database=False)
    return JSONResponse(
        jsonable({"status": "ok", "database": True, "latest_successful_run": latest, "freshness": freshness})
    )
