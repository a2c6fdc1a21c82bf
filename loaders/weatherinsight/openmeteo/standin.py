"""A local stand-in for Open-Meteo's Historical Weather and Air Quality APIs, for tests and the demo.

It answers the real query parameters (``latitude``, ``longitude`` — several, comma-separated —
``hourly``, ``start_date``, ``end_date``, ``timezone`` GMT/UTC, ``wind_speed_unit``) on
``/v1/archive`` and ``/v1/air-quality`` with answers shaped exactly like the recorded ones in
``tests/fixtures/openmeteo/`` (grid-cell coordinates, ``generationtime_ms``, ``hourly_units``,
columnar ``hourly`` arrays; an array for several coordinates), with generated values: smooth daily
and seasonal cycles, the same for the same place and hour, shifted by ``revision`` (the provider
revising its reanalysis). Bad parameters answer HTTP 400 ``{"error": true, "reason": …}`` as the
provider does. Faults are injected on request (:meth:`StandIn.inject`): 429 with ``Retry-After``,
500, a slow answer, a cut connection, invalid JSON, an error body, another place's coordinates,
arrays of unequal length, an HTML page. Every request is counted with the weight the provider
would give it, so tests can check the calls per minute.

Run on its own: ``weatherinsight standin openmeteo --port 8766``.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from weatherinsight.openmeteo.settings import APIS, VARIABLES, weighted_calls

#: (mean, daily amplitude, seasonal amplitude, decimals) of the generated values per variable
SHAPES = {
    "temperature_2m": (10.0, 4.0, 9.0, 1),
    "relative_humidity_2m": (75.0, 12.0, 5.0, 0),
    "dew_point_2m": (5.0, 1.5, 6.0, 1),
    "precipitation": (-0.6, 0.9, 0.3, 1),
    "surface_pressure": (1005.0, 1.0, 6.0, 1),
    "pressure_msl": (1014.0, 1.0, 6.0, 1),
    "cloud_cover": (60.0, 25.0, 15.0, 0),
    "wind_speed_10m": (4.5, 1.5, 1.5, 2),
    "wind_direction_10m": (200.0, 60.0, 40.0, 0),
    "wind_gusts_10m": (9.0, 3.0, 3.0, 2),
    "et0_fao_evapotranspiration": (0.1, 0.15, 0.05, 2),
    "wet_bulb_temperature_2m": (7.0, 3.0, 7.0, 1),
    "pm2_5": (12.0, 5.0, 6.0, 1),
    "pm10": (18.0, 7.0, 8.0, 1),
    "nitrogen_dioxide": (15.0, 8.0, 5.0, 1),
    "ozone": (55.0, 20.0, 15.0, 0),
    "european_aqi": (30.0, 10.0, 10.0, 0),
    "carbon_monoxide": (200.0, 40.0, 50.0, 0),
    "sulphur_dioxide": (2.0, 1.0, 0.5, 1),
}
PATHS = {api.path: name for name, api in APIS.items()}
API_TYPES = {"weather": "Weather", "air_quality": "AirQuality"}


@dataclass
class Fault:
    kind: str
    remaining: int
    when: Callable[[dict[str, str]], bool] | None = None
    seconds: float = 0.0
    reason: str = "injected error"


@dataclass
class Call:
    at: float  # time.monotonic() when the request arrived
    path: str
    params: dict[str, str]
    weight: float
    fault: str | None = None


@dataclass
class StandIn:
    """The stand-in server; a context manager that serves on 127.0.0.1 while it lasts."""

    host: str = "127.0.0.1"
    port: int = 0
    revision: int = 0
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: http.server.ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def inject(
        self,
        kind: str,
        times: int = 1,
        when: Callable[[dict[str, str]], bool] | None = None,
        seconds: float = 0.0,
        reason: str = "injected error",
    ) -> None:
        """Answer the next ``times`` requests matching ``when`` with a fault: ``429`` (with
        ``Retry-After: seconds``), ``500``, ``slow`` (wait ``seconds`` first), ``cut`` (close the
        connection half-way through the body), ``invalid_json``, ``error_body`` (HTTP 400 with
        ``reason``), ``other_coordinates``, ``unequal_arrays`` or ``html``."""
        with self.lock:
            self.faults.append(Fault(kind, times, when, seconds, reason))

    def max_calls_within(self, seconds: float = 60.0) -> float:
        """The most weighted calls the server received within any ``seconds``."""
        times = sorted((call.at, call.weight) for call in self.calls)
        best, first, total = 0.0, 0, 0.0
        for at, weight in times:
            total += weight
            while times[first][0] <= at - seconds:
                total -= times[first][1]
                first += 1
            best = max(best, total)
        return best

    def _take_fault(self, params: dict[str, str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and (fault.when is None or fault.when(params)):
                    fault.remaining -= 1
                    return fault
        return None

    def __enter__(self) -> StandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        self.server = http.server.ThreadingHTTPServer((self.host, self.port), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class BadRequest(ValueError):
    pass


def _grid(value: float, step: float) -> float:
    """Coordinates of the model's grid cell, with the float noise the real answers show."""
    return round(round(value / step) * step, 6) + 3e-6 if value else 0.0


