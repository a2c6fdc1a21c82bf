"""``/api/v1/features``: the products with published quarterly features, and one product's rows."""

from __future__ import annotations

from fastapi import APIRouter

from weatherinsight.api.dependencies import DEFAULT_LIMIT, Id, Limit, Offset, Quarter, WarehouseDep, Year
from weatherinsight.api.errors import ApiError
from weatherinsight.api.models import FeaturePage, Products
from weatherinsight.api.reads import page, product_key

router = APIRouter(prefix="/api/v1/features", tags=["features"])


@router.get("", summary="The products with published quarterly features", response_model=Products)
async def products(store: WarehouseDep) -> dict:
    async with store.snapshot() as cursor:
        tables = await store.feature_tables(cursor)
    return {
        "items": [
            {"product": name, "key": product_key(columns), "columns": list(columns)}
            for name, columns in sorted(tables.items())
        ]
    }


@router.get(
    "/{product}", summary="Quarterly features of one product, per station or location", response_model=FeaturePage
)
async def features(
    store: WarehouseDep,
    product: str,
    year: Year = None,
    quarter: Quarter = None,
    station_id: Id = None,
    location_id: Id = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> dict:
    async with store.snapshot() as cursor:
        tables = await store.feature_tables(cursor)
        if product not in tables:
            raise ApiError(404, f"unknown product {product!r}", products=sorted(tables))
        key = product_key(tables[product])
        other = "location_id" if key == "station_id" else "station_id"
        if (station_id if other == "station_id" else location_id) is not None:
            raise ApiError(400, f"{product} is kept per {key}, not per {other}", parameter=other)
        chosen = station_id if key == "station_id" else location_id
        where = [
            (column, value)
            for column, value in (("year", year), ("quarter", quarter), (key, chosen))
            if value is not None
        ]
        rows, total = await store.features(cursor, product, where, key, limit, offset)
    return page(rows, total, limit, offset, product=product, key=key)
