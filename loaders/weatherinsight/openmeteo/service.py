"""The Open-Meteo load as one call: plan batches per location from what the warehouse already holds,
fetch them at the provider's pace, and commit them with dlt in chunks, each with a checkpoint per
location.

Per (API, location) the window is cut into batches of ``batch_days`` UTC days, one request each. What
the warehouse already holds is read from ``raw_openmeteo.requests`` (the answers of completed dlt
loads, with the days and variables each covered): a rerun fetches nothing already there, a killed
load resumes each location after its last committed chunk, and a batch fetched within
``PROVISIONAL_DAYS`` of its end is fetched again (the reanalysis revises its last days; the later
fetch wins in the models). Every answer is kept: its rows in ``weather`` / ``air_quality``, the
request in ``requests``, a malformed payload whole in ``quarantine``; ``checkpoints`` gets one row
per location and chunk (status, last loaded hour, rows, requests, last error).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import dlt
import pyarrow as pa
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from weatherinsight import db
from weatherinsight.dwd.service import make_pipeline, state_from_warehouse
from weatherinsight.dwd.settings import source_config
from weatherinsight.errors import RequestError
from weatherinsight.openmeteo.limiter import CallLimiter
from weatherinsight.openmeteo.payload import Block, PayloadError, parse_answer
from weatherinsight.openmeteo.settings import (
    API_ALIASES,
    APIS,
    CONNECT_TIMEOUT_SECONDS,
    DATASET_NAME,
    DEFAULT_RATE_LIMIT,
    HTTP_ATTEMPTS,
    HTTP_BACKOFF_SECONDS,
    PIPELINE_NAME,
    PROVISIONAL_DAYS,
    READ_TIMEOUT_SECONDS,
    VARIABLES,
    Location,
    LocationError,
    Variable,
    base_urls,
    load_locations,
    seeds_folder,
    weighted_calls,
)

log = logging.getLogger(__name__)

LOAD_LOCK = "weatherinsight.load:openmeteo"
#: a chunk is committed (one dlt load with its checkpoints) after this many requests or seconds
#: (``[sources.openmeteo_hourly] commit_every_requests`` / ``commit_every_seconds`` say otherwise)
CHUNK_REQUESTS = 100
CHUNK_SECONDS = 20.0
#: one request with up to 10 variables and 14 days counts as one call at the provider
DEFAULT_BATCH_DAYS = 14


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


@dataclass
class OpenMeteoResult:
    plan: OpenMeteoPlan
    seconds: float = 0.0
    requests: int = 0  # attempts sent, retries included
    waited_seconds: float = 0.0  # time the limiter held requests back
    dry_run: bool = False

    @property
    def outcomes(self) -> list[LocationOutcome]:
        return list(self.plan.outcomes.values())

    @property
    def rows(self) -> int:
        return sum(outcome.rows for outcome in self.outcomes)

    @property
    def failed(self) -> list[LocationOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


class Progress:
    """Told of each finished request; the CLI draws it."""

    def request_done(self, batch: Batch, rows: int) -> None: ...


# -- request parsing --------------------------------------------------------------------------


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


# -- planning ----------------------------------------------------------------------------------


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


# -- fetching ----------------------------------------------------------------------------------


class NotOpenMeteo(OpenMeteoRequestError):
    """The base URL answers, but not like Open-Meteo's API."""


