"""What the routes share: the warehouse they read (from the app's lifespan), the connection settings
of the read-only role, and the common query parameters with their bounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from weatherinsight import db
from weatherinsight.api.reads import Warehouse

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def get_warehouse(request: Request) -> Warehouse:
    return request.app.state.warehouse


def get_reader_settings(request: Request) -> db.ConnectionSettings:
    return request.app.state.reader_settings


WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]
ReaderSettings = Annotated[db.ConnectionSettings, Depends(get_reader_settings)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page (1 to {MAX_LIMIT}).")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Year = Annotated[int | None, Query(ge=1800, le=2200, description="Calendar year (UTC).")]
Quarter = Annotated[int | None, Query(ge=1, le=4, description="Quarter of the year, 1 to 4.")]
Id = Annotated[int | None, Query(ge=0, le=2_147_483_647)]
#: a product as the ledger and the coverage matrix name it
LedgerProduct = Annotated[str, Query(pattern="^[a-z_]{1,40}$", description="A ledger product, e.g. precipitation.")]

#: what a product of the API is called when it differs from the ledger's product name
LEDGER_PRODUCTS = {"temperature": "air_temperature", "humidity": "moisture"}


def ledger_product(product: str) -> str:
    """The ledger's name of an API product (``temperature`` -> ``air_temperature``)."""
    return LEDGER_PRODUCTS.get(product, product)
