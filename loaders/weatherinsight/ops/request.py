"""A backfill request: the range, products, stations, window size and options, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

from weatherinsight.dwd.service import LoadRequestError, parse_products, parse_stations
from weatherinsight.errors import RequestError
from weatherinsight.ops.windows import GRAINS

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
        from weatherinsight.openmeteo.settings import APIS

        names = products.split(",") if isinstance(products, str) else list(products or [])
        open_meteo = sorted({name.strip() for name in names} & {api.product for api in APIS.values()})
        if open_meteo:
            raise BackfillRequestError(
                f"{', '.join(open_meteo)}: Open-Meteo products are not covered by backfill operations yet; "
                "load them with `weatherinsight load openmeteo` and build them with "
                "`dbt build --select marts.locations --vars '{start_date: …, end_date: …, locations: [...]}'`"
            )
        try:
            chosen = [product.name for product in parse_products(products)]
            chosen_stations = sorted(parse_stations(stations) or []) or None
        except LoadRequestError as error:
            raise BackfillRequestError(str(error)) from None
        return cls(start, end, chosen, chosen_stations, by, **options)

    def arguments(self) -> dict:
        values = asdict(self)
        values["start"], values["end"] = self.start.isoformat(), self.end.isoformat()
        return values

    @classmethod
    def from_arguments(cls, values: dict) -> Request:
        values = dict(values)
        values["start"], values["end"] = date.fromisoformat(values["start"]), date.fromisoformat(values["end"])
        return cls(**values)