class Retryable(requests.RequestException):
    """HTTP 429 or 5xx: worth another attempt (after ``retry_after`` seconds when the server said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Answer:
    batch: Batch
    url: str
    fetched_at: datetime
    attempts: int
    text: str | None = None  # the payload (kept in quarantine when malformed)
    blocks: list[Block] = field(default_factory=list)
    reason: str | None = None  # why it was quarantined
    error: str | None = None  # why every attempt failed

    @property
    def request_id(self) -> str:
        key = f"{self.url}|{self.fetched_at.isoformat()}"
        return hashlib.sha256(key.encode()).hexdigest()[:24]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Fetcher:
    """Sends each request through the limiter, retrying timeouts, cut connections, 429 (after its
    ``Retry-After``) and 5xx with exponential backoff; other answers are returned as they are."""

    def __init__(self, session: requests.Session, urls: dict[str, str], limiter: CallLimiter) -> None:
        self.session = session
        self.urls = urls
        self.limiter = limiter
        self.attempts = source_config("http_attempts", HTTP_ATTEMPTS, PIPELINE_NAME)
        self.backoff = source_config("http_backoff_seconds", HTTP_BACKOFF_SECONDS, PIPELINE_NAME)
        self.timeout = (
            CONNECT_TIMEOUT_SECONDS,
            source_config("http_timeout_seconds", READ_TIMEOUT_SECONDS, PIPELINE_NAME),
        )
        self.sent = 0

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return error.retry_after
        return min(60.0, self.backoff * 2 ** (state.attempt_number - 1))

    def fetch(self, batch: Batch) -> Answer:
        url = f"{self.urls[batch.api]}{APIS[batch.api].path}?{urlencode(batch.params(), safe=',')}"
        answer = Answer(batch, url, datetime.now(timezone.utc), 0)

        def attempt() -> requests.Response:
            self.limiter.acquire(batch.weight)
            self.sent += 1
            answer.attempts += 1
            answer.fetched_at = datetime.now(timezone.utc)
            response = self.session.get(url, timeout=self.timeout)
            response.content  # noqa: B018 - read the whole body here, so a cut body is retried
            if response.status_code == 429 or response.status_code >= 500:
                raise Retryable(f"HTTP {response.status_code}", _retry_after(response))
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda error: isinstance(error, requests.RequestException)),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s: %s, attempt %d of %d", url, state.outcome.exception(), state.attempt_number, self.attempts
            ),
        )
        try:
            response = retrying(attempt)
        except requests.RequestException as error:
            answer.error = f"{type(error).__name__}: {error}" if not isinstance(error, Retryable) else str(error)
            answer.error = f"{answer.error} after {answer.attempts} attempts"
            return answer
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 404 or "json" not in content_type:
            raise NotOpenMeteo(
                f"{self.urls[batch.api]} does not answer like Open-Meteo's API "
                f"(HTTP {response.status_code}, {content_type or 'no content type'} for {APIS[batch.api].path})"
            )
        answer.text = response.text
        try:
            if response.status_code != 200:
                reason = json.loads(response.text).get("reason") if response.text.startswith("{") else None
                raise PayloadError(f"HTTP {response.status_code}: {reason or response.text[:200]}")
            variables = [VARIABLES[batch.api][name] for name in batch.variables]
            answer.blocks = parse_answer(response.text, [batch.location], variables)
        except PayloadError as error:
            answer.reason = str(error)
        return answer


# -- committing --------------------------------------------------------------------------------


def rows_table(api: str, answers: Sequence[Answer]) -> pa.Table:
    """The hourly rows of ``api`` in ``answers`` as one Arrow table: every variable of the catalogue
    is a column (null where not requested), so the raw table's layout never depends on a request."""
    catalogue: dict[str, Variable] = VARIABLES[api]
    columns: dict[str, list] = {"location_id": [], "observed_at": [], "request_id": [], "fetched_at": []}
    columns.update({name: [] for name in catalogue})
    for answer in answers:
        for block in answer.blocks:
            count = block.row_count
            columns["location_id"].extend([block.location.location_id] * count)
            columns["observed_at"].extend(block.times)
            columns["request_id"].extend([answer.request_id] * count)
            columns["fetched_at"].extend([answer.fetched_at] * count)
            for name in catalogue:
                columns[name].extend(block.columns.get(name) or [None] * count)
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            pa.field("location_id", pa.int64(), nullable=False),
            pa.field("observed_at", stamp, nullable=False),
            pa.field("request_id", pa.string(), nullable=False),
            pa.field("fetched_at", stamp, nullable=False),
            *(pa.field(name, pa.float64()) for name in catalogue),
        ]
    )
    return pa.Table.from_pydict(columns, schema=schema)


