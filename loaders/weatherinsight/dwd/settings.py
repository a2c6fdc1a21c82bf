"""Constants of the DWD Climate Data Center (CDC) hourly station observations.

The product catalogue below drives the one generic parser: every product differs only in its
folder, its file code, its quality column and its measure columns. ``seeds/dwd_products.csv``
mirrors this catalogue for dbt (a test keeps both in step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: DWD's open-data root; ``--base-url`` replaces it with a mirror laid out the same way.
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
#: Rows per Arrow batch handed to dlt: bounds memory whatever the file size.
BATCH_ROWS = 100_000
#: HTTP timeouts in seconds (connect, read).
HTTP_TIMEOUT = (10, 120)
#: Attempts per HTTP request (connection errors, 429 and 5xx are retried with exponential backoff).
HTTP_MAX_ATTEMPTS = int(os.environ.get("WEATHERINSIGHT_HTTP_ATTEMPTS", "5"))
HTTP_BACKOFF_SECONDS = float(os.environ.get("WEATHERINSIGHT_HTTP_BACKOFF", "1.0"))


@dataclass(frozen=True)
class Measure:
    """One measure column of a product file."""

    source_column: str  # DWD's column name, e.g. ``TT_TU``
    raw_column: str  # column name in the raw table, e.g. ``tt_tu``
    kind: str  # ``float``, ``int`` or ``text``


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


def _measures(*columns: tuple[str, str]) -> tuple[Measure, ...]:
    return tuple(Measure(name, name.lower(), kind) for name, kind in columns)


PRODUCTS: dict[str, Product] = {
    product.name: product
    for product in (
        Product(
            "air_temperature",
            "TU",
            "air_temperature",
            "QN_9",
            _measures(("TT_TU", "float"), ("RF_TU", "float")),
            "Air temperature 2 m (degC) and relative humidity (%)",
        ),
        Product(
            "precipitation",
            "RR",
            "precipitation",
            "QN_8",
            _measures(("R1", "float"), ("RS_IND", "int"), ("WRTR", "int")),
            "Hourly precipitation height (mm), indicator and form",
        ),
        Product(
            "wind",
            "FF",
            "wind",
            "QN_3",
            _measures(("F", "float"), ("D", "int")),
            "Mean wind speed (m/s) and direction (degrees)",
        ),
        Product(
            "pressure",
            "P0",
            "pressure",
            "QN_8",
            _measures(("P", "float"), ("P0", "float")),
            "Air pressure reduced to sea level and at station height (hPa)",
        ),
        Product(
            "cloud_cover",
            "N",
            "cloudiness",
            "QN_8",
            _measures(("V_N_I", "text"), ("V_N", "int")),
            "Total cloud cover (oktas) and how it was observed",
        ),
        Product(
            "moisture",
            "TF",
            "moisture",
            "QN_8",
            _measures(
                ("ABSF_STD", "float"),
                ("VP_STD", "float"),
                ("TF_STD", "float"),
                ("P_STD", "float"),
                ("TT_STD", "float"),
                ("RF_STD", "float"),
                ("TD_STD", "float"),
            ),
            "Humidity: absolute and relative humidity, vapour pressure, wet-bulb and dew point",
        ),
        Product(
            "dew_point",
            "TD",
            "dew_point",
            "QN_8",
            _measures(("TT", "float"), ("TD", "float")),
            "Air temperature and dew point temperature (degC)",
        ),
        Product(
            "sun",
            "SD",
            "sun",
            "QN_7",
            _measures(
                ("SD_SO", "float"),
            ),
            "Hourly sunshine duration (minutes)",
        ),
    )
}

#: Accepted spellings: our names, DWD's folder names and DWD's file codes.
PRODUCT_ALIASES: dict[str, str] = {
    alias.lower(): product.name
    for product in PRODUCTS.values()
    for alias in (product.name, product.folder, product.code)
}


def resolve_product(name: str) -> Product:
    """Return the product for one of its names (``wind``, ``FF``, ``cloudiness``…) or raise KeyError."""
    return PRODUCTS[PRODUCT_ALIASES[name.strip().lower()]]
