"""Constants of the DWD Climate Data Center (CDC) hourly station observations.

The product catalogue drives the one generic parser: every product differs only in its folder,
its file code, its quality column and its measure columns. It is kept once, in the dbt project's
seeds (``seeds/dwd_products.csv`` and ``seeds/dwd_product_measures.csv``), which dbt loads as
reference tables and this module reads.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weatherinsight import pipelines

#: DWD's open-data root, unless ``[sources.dwd_hourly] base_url`` in dlt's config (or ``--base-url``)
#: names a mirror laid out the same way.
DEFAULT_BASE_URL = "https://opendata.dwd.de/"
#: Path of the hourly station observations below the open-data root.
HOURLY_PATH = "climate_environment/CDC/observations_germany/climate/hourly/"
#: DWD's two releases: quality-controlled history and the rolling ~500 days of recent data.
RELEASES = ("historical", "recent")
#: DWD marks a missing value with -999 (also in float columns).
MISSING_VALUE = "-999"
#: Pipeline and dataset names (``dlt pipeline dwd_hourly info``).
PIPELINE_NAME = "dwd_hourly"
DATASET_NAME = "raw_dwd"
#: Rows per Arrow batch handed to dlt: bounds memory whatever the file size. With 20 k the parser's own
#: peak is 123 MiB for a 12 k-row and 128 MiB for a 587 k-row archive, at the speed of 100 k batches;
#: a whole load still grows with the file (dlt's load step: README, Performance)
BATCH_ROWS = 20_000
#: Seconds to wait for a connection, and (unless ``[sources.dwd_hourly] http_timeout_seconds`` says
#: otherwise) for the next bytes of an answer: a server that stays silent longer counts as failed.
CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_HTTP_TIMEOUT_SECONDS = 120.0
#: Attempts per HTTP request (connection errors, 429 and 5xx are retried with exponential backoff) and
#: the backoff factor, unless dlt's config says otherwise (``[sources.dwd_hourly] http_attempts``).
DEFAULT_HTTP_ATTEMPTS = 5
DEFAULT_HTTP_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class Measure:
    """One measure column of a product file."""

    source_column: str  # DWD's column name, e.g. ``TT_TU``
    raw_column: str  # column name in the raw table, e.g. ``tt_tu``
    kind: str  # ``float``, ``int`` or ``text``
    bounds: tuple[float, float] | None = None  # plausible values; a row outside them is quarantined


@dataclass(frozen=True)
class Product:
    """One DWD hourly product: its folder on the server and the layout of its product file."""

    name: str  # our product name, also the raw table name
    code: str  # DWD's file code in ``stundenwerte_<code>_<station>_...zip``
    folder: str  # DWD's folder below ``hourly/``
    quality_column: str  # DWD's quality-level column (QN_x)
    measures: tuple[Measure, ...]
    description: str

    @property
    def station_list_name(self) -> str:
        return f"{self.code}_Stundenwerte_Beschreibung_Stationen.txt"


def load_products(seeds: Path) -> dict[str, Product]:
    """The product catalogue from the dbt project's seeds: ``dwd_products.csv`` (one row per product)
    and ``dwd_product_measures.csv`` (its measure columns, in file order). dbt reads the same seeds,
    and its hourly facts name their product in ``meta.product`` (a test keeps both in step)."""
    with open(seeds / "dwd_product_measures.csv", encoding="utf-8", newline="") as handle:
        measures: dict[str, list[tuple[int, Measure]]] = {}
        for row in csv.DictReader(handle):
            bounds = (float(row["min_value"]), float(row["max_value"])) if row.get("min_value") else None
            measure = Measure(row["source_column"], row["raw_column"], row["kind"], bounds)
            measures.setdefault(row["product_name"], []).append((int(row["position"]), measure))
    with open(seeds / "dwd_products.csv", encoding="utf-8", newline="") as handle:
        return {
            row["product_name"]: Product(
                row["product_name"],
                row["product_code"],
                row["dwd_folder"],
                row["quality_column"],
                tuple(measure for _, measure in sorted(measures.get(row["product_name"], []))),
                row["description"],
            )
            for row in csv.DictReader(handle)
        }


PRODUCTS: dict[str, Product] = load_products(pipelines.seeds_folder())

#: Accepted spellings: our names, DWD's folder names and DWD's file codes.
PRODUCT_ALIASES: dict[str, str] = {
    alias.lower(): product.name
    for product in PRODUCTS.values()
    for alias in (product.name, product.folder, product.code)
}


def source_config(key: str, default: Any) -> Any:
    """``[sources.dwd_hourly] <key>`` from dlt's config (or ``SOURCES__DWD_HOURLY__<KEY>``), else ``default``."""
    return pipelines.source_config(key, default, PIPELINE_NAME)


def http_timeout() -> tuple[float, float]:
    """(connect, read) timeouts in seconds for every request to the source."""
    return (CONNECT_TIMEOUT_SECONDS, source_config("http_timeout_seconds", DEFAULT_HTTP_TIMEOUT_SECONDS))


def resolve_product(name: str) -> Product:
    """Return the product for one of its names (``wind``, ``FF``, ``cloudiness``…) or raise KeyError."""
    return PRODUCTS[PRODUCT_ALIASES[name.strip().lower()]]
