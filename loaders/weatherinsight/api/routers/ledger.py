"""``/api/v1/runs`` and ``/api/v1/dataset-versions``: the backfill ledger and what it published."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from weatherinsight.api.dependencies import DEFAULT_LIMIT, Limit, Offset, Quarter, WarehouseDep, Year, ledger_product
from weatherinsight.api.errors import ApiError
from weatherinsight.api.models import Page, Run
from weatherinsight.api.reads import jsonable, page

router = APIRouter(prefix="/api/v1", tags=["ledger"])

Status = Annotated[str | None, Query(pattern="^(planned|running|succeeded|failed|rolled back)$")]


@router.get("/runs", summary="Backfill runs, newest first (the ledger)", response_model=Page)
async def runs(store: WarehouseDep, status: Status = None, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict:
    return await store.runs(status, limit, offset)


@router.get("/runs/{run_id}", summary="One backfill run with its windows", response_model=Run)
async def run(store: WarehouseDep, run_id: int) -> dict:
    async with store.snapshot() as cursor:
        if not await store.has_ledger(cursor):
            raise ApiError(404, f"no run {run_id}: no backfill has run yet")
        found = await store.run_with_windows(cursor, run_id)
    if found is None:
        raise ApiError(404, f"no run {run_id}")
    return jsonable(found)


@router.get("/dataset-versions", summary="Dataset versions: one per product and quarter published", response_model=Page)
async def dataset_versions(
    store: WarehouseDep,
    product: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
    year: Year = None,
    quarter: Quarter = None,
    latest: Annotated[bool, Query(description="Only the version each quarter holds now.")] = False,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> dict:
    async with store.snapshot() as cursor:
        if not await store.has_dataset_versions(cursor):
            raise ApiError(503, "ops.dataset_versions is not built yet (run: weatherinsight dbt build)")
        filters = (("product", ledger_product(product) if product else None), ("year", year), ("quarter", quarter))
        where = [(column, value) for column, value in filters if value is not None]
        if latest:
            where.append(("is_latest", True))
        rows, total = await store.dataset_versions(cursor, where, limit, offset)
    return page(rows, total, limit, offset)
