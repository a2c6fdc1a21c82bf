"""``/api/v1/coverage``: the coverage matrix (product x quarter), computed as ``weatherinsight status``
computes it (in a worker thread: it reads through psycopg2)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from weatherinsight.api.dependencies import LedgerProduct, ReaderSettings, ledger_product
from weatherinsight.api.errors import ApiError
from weatherinsight.api.models import Coverage

router = APIRouter(prefix="/api/v1", tags=["coverage"])


@router.get(
    "/coverage",
    summary="The coverage matrix (product × quarter) as `weatherinsight status` shows it",
    response_model=Coverage,
)
async def coverage(
    settings: ReaderSettings,
    product: LedgerProduct,
    start: Annotated[date, Query(description="First day (UTC).")],
    end: Annotated[date, Query(description="Day after the last (UTC).")],
) -> dict:
    from weatherinsight.ops.backfill.request import parse_any_products
    from weatherinsight.ops.reports import status

    if end <= start:
        raise ApiError(422, "invalid end: not after start", parameter="end")
    if (end - start).days > 366 * 80:
        raise ApiError(422, "invalid end: at most 80 years at a time", parameter="end")
    try:
        names = parse_any_products(ledger_product(product))
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
