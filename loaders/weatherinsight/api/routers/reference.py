"""``/api/v1/stations`` and ``/api/v1/locations``: the DWD stations as they are now and the Open-Meteo
locations."""

from __future__ import annotations

from fastapi import APIRouter

from weatherinsight.api.dependencies import MAX_LIMIT, Limit, Offset, WarehouseDep
from weatherinsight.api.models import Page

router = APIRouter(prefix="/api/v1", tags=["reference"])


@router.get("/stations", summary="DWD stations as they are now (dim_station)", response_model=Page)
async def stations(store: WarehouseDep, limit: Limit = MAX_LIMIT, offset: Offset = 0) -> dict:
    return await store.stations(limit, offset)


@router.get("/locations", summary="Open-Meteo locations (dim_location)", response_model=Page)
async def locations(store: WarehouseDep, limit: Limit = MAX_LIMIT, offset: Offset = 0) -> dict:
    return await store.locations(limit, offset)
