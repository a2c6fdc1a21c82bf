"""A backfill request: the range, products, stations, window size and options, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

from weatherinsight.dwd.service import LoadRequestError, parse_products, parse_stations
from weatherinsight.errors import RequestError
from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS
from weatherinsight.windows import GRAINS

MAX_PARALLEL = 4


class BackfillRequestError(RequestError):
    """The request is wrong (dates, products, run id…): one line, exit code 2, nothing changed."""


@dataclass
class Request:
    start: date
    end: date
    products: list[str]
    stations: list[int] | None = None
    by: str = "quarter"
    locations: list[int] | None = None
    force: bool = False
    retry_failed: bool = False
    parallel: int = 1
    base_url: str | None = None
    load: bool = True
    wait: float = 0.0

    @classmethod
    def make(
        cls,
        start: date | None,
        end: date | None,
        products: str | Sequence[str] | None,
        stations: str | Sequence[int] | None,
        by: str = "quarter",
        locations: str | Sequence[int] | None = None,
        **options,
    ) -> Request:
        if start is None or end is None:
            raise BackfillRequestError("give both --start and --end (YYYY-MM-DD)")
        if end <= start:
            raise BackfillRequestError(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
        if by not in GRAINS:
            raise BackfillRequestError(f"--by {by!r}: use one of {', '.join(GRAINS)}")
        parallel = options.get("parallel", 1)
        if not 1 <= parallel <= MAX_PARALLEL:
            raise BackfillRequestError(f"--parallel {parallel}: use 1 to {MAX_PARALLEL}")
        try:
            chosen_stations = sorted(parse_stations(stations) or []) or None
        except LoadRequestError as error:
            raise BackfillRequestError(str(error)) from None
        chosen = parse_any_products(products, default_open_meteo=bool(locations))
        chosen_locations = parse_location_ids(locations)
        if chosen_locations and not any(product in OPENMETEO_PRODUCTS for product in chosen):
            raise BackfillRequestError(
                "--locations narrows the Open-Meteo products: give --products location_weather or air_quality"
            )
        return cls(start, end, chosen, chosen_stations, by, chosen_locations, **options)

    def ids(self) -> dict[str, list[int] | None]:
        """The stations and locations narrowing the request, by the column they key."""
        return {"station_id": self.stations, "location_id": self.locations}

    def ids_for(self, product: str) -> list[int] | None:
        """The stations (DWD product) or locations (Open-Meteo product) narrowing ``product``."""
        return self.locations if product in OPENMETEO_PRODUCTS else self.stations

    def arguments(self) -> dict:
        values = asdict(self)
        values["start"], values["end"] = self.start.isoformat(), self.end.isoformat()
        return values

    @classmethod
    def from_arguments(cls, values: dict) -> Request:
        values = dict(values)
        values["start"], values["end"] = date.fromisoformat(values["start"]), date.fromisoformat(values["end"])
        return cls(**values)


def parse_any_products(products: str | Sequence[str] | None, default_open_meteo: bool = False) -> list[str]:
    """DWD products (any of their names) and Open-Meteo products (location_weather, air_quality);
    none given: every DWD product, or both Open-Meteo ones when ``default_open_meteo``."""
    names = [name.strip() for name in (products.split(",") if isinstance(products, str) else products or [])]
    names = [name for name in names if name]
    if not names:
        return list(OPENMETEO_PRODUCTS) if default_open_meteo else [product.name for product in parse_products(None)]
    open_meteo = [name for name in names if name in OPENMETEO_PRODUCTS]
    others = [name for name in names if name not in OPENMETEO_PRODUCTS]
    try:
        dwd = [product.name for product in parse_products(others)] if others else []
    except LoadRequestError as error:
        raise BackfillRequestError(f"{error}, or an Open-Meteo product: {', '.join(OPENMETEO_PRODUCTS)}") from None
    return dwd + list(dict.fromkeys(open_meteo))


def report_products(products: str, stations: Sequence[int] | None, locations: Sequence[int] | None) -> list[str]:
    """The products a report covers: those named, else every source's (the DWD products and the
    Open-Meteo ones) — the DWD ones when only stations are named, the Open-Meteo ones when only
    locations are."""
    if products.strip(" ,") or bool(stations) != bool(locations):
        return parse_any_products(products, default_open_meteo=bool(locations))
    return parse_any_products(None) + parse_any_products(None, default_open_meteo=True)


def parse_location_ids(locations: str | Sequence[int] | None) -> list[int] | None:
    """Location ids of seeds/locations.csv, checked."""
    if not locations:
        return None
    from weatherinsight.openmeteo.plan import OpenMeteoRequestError, configured_locations

    try:
        known = configured_locations()
    except OpenMeteoRequestError as error:
        raise BackfillRequestError(str(error)) from None
    items = locations.split(",") if isinstance(locations, str) else list(locations)
    chosen = []
    for item in (str(item).strip() for item in items if str(item).strip()):
        if not item.isdigit() or int(item) not in known:
            raise BackfillRequestError(
                f"unknown location {item!r} (seeds/locations.csv has {', '.join(map(str, sorted(known)))})"
            )
        chosen.append(int(item))
    return sorted(set(chosen))