def _as_time(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def request_row(answer: Answer) -> dict:
    block = answer.blocks[0] if answer.blocks else None
    batch = answer.batch
    return {
        "request_id": answer.request_id,
        "api": batch.api,
        "product": APIS[batch.api].product,
        "location_id": batch.location.location_id,
        "window_start": _as_time(batch.start),
        "window_end": _as_time(batch.end),
        "variables": ",".join(batch.variables),
        "url": answer.url,
        "fetched_at": answer.fetched_at,
        "attempts": answer.attempts,
        "weighted_calls": batch.weight,
        "latitude": block.latitude if block else None,
        "longitude": block.longitude if block else None,
        "elevation": block.elevation if block else None,
        "timezone": block.timezone if block else None,
        "utc_offset_seconds": block.utc_offset_seconds if block else None,
        "units": json.dumps(block.units, ensure_ascii=False, sort_keys=True) if block else None,
        "row_count": block.row_count if block else 0,
        "first_observed_at": block.times[0] if block and block.times else None,
        "last_observed_at": block.times[-1] if block and block.times else None,
    }


def quarantine_row(answer: Answer) -> dict:
    batch = answer.batch
    return {
        "request_id": answer.request_id,
        "api": batch.api,
        "location_id": batch.location.location_id,
        "window_start": _as_time(batch.start),
        "window_end": _as_time(batch.end),
        "url": answer.url,
        "fetched_at": answer.fetched_at,
        "weighted_calls": batch.weight,
        "reason": answer.reason,
        "payload": answer.text,
    }


def checkpoint_row(outcome: LocationOutcome, run_id: str) -> dict:
    return {
        "api": outcome.api,
        "location_id": outcome.location.location_id,
        "run_id": run_id,
        "status": outcome.status,
        "last_loaded_hour": outcome.last_loaded_hour,
        "rows": outcome.rows,
        "requests": outcome.requests,
        "weighted_calls": round(outcome.weighted, 3),
        "quarantined": outcome.quarantined,
        "last_error": outcome.last_error,
        "updated_at": datetime.now(timezone.utc),
    }


def _schema(**columns: str) -> pa.Schema:
    """An Arrow schema from ``name="type"`` (``"type?"``: nullable): dlt creates the raw table from
    it, so every table exists with its full layout after the first load, rows or not."""
    types = {
        "text": pa.string(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema(
        [pa.field(name, types[kind.rstrip("?")], nullable=kind.endswith("?")) for name, kind in columns.items()]
    )


REQUESTS_SCHEMA = _schema(
    request_id="text",
    api="text",
    product="text",
    location_id="bigint",
    window_start="timestamptz",
    window_end="timestamptz",
    variables="text",
    url="text",
    fetched_at="timestamptz",
    attempts="bigint",
    weighted_calls="double",
    latitude="double?",
    longitude="double?",
    elevation="double?",
    timezone="text?",
    utc_offset_seconds="bigint?",
    units="text?",
    row_count="bigint",
    first_observed_at="timestamptz?",
    last_observed_at="timestamptz?",
)
QUARANTINE_SCHEMA = _schema(
    request_id="text",
    api="text",
    location_id="bigint",
    window_start="timestamptz",
    window_end="timestamptz",
    url="text",
    fetched_at="timestamptz",
    weighted_calls="double",
    reason="text",
    payload="text?",
)
CHECKPOINTS_SCHEMA = _schema(
    api="text",
    location_id="bigint",
    run_id="text",
    status="text",
    last_loaded_hour="timestamptz?",
    rows="bigint",
    requests="bigint",
    weighted_calls="double",
    quarantined="bigint",
    last_error="text?",
    updated_at="timestamptz",
)


@dlt.source(name=PIPELINE_NAME, max_table_nesting=0)
def openmeteo_chunk(answers: Sequence[Answer], checkpoints: Sequence[dict]) -> list:
    """One committed chunk: the answers' rows, requests and quarantined payloads, and a checkpoint
    per location it touched (all in one dlt load, so they land together or not at all). Every table
    is yielded, empty or not, so all exist after the first load (dbt's sources must resolve)."""
    loaded = [answer for answer in answers if answer.blocks]
    tables = {
        APIS[api].product: rows_table(api, [answer for answer in loaded if answer.batch.api == api]) for api in APIS
    }
    tables["requests"] = pa.Table.from_pylist([request_row(answer) for answer in loaded], schema=REQUESTS_SCHEMA)
    tables["quarantine"] = pa.Table.from_pylist(
        [quarantine_row(answer) for answer in answers if answer.reason is not None], schema=QUARANTINE_SCHEMA
    )
    tables["checkpoints"] = pa.Table.from_pylist(list(checkpoints), schema=CHECKPOINTS_SCHEMA)
    return [dlt.resource([table], name=name, write_disposition="append") for name, table in tables.items()]


def _record(outcome: LocationOutcome, answer: Answer) -> None:
    outcome.requests += answer.attempts
    outcome.weighted += answer.attempts * answer.batch.weight
    if answer.error is not None:
        outcome.status, outcome.last_error = "failed", answer.error
        return
    if answer.reason is not None:
        outcome.quarantined += 1
        outcome.last_error = f"quarantined: {answer.reason}"
    if answer.blocks:
        outcome.answered += 1
    for block in answer.blocks:
        outcome.rows += block.row_count
        if block.times and (outcome.last_loaded_hour is None or block.times[-1] > outcome.last_loaded_hour):
            outcome.last_loaded_hour = block.times[-1]
    if outcome.status != "failed":
        outcome.status = "running"


def _chunks(
    plan: OpenMeteoPlan, fetcher: Fetcher, progress: Progress, fetched: dict[Batch, Answer]
) -> Iterator[tuple[list[Answer], list[LocationOutcome]]]:
    """Fetch the plan's batches, yielding chunks to commit: after ``CHUNK_REQUESTS`` answers or
    ``CHUNK_SECONDS``, and at the end. A location whose batch fails every attempt is given up for
    this run (its checkpoint says why); the others go on."""
    answers: list[Answer] = []
    touched: dict[tuple[str, int], LocationOutcome] = {}
    every_requests = source_config("commit_every_requests", CHUNK_REQUESTS, PIPELINE_NAME)
    every_seconds = source_config("commit_every_seconds", CHUNK_SECONDS, PIPELINE_NAME)
    started = time.monotonic()
    remaining: dict[tuple[str, int], int] = {}
    for batch in plan.batches:
        remaining[(batch.api, batch.location.location_id)] = (
            remaining.get((batch.api, batch.location.location_id), 0) + 1
        )
    for batch in plan.batches:
        key = (batch.api, batch.location.location_id)
        outcome = plan.outcomes[key]
        remaining[key] -= 1
        if outcome.status == "failed":
            progress.request_done(batch, 0)
            continue
        answer = fetched.pop(batch, None) or fetcher.fetch(batch)
        _record(outcome, answer)
        if remaining[key] == 0 and outcome.status == "running":
            outcome.status = "ok"
        answers.append(answer)
        touched[key] = outcome
        progress.request_done(batch, sum(block.row_count for block in answer.blocks))
        if len(answers) >= every_requests or time.monotonic() - started >= every_seconds:
            yield answers, list(touched.values())
            answers, touched, started = [], {}, time.monotonic()
    if answers or touched:
        yield answers, list(touched.values())


def load_openmeteo(
    connection: db.ConnectionSettings,
    apis: Sequence[str],
    location_ids: str | None,
    start: date,
    end: date,
    variables: str | None = None,
    batch_days: int = DEFAULT_BATCH_DAYS,
    rate_limit: int = DEFAULT_RATE_LIMIT,
    base_url: str | None = None,
    dry_run: bool = False,
    reset_failed: bool = False,
    progress_factory: Callable[[OpenMeteoPlan], Progress] | None = None,
    pipelines_dir: str | Path | None = None,
    session: requests.Session | None = None,
) -> OpenMeteoResult:
    """Load ``apis`` for the locations (all configured ones unless listed) over the UTC days
    [start, end) into ``raw_openmeteo``."""
    started = time.perf_counter()
    if batch_days < 1:
        raise OpenMeteoRequestError(f"--batch-days must be at least 1, not {batch_days}")
    if rate_limit < 1:
        raise OpenMeteoRequestError(f"--rate-limit must be at least 1 call a minute, not {rate_limit}")
    check_window(start, end, apis)
    chosen = parse_locations(location_ids, apis, configured_locations())
    if variables and len(apis) > 1:
        raise OpenMeteoRequestError("--variables names one API's variables: give one --api with it")
    wanted = {api: parse_variables(variables, api) for api in apis}
    db.connect(connection).close()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    with db.advisory_lock(connection, LOAD_LOCK, on_wait=lambda: log.warning("waiting for another Open-Meteo load")):
        pipeline = make_pipeline(connection, pipelines_dir, PIPELINE_NAME, DATASET_NAME)
        if not dry_run:
            pipeline = state_from_warehouse(pipeline)
        if reset_failed:
            failed = failed_locations(connection)
            chosen = {api: [loc for loc in locs if (api, loc.location_id) in failed] for api, locs in chosen.items()}
        plan = plan_batches(chosen, wanted, start, end, batch_days, loaded_ranges(connection))
        result = OpenMeteoResult(plan=plan, dry_run=dry_run)
        if dry_run or not plan.batches:
            result.seconds = time.perf_counter() - started
            return result
        limiter = CallLimiter(rate_limit, source_config("limit_window_scale", 1.0, PIPELINE_NAME))
        limiter.remember(past_calls(connection))
        fetcher = Fetcher(session or requests.Session(), base_urls(base_url), limiter)
        # each API's first request before anything is drawn or written: a server that is not
        # Open-Meteo is a usage error (one line, exit 2), not a quarantined answer per request
        fetched: dict[Batch, Answer] = {}
        for api in dict.fromkeys(batch.api for batch in plan.batches):
            first = next(batch for batch in plan.batches if batch.api == api)
            fetched[first] = fetcher.fetch(first)
        progress = progress_factory(plan) if progress_factory else Progress()
        for answers, touched in _chunks(plan, fetcher, progress, fetched):
            pipeline.run(openmeteo_chunk(answers, [checkpoint_row(outcome, run_id) for outcome in touched]))
        result.requests = fetcher.sent
        result.waited_seconds = limiter.waited_seconds
    result.seconds = time.perf_counter() - started
    return result


def past_calls(connection: db.ConnectionSettings) -> list[tuple[float, float]]:
    """(seconds ago, weighted calls) of the answers the warehouse kept from the last day: the
    provider's day and hour limits count them too."""
    with db.connect(connection) as conn, conn.cursor() as cursor:
        parts = [
            f"select fetched_at, weighted_calls from {DATASET_NAME}.{table}"
            for table in ("requests", "quarantine")
            if db.relation_exists(cursor, DATASET_NAME, table)
        ]
        if not parts:
            return []
        cursor.execute(
            f"""
            select extract(epoch from now() - fetched_at), weighted_calls
            from ({" union all ".join(parts)}) as calls
            where fetched_at > now() - interval '1 day'
            order by fetched_at
            """
        )
        return [(float(ago), float(weight)) for ago, weight in cursor.fetchall()]


def request_budget(
    connection: db.ConnectionSettings,
    apis: Sequence[str],
    location_ids: Sequence[int] | None,
    start: date,
    end: date,
    batch_days: int = DEFAULT_BATCH_DAYS,
) -> OpenMeteoPlan:
    """The requests a load of ``apis`` over [start, end) would still send (read only: for estimates)."""
    text = ",".join(map(str, location_ids)) if location_ids else None
    chosen = parse_locations(text, apis, configured_locations())
    wanted = {api: parse_variables(None, api) for api in apis}
    return plan_batches(chosen, wanted, start, end, batch_days, loaded_ranges(connection))
