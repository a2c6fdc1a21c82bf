"""Open-Meteo's columnar JSON answers, checked and turned into hourly rows in UTC.

An answer is an object (one location) or an array of objects (several coordinates in one call):
``latitude, longitude, elevation, utc_offset_seconds, timezone, hourly: {time: [...], <variable>:
[...]}, hourly_units: {...}``. ``time`` holds local times of the requested time zone without an
offset (``2025-01-10T00:00``; the offset is only in ``utc_offset_seconds``) or, with
``timeformat=unixtime``, seconds since the epoch. Values are converted to the catalogue's units
(``seeds/openmeteo_variables.csv``) where the answer names another one (``kn``, ``km/h``, ``°F``…).
Times become UTC instants as the offset says: a +9:30 zone's hours start at half past in UTC (the
loader itself asks for GMT, whose hours are UTC hours).
Anything that cannot be read whole raises :class:`PayloadError` with the reason, and the loader
quarantines the payload.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from weatherinsight.openmeteo.settings import COORDINATE_TOLERANCE_DEGREES, Location, Variable

#: value in the answer's unit -> value in the catalogue's unit
CONVERSIONS = {
    ("km/h", "m/s"): lambda value: value / 3.6,
    ("kn", "m/s"): lambda value: value * 1852 / 3600,
    ("mp/h", "m/s"): lambda value: value * 0.44704,
    ("mph", "m/s"): lambda value: value * 0.44704,
    ("°F", "°C"): lambda value: (value - 32) * 5 / 9,
    ("inch", "mm"): lambda value: value * 25.4,
}
#: spellings of one unit
UNIT_SPELLINGS = {"ug/m3": "μg/m³", "µg/m³": "μg/m³", "m/s": "m/s", "ms": "m/s"}


class PayloadError(ValueError):
    """An answer that cannot be read whole; the message is the reason kept in quarantine."""


@dataclass
class Block:
    """One location's part of an answer, as rows in UTC."""

    location: Location
    latitude: float
    longitude: float
    elevation: float | None
    timezone: str
    utc_offset_seconds: int
    units: dict[str, str]
    variables: list[str]
    times: list[datetime] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return len(self.times)


def parse_answer(text: str | bytes, locations: Sequence[Location], variables: Sequence[Variable]) -> list[Block]:
    """The answer to a request for ``variables`` at ``locations`` (in request order), one block per
    location, or :class:`PayloadError`."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(f"invalid JSON: {error}") from None
    if isinstance(document, dict) and document.get("error"):
        raise PayloadError(f"error body: {document.get('reason') or 'no reason given'}")
    blocks = document if isinstance(document, list) else [document]
    if len(blocks) != len(locations):
        raise PayloadError(f"{len(blocks)} locations in the answer to a request for {len(locations)}")
    return [_parse_block(block, location, variables) for block, location in zip(blocks, locations, strict=True)]


def _number(block: dict, key: str, required: bool = True) -> float | None:
    value = block.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PayloadError(f"{key} is {value!r}, not a number")
    return float(value)


def _parse_block(block: object, location: Location, variables: Sequence[Variable]) -> Block:
    if not isinstance(block, dict):
        raise PayloadError(f"an answer element is {type(block).__name__}, not an object")
    if block.get("error"):
        raise PayloadError(f"error body: {block.get('reason') or 'no reason given'}")
    latitude, longitude = _number(block, "latitude"), _number(block, "longitude")
    if (
        abs(latitude - location.latitude) > COORDINATE_TOLERANCE_DEGREES
        or abs(longitude - location.longitude) > COORDINATE_TOLERANCE_DEGREES
    ):
        raise PayloadError(
            f"answer for {latitude:g},{longitude:g}, not for location {location.location_id} "
            f"at {location.latitude:g},{location.longitude:g}"
        )
    offset = _number(block, "utc_offset_seconds")
    if offset != int(offset) or abs(offset) > 18 * 3600:
        raise PayloadError(f"utc_offset_seconds {offset:g} is not a UTC offset")
    hourly, units = block.get("hourly"), block.get("hourly_units") or {}
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise PayloadError("no hourly.time array")
    if not isinstance(units, dict):
        raise PayloadError("hourly_units is not an object")
    times = hourly["time"]
    parsed = Block(
        location=location,
        latitude=latitude,
        longitude=longitude,
        elevation=_number(block, "elevation", required=False),
        timezone=str(block.get("timezone") or ""),
        utc_offset_seconds=int(offset),
        units={str(key): str(value) for key, value in units.items()},
        variables=[variable.name for variable in variables],
    )
    for variable in variables:
        values = hourly.get(variable.name)
        if not isinstance(values, list):
            raise PayloadError(f"variable {variable.name} is missing from hourly")
        if len(values) != len(times):
            raise PayloadError(f"arrays of unequal length: time has {len(times)}, {variable.name} has {len(values)}")
        parsed.columns[variable.name] = _values(variable, values, units.get(variable.name), times)
    parsed.times = _utc_times(times, int(offset))
    return parsed


def _utc_times(times: list, offset_seconds: int) -> list[datetime]:
    shift = timedelta(seconds=offset_seconds)
    result = []
    for position, value in enumerate(times):
        try:
            if isinstance(value, int) and not isinstance(value, bool):
                moment = datetime.fromtimestamp(value, tz=timezone.utc)
            elif isinstance(value, str):
                moment = (datetime.fromisoformat(value) - shift).replace(tzinfo=timezone.utc)
            else:
                raise ValueError
        except (ValueError, OverflowError, OSError):
            raise PayloadError(f"time[{position}] {value!r} is not a time") from None
        if result and moment <= result[-1]:
            raise PayloadError(f"time[{position}] {value!r} repeats or goes back")
        result.append(moment)
    return result


def _values(variable: Variable, values: list, unit: str | None, times: list) -> list[float | None]:
    unit = UNIT_SPELLINGS.get(unit, unit) if unit is not None else variable.unit
    wanted = UNIT_SPELLINGS.get(variable.unit, variable.unit)
    convert = None
    if unit != wanted:
        convert = CONVERSIONS.get((unit, wanted))
        if convert is None:
            raise PayloadError(f"{variable.name} is in {unit!r}, which cannot be read as {variable.unit!r}")
    low, high = variable.bounds
    result: list[float | None] = []
    for position, value in enumerate(values):
        if value is None:
            result.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PayloadError(f"{variable.name}[{position}] {value!r} is not a number")
        number = convert(float(value)) if convert else float(value)
        if not low <= number <= high:
            raise PayloadError(
                f"{variable.name} {number:g} {variable.unit} at {times[position]} is outside {low:g}..{high:g}"
            )
        result.append(number)
    return result
