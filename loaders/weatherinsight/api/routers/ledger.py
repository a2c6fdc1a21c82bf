"""``/api/v1/runs`` and ``/api/v1/dataset-versions``: the backfill ledger and what it published."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from psycopg import sql

from weatherinsight.api.dependencies import DEFAULT_LIMIT, Limit, Offset, Quarter, WarehouseDep, Year, ledger_product
from weatherinsight.api.errors import ApiError
from weatherinsight.api.models import Page, Run
from weatherinsight.api.reads import LEDGER_SCHEMA, jsonable, page

router = APIRouter(prefix="/api/v1", tags=["ledger"])

Status = Annotated[str | None, Query(pattern="^(planned|running|succeeded|failed|rolled back)$")]


@router.get("/runs", summary="Backfill runs, newest first (the ledger)", response_model=Page)
async def runs(store: WarehouseDep, status: Status = None, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict:
    where = [("status", status)] if status else []
    return await store.listing(LEDGER_SCHEMA, "backfill_runs", "run_id", where, limit, offset, descending=True)


@router.get("/runs/{run_id}", summary="One backfill run with its windows", response_model=Run)
async def run(store: WarehouseDep, run_id: int) -> dict:
    async with store.snapshot() as cursor:
        if not await store.exists(cursor, LEDGER_SCHEMA, "backfill_runs"):
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
        if not await store.exists(cursor, LEDGER_SCHEMA, "dataset_versions"):
            raise ApiError(503, "ops.dataset_versions is not built yet (run: weatherinsight dbt build)")
        filters = (("product", ledger_product(product) if product else None), ("year", year), ("quarter", quarter))
        where = [(column, value) for column, value in filters if value is not None]
        if latest:
            where.append(("is_latest", True))
        rows, total = await store.rows(
            cursor,
            sql.Identifier(LEDGER_SCHEMA, "dataset_versions"),
            where,
            ["product", "year", "quarter", "version"],
            limit,
            offset,
        )
    return page(rows, total, limit, offset)
