"""Planning an Open-Meteo load: the APIs, locations and variables asked for, and the batches to fetch.

Per (API, location) the window is cut into batches of ``batch_days`` UTC days, one request each. What
the warehouse already holds is read from ``raw_openmeteo.requests`` (the answers of completed dlt
loads, with the days and variables each covered): a rerun fetches nothing already there, and a batch
fetched within ``PROVISIONAL_DAYS`` of its end is fetched again (the reanalysis revises its last
days; the later fetch wins in the models).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from weatherinsight import db
from weatherinsight.errors import RequestError
from weatherinsight.openmeteo.settings import (
    API_ALIASES,
    APIS,
    DATASET_NAME,
    PROVISIONAL_DAYS,
    VARIABLES,
    Location,
    LocationError,
    load_locations,
    seeds_folder,
    weighted_calls,
)


class OpenMeteoRequestError(RequestError):
    """The request itself is wrong (unknown location or variable, bad window, not an Open-Meteo server)."""


@dataclass(frozen=True)
class Batch:
    """One request: ``variables`` of ``api`` at ``location`` for the UTC days [start, end)."""

    api: str
    location: Location
    start: date
    end: date
    variables: tuple[str, ...]

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def weight(self) -> float:
        return weighted_calls(len(self.variables), self.days)

    def params(self) -> dict[str, str]:
        params = {
            "latitude": f"{self.location.latitude:g}",
            "longitude": f"{self.location.longitude:g}",
            "hourly": ",".join(self.variables),
            "start_date": self.start.isoformat(),
            "end_date": (self.end - timedelta(days=1)).isoformat(),
            "timezone": "GMT",
        }
        if self.api == "weather":
            params["wind_speed_unit"] = "ms"
        return params


@dataclass
class LocationOutcome:
    """What one run did for one (API, location): the checkpoint it writes."""

    api: str
    location: Location
    batches: int = 0  # planned
    answered: int = 0  # answers loaded whole
    status: str = "pending"
    rows: int = 0
    requests: int = 0
    weighted: float = 0.0
    quarantined: int = 0
    last_loaded_hour: datetime | None = None
    last_error: str | None = None


@dataclass
class OpenMeteoPlan:
    batches: list[Batch]
    already_loaded: int  # batches of the window the warehouse already holds
    outcomes: dict[tuple[str, int], LocationOutcome]

    @property
    def weighted_calls(self) -> float:
        return sum(batch.weight for batch in self.batches)


#: one request with up to 10 variables and 14 days counts as one call at the provider
DEFAULT_BATCH_DAYS = 14


def parse_apis(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise OpenMeteoRequestError("give --api weather, air-quality or both (weather,air-quality)")
    unknown = [name for name in names if name not in API_ALIASES]
    if unknown:
        raise OpenMeteoRequestError(f"unknown API {unknown[0]!r} (known: weather, air-quality)")
    return list(dict.fromkeys(API_ALIASES[name] for name in names))


def configured_locations() -> dict[int, Location]:
    """The locations of the project the command runs in (``seeds/locations.csv``): user
    configuration, read from the project, not from the installed package."""
    project_seeds = db.project_root() / "seeds"
    try:
        return load_locations(project_seeds if (project_seeds / "locations.csv").is_file() else seeds_folder())
    except LocationError as error:
        raise OpenMeteoRequestError(str(error)) from None


def parse_locations(text: str | None, apis: Sequence[str], locations: dict[int, Location]) -> dict[str, list[Location]]:
    """The locations to load per API: those listed (each must be configured for every API asked
    for), or every location of the seed configured for the API."""
    if not text:
        return {api: [location for location in locations.values() if api in location.apis] for api in apis}
    chosen = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if not item.isdigit() or int(item) not in locations:
            known = ", ".join(str(key) for key in sorted(locations))
            raise OpenMeteoRequestError(f"unknown location {item!r} (seeds/locations.csv has {known})")
        chosen.append(locations[int(item)])
    for api in apis:
        for location in chosen:
            if api not in location.apis:
                raise OpenMeteoRequestError(
                    f"location {location.location_id} ({location.name}) is not configured for {api} "
                    "(the apis column of seeds/locations.csv)"
                )
    return {api: list(dict.fromkeys(chosen)) for api in apis}


def parse_variables(text: str | None, api: str) -> tuple[str, ...]:
    catalogue = VARIABLES[api]
    if not text:
        return tuple(name for name, variable in catalogue.items() if variable.is_default)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in catalogue:
            raise OpenMeteoRequestError(
                f"unknown {api} variable {name!r} (seeds/openmeteo_variables.csv has {', '.join(catalogue)})"
            )
    return tuple(dict.fromkeys(names))


def check_window(start: date, end: date, apis: Sequence[str], today: date | None = None) -> None:
    today = today or datetime.now(timezone.utc).date()
    if end <= start:
        raise OpenMeteoRequestError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if end > today + timedelta(days=1):
        raise OpenMeteoRequestError(f"end {end.isoformat()} is in the future (the archives end yesterday)")
    for api in apis:
        if start < APIS[api].first_day:
            raise OpenMeteoRequestError(
                f"{APIS[api].description} starts on {APIS[api].first_day.isoformat()}; "
                f"start {start.isoformat()} is before"
            )


def loaded_ranges(connection: db.ConnectionSettings) -> dict[tuple[str, int, str], list[tuple[date, date]]]:
    """Days each (API, location, variable) holds in final form: answers of completed loads,
    fetched at least ``PROVISIONAL_DAYS`` after the end of what they cover."""
    with db.connect(connection) as conn, conn.cursor() as cursor:
        if not db.relation_exists(cursor, DATASET_NAME, "requests"):
            return {}
        cursor.execute(
            f"""
            select requests.api, requests.location_id, requests.variables,
                cast(requests.window_start at time zone 'UTC' as date),
                cast(requests.window_end at time zone 'UTC' as date)
            from {DATASET_NAME}.requests as requests
            inner join {DATASET_NAME}._dlt_loads as loads
                on loads.load_id = requests._dlt_load_id and loads.status = 0
            where requests.fetched_at >= requests.window_end + make_interval(days => %s)
            """,
            (PROVISIONAL_DAYS,),
        )
        ranges: dict[tuple[str, int, str], list[tuple[date, date]]] = {}
        for api, location_id, variables, window_start, window_end in cursor.fetchall():
            for variable in variables.split(","):
                ranges.setdefault((api, int(location_id), variable), []).append((window_start, window_end))
        return ranges


def _missing(start: date, end: date, covered: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """[start, end) minus the covered ranges, as ranges."""
    gaps, cursor = [], start
    for covered_start, covered_end in sorted(covered):
        if covered_end <= cursor:
            continue
        if covered_start >= end:
            break
        if covered_start > cursor:
            gaps.append((cursor, covered_start))
        cursor = max(cursor, covered_end)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def plan_batches(
    locations: dict[str, list[Location]],
    variables: dict[str, tuple[str, ...]],
    start: date,
    end: date,
    batch_days: int,
    loaded: dict[tuple[str, int, str], list[tuple[date, date]]],
) -> OpenMeteoPlan:
    """Batches of at most ``batch_days`` days covering what each (API, location) lacks of [start, end)
    for any of its variables, location by location.

    A batch asks for the variables wanted and every variable loaded for the location before: the
    latest fetch of an hour wins in the facts, so a fetch must never hold fewer variables than the
    ones it supersedes (a load of one new variable would otherwise blank the others)."""
    batches: list[Batch] = []
    catalogue_order = {api: list(VARIABLES[api]) for api in VARIABLES}
    outcomes: dict[tuple[str, int], LocationOutcome] = {}
    already = 0
    for api, chosen in locations.items():
        for location in chosen:
            outcome = outcomes.setdefault((api, location.location_id), LocationOutcome(api, location))
            gaps: list[tuple[date, date]] = []
            for variable in variables[api]:
                gaps.extend(_missing(start, end, loaded.get((api, location.location_id, variable), [])))
            # the union of what any variable lacks: those days are fetched with every variable
            merged: list[tuple[date, date]] = []
            for gap_start, gap_end in sorted(gaps):
                if merged and gap_start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], gap_end))
                else:
                    merged.append((gap_start, gap_end))
            seen = {name for (key_api, key_id, name) in loaded if key_api == api and key_id == location.location_id}
            asked = tuple(name for name in catalogue_order[api] if name in seen or name in variables[api])
            missing_days = sum((gap_end - gap_start).days for gap_start, gap_end in merged)
            already += -(-((end - start).days - missing_days) // batch_days)
            for gap_start, gap_end in merged:
                cursor = gap_start
                while cursor < gap_end:
                    batch_end = min(cursor + timedelta(days=batch_days), gap_end)
                    batches.append(Batch(api, location, cursor, batch_end, asked))
                    outcome.batches += 1
                    cursor = batch_end
            if not outcome.batches:
                outcome.status = "up to date"
    return OpenMeteoPlan(batches, already, outcomes)


def failed_locations(connection: db.ConnectionSettings) -> set[tuple[str, int]]:
    """(API, location) pairs whose latest checkpoint says failed."""
    with db.connect(connection) as conn, conn.cursor() as cursor:
        if not db.relation_exists(cursor, DATASET_NAME, "checkpoints"):
            return set()
        cursor.execute(
            f"""
            select distinct on (api, location_id) api, location_id, status
            from {DATASET_NAME}.checkpoints
            order by api, location_id, updated_at desc
            """
        )
        return {(api, int(location_id)) for api, location_id, status in cursor.fetchall() if status == "failed"}
