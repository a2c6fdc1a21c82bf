"""Constants and reference data of the Open-Meteo sources.

Two APIs answer the same columnar JSON: the Historical Weather API (ERA5 reanalysis, hourly since
1940) and the Air Quality API (CAMS, hourly since 2013 in Europe). Which locations are loaded and
which variables each API offers are reference data in the dbt project's seeds
(``seeds/locations.csv``, ``seeds/openmeteo_variables.csv``), which dbt loads as tables and this
module reads: adding a location is one line there.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from weatherinsight.pipelines import seeds_folder

PIPELINE_NAME = "openmeteo_hourly"
DATASET_NAME = "raw_openmeteo"
#: one base URL for both APIs (a mirror serving ``/v1/archive`` and ``/v1/air-quality``)
BASE_URL_VARIABLE = "WEATHERINSIGHT_OPENMETEO_BASE_URL"
#: the provider's free-use limits, in weighted calls
FREE_LIMITS = {"minute": 600, "hour": 5_000, "day": 10_000}
#: calls per minute the loader allows itself unless told otherwise: below the provider's 600
DEFAULT_RATE_LIMIT = 500
#: a response's coordinates may be those of the model's grid cell, not the requested point: ERA5's
#: cells are 0.25°, CAMS Europe's 0.1°; farther than this, the response is for another place
COORDINATE_TOLERANCE_DEGREES = 0.5
#: a batch fetched less than this many days after its end is provisional (the archive's last days
#: are revised as the reanalysis catches up): the next load fetches it again
PROVISIONAL_DAYS = 7
#: seconds to wait for a connection and for the next bytes of an answer
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 60.0
HTTP_ATTEMPTS = 5
HTTP_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class Api:
    """One Open-Meteo API: our name, its product (also its raw table), its path and host."""

    name: str
    product: str
    path: str
    default_base_url: str
    first_day: date
    description: str


APIS: dict[str, Api] = {
    "weather": Api(
        "weather",
        "location_weather",
        "/v1/archive",
        "https://archive-api.open-meteo.com",
        date(1940, 1, 1),
        "Historical Weather API (ERA5 reanalysis)",
    ),
    "air_quality": Api(
        "air_quality",
        "air_quality",
        "/v1/air-quality",
        "https://air-quality-api.open-meteo.com",
        date(2013, 1, 1),
        "Air Quality API (CAMS)",
    ),
}
#: accepted spellings of the APIs on the command line
API_ALIASES = {"weather": "weather", "archive": "weather", "air-quality": "air_quality", "air_quality": "air_quality"}


@dataclass(frozen=True)
class Variable:
    api: str
    name: str  # Open-Meteo's name, also the raw column
    unit: str  # the unit the raw column holds
    bounds: tuple[float, float]
    is_default: bool


@dataclass(frozen=True)
class Location:
    location_id: int
    name: str
    latitude: float
    longitude: float
    country_code: str
    apis: tuple[str, ...]


def load_variables(seeds: Path) -> dict[str, dict[str, Variable]]:
    """The variables per API, in the seed's order."""
    variables: dict[str, dict[str, Variable]] = {name: {} for name in APIS}
    with open(seeds / "openmeteo_variables.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            variables[row["api"]][row["variable"]] = Variable(
                row["api"],
                row["variable"],
                row["unit"],
                (float(row["min_value"]), float(row["max_value"])),
                row["is_default"] == "true",
            )
    return variables


class LocationError(ValueError):
    """The locations seed has a line that cannot be used (one readable line)."""


def load_locations(seeds: Path) -> dict[int, Location]:
    """The locations seed, checked: integer ids, unique; latitude in [-90, 90], longitude in
    [-180, 180]; APIs known."""
    locations: dict[int, Location] = {}
    path = seeds / "locations.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{path.name} line {line}"
            try:
                location_id = int(row["location_id"])
                latitude, longitude = float(row["latitude"]), float(row["longitude"])
            except (TypeError, ValueError):
                raise LocationError(f"{where}: location_id, latitude and longitude must be numbers") from None
            if not (math.isfinite(latitude) and -90 <= latitude <= 90):
                raise LocationError(f"{where}: latitude {row['latitude']} is outside -90..90")
            if not (math.isfinite(longitude) and -180 <= longitude <= 180):
                raise LocationError(f"{where}: longitude {row['longitude']} is outside -180..180")
            apis = tuple(name.strip() for name in (row.get("apis") or "").split(";") if name.strip())
            unknown = [name for name in apis if name not in APIS]
            if unknown:
                raise LocationError(f"{where}: unknown API {unknown[0]!r} (known: {', '.join(APIS)})")
            if location_id in locations:
                raise LocationError(f"{where}: location_id {location_id} appears twice")
            locations[location_id] = Location(
                location_id, row["location_name"], latitude, longitude, row["country_code"], apis
            )
    return locations


VARIABLES = load_variables(seeds_folder())


def base_urls(base_url: str | None) -> dict[str, str]:
    """Where each API is fetched from: ``base_url`` (or ``$WEATHERINSIGHT_OPENMETEO_BASE_URL``) for
    both, else the real hosts."""
    chosen = base_url or os.environ.get(BASE_URL_VARIABLE)
    return {name: (chosen or api.default_base_url).rstrip("/") for name, api in APIS.items()}


def weighted_calls(variables: int, days: float, locations: int = 1) -> float:
    """How many calls the provider counts for one request: more than 10 variables or more than 2
    weeks count as several (fractional), per location."""
    return max(1.0, variables / 10) * max(1.0, days / 14) * locations