def generated_value(variable: str, latitude: float, longitude: float, hour: int, revision: int) -> float:
    """The stand-in's value of ``variable`` at a place and hour (hours since the epoch)."""
    mean, daily, seasonal, decimals = SHAPES[variable]
    phase = (latitude * 7.0 + longitude * 3.0) % (2 * math.pi)
    day_part = math.sin(2 * math.pi * (hour % 24) / 24 + phase)
    season = math.cos(2 * math.pi * (hour / 24 - 200) / 365.25) * (1 if latitude >= 0 else -1)
    wobble = math.sin(hour * 0.37 + phase * 5)  # weather: neither daily nor seasonal
    value = mean + daily * day_part + seasonal * season + daily * 0.5 * wobble + 0.1 * revision
    low, high = VARIABLES_BOUNDS[variable]
    return round(min(high, max(low, value)), decimals)


VARIABLES_BOUNDS = {name: variable.bounds for api in VARIABLES.values() for name, variable in api.items()}


def answer(api: str, params: dict[str, str], revision: int) -> object:
    """The JSON document the provider would answer to ``params`` (raises :class:`BadRequest`)."""
    try:
        latitudes = [float(value) for value in params["latitude"].split(",")]
        longitudes = [float(value) for value in params["longitude"].split(",")]
    except (KeyError, ValueError):
        raise BadRequest("Parameter 'latitude' and 'longitude' must be given as floating point numbers") from None
    if len(latitudes) != len(longitudes):
        raise BadRequest("Parameter 'latitude' and 'longitude' must have the same number of elements")
    for latitude, longitude in zip(latitudes, longitudes, strict=True):
        if not -90 <= latitude <= 90:
            raise BadRequest(f"Latitude must be in range of -90 to 90°. Given: {latitude}.")
        if not -180 <= longitude <= 180:
            raise BadRequest(f"Longitude must be in range of -180 to 180°. Given: {longitude}.")
    try:
        first = date.fromisoformat(params["start_date"])
        last = date.fromisoformat(params["end_date"])
    except (KeyError, ValueError):
        raise BadRequest("Parameter 'start_date' and 'end_date' must be dates in the form yyyy-mm-dd") from None
    if last < first:
        raise BadRequest("End-date must be larger or equals than start-date")
    if first < APIS[api].first_day:
        raise BadRequest(f"Parameter 'start_date' is out of allowed range from {APIS[api].first_day} to {last}")
    if params.get("timezone", "GMT").upper() not in ("GMT", "UTC"):
        raise BadRequest("The stand-in answers in GMT only")
    names = [name for name in params.get("hourly", "").split(",") if name]
    for name in names:
        if name not in VARIABLES[api]:
            raise BadRequest(
                f"Cannot initialize {API_TYPES[api]}Variable from invalid String value {name} for key hourly"
            )
    wind_unit = {"ms": "m/s", "kn": "kn", "mph": "mp/h"}.get(params.get("wind_speed_unit", "kmh"), "km/h")
    step = 0.25 if api == "weather" else 0.1
    start_hour = int(datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()) // 3600
    hours = range(start_hour, start_hour + ((last - first).days + 1) * 24)
    documents = []
    for index, (latitude, longitude) in enumerate(zip(latitudes, longitudes, strict=True)):
        units = {"time": "iso8601"}
        hourly: dict[str, list] = {
            "time": [(datetime(1970, 1, 1) + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M") for hour in hours]
        }
        for name in names:
            unit = VARIABLES[api][name].unit
            scale = 1.0
            if unit == "m/s" and wind_unit != "m/s":
                unit, scale = wind_unit, {"km/h": 3.6, "kn": 3600 / 1852, "mp/h": 1 / 0.44704}[wind_unit]
            units[name] = unit
            hourly[name] = [
                round(generated_value(name, latitude, longitude, hour, revision) * scale, 2) for hour in hours
            ]
        document = {
            "latitude": _grid(latitude, step),
            "longitude": _grid(longitude, step),
            "generationtime_ms": 0.5,
            "utc_offset_seconds": 0,
            "timezone": "GMT",
            "timezone_abbreviation": "GMT",
            "elevation": round(abs(latitude * 3 + longitude) % 500, 1),
        }
        if index:
            document["location_id"] = index
        document.update({"hourly_units": units, "hourly": hourly})
        documents.append(document)
    return documents if len(documents) > 1 else documents[0]


class _Handler(http.server.BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence the access log
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a read timeout)
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        params = {key: values[-1] for key, values in parse_qs(url.query).items()}
        api = PATHS.get(url.path)
        if api is None:
            self._send(404, b"<html><body>Not Found</body></html>", "text/html")
            return
        variables = len([name for name in params.get("hourly", "").split(",") if name]) or 1
        try:
            days = (date.fromisoformat(params["end_date"]) - date.fromisoformat(params["start_date"])).days + 1
        except (KeyError, ValueError):
            days = 1
        fault = self.standin._take_fault(params)
        places = len(params.get("latitude", "0").split(","))
        with self.standin.lock:
            self.standin.calls.append(
                Call(time.monotonic(), url.path, params, weighted_calls(variables, days, places), fault and fault.kind)
            )
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "429":
            body = json.dumps(
                {"error": True, "reason": "Minutely API request limit exceeded. Please try again in one minute."}
            )
            self._send(429, body.encode(), Retry_After=f"{fault.seconds:g}")
            return
        if fault is not None and fault.kind == "500":
            self._send(500, b'{"error":true,"reason":"Internal Server Error"}')
            return
        if fault is not None and fault.kind == "error_body":
            self._send(400, json.dumps({"error": True, "reason": fault.reason}).encode())
            return
        if fault is not None and fault.kind == "html":
            self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
            return
        try:
            document = answer(api, params, self.standin.revision)
        except BadRequest as error:
            self._send(400, json.dumps({"error": True, "reason": str(error)}).encode())
            return
        if fault is not None and fault.kind == "other_coordinates" and isinstance(document, dict):
            document["latitude"], document["longitude"] = -document["latitude"], document["longitude"] + 90
        if fault is not None and fault.kind == "unequal_arrays" and isinstance(document, dict):
            for name, values in document["hourly"].items():
                if name != "time":
                    document["hourly"][name] = values[:-1]
                    break
        body = json.dumps(document, separators=(",", ":")).encode()
        if fault is not None and fault.kind == "invalid_json":
            body = body[: len(body) // 2] + b"<!-- upstream timeout -->"
        if fault is not None and fault.kind == "cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, body)
