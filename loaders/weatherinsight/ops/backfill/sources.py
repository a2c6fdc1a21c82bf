"""Where each product's rows come from: its raw dataset, the column that keys its rows (a DWD station
or an Open-Meteo location), its deliveries and its dimension. Backfill operations read every product
through this, so DWD's eight products and Open-Meteo's two go through the same ledger, windows,
publish and coverage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from weatherinsight.dwd.settings import DATASET_NAME as DWD_DATASET
from weatherinsight.openmeteo.settings import APIS
from weatherinsight.openmeteo.settings import DATASET_NAME as OPENMETEO_DATASET

#: the Open-Meteo products (raw table names), by API
OPENMETEO_PRODUCTS = {api.product: name for name, api in APIS.items()}


@dataclass(frozen=True)
class ProductSource:
    product: str
    raw_schema: str  # the raw dataset
    key: str  # the column keying its rows besides time
    deliveries: str  # one row per delivery: product, key, first and last hour, row count, dlt load id
    delivery_column: str  # what tells deliveries of one key apart
    dimension: str  # the mart describing the keys

    @property
    def unit(self) -> str:
        """What one key is, for messages: station or location."""
        return self.key.removesuffix("_id")


def product_source(product: str) -> ProductSource:
    if product in OPENMETEO_PRODUCTS:
        return ProductSource(product, OPENMETEO_DATASET, "location_id", "requests", "request_id", "dim_location")
    return ProductSource(product, DWD_DATASET, "station_id", "deliveries", "source_file", "dim_station")


#: ids narrowing a request, by key column: {"station_id": [...], "location_id": [...]}; None = all
Ids = Mapping[str, Sequence[int] | None]


def ids_for(ids: Ids | None, key: str) -> Sequence[int] | None:
    return (ids or {}).get(key)
