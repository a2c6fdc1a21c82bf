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

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import requests

from weatherinsight import db
from weatherinsight.openmeteo import openmeteo_chunk
from weatherinsight.openmeteo.client import Answer, Fetcher
from weatherinsight.openmeteo.limiter import WINDOWS, CallLimiter
from weatherinsight.openmeteo.plan import (
    DEFAULT_BATCH_DAYS,
    Batch,
    LocationOutcome,
    OpenMeteoPlan,
    OpenMeteoRequestError,
    check_window,
    configured_locations,
    failed_locations,
    loaded_ranges,
    parse_locations,
    parse_variables,
    plan_batches,
)
from weatherinsight.openmeteo.schemas import checkpoint_row
from weatherinsight.openmeteo.settings import (
    DATASET_NAME,
    DEFAULT_RATE_LIMIT,
    PIPELINE_NAME,
    base_urls,
)
from weatherinsight.pipelines import make_pipeline, source_config, state_from_warehouse

log = logging.getLogger(__name__)


LOAD_LOCK = "weatherinsight.load:openmeteo"


#: a chunk is committed (one dlt load with its checkpoints) after this many requests or seconds
#: (``[sources.openmeteo_hourly] commit_every_requests`` / ``commit_every_seconds`` say otherwise)
CHUNK_REQUESTS = 100


CHUNK_SECONDS = 20.0


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
        pipeline = make_pipeline(connection, PIPELINE_NAME, DATASET_NAME, pipelines_dir)
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
        limiter = make_limiter(rate_limit)
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


def make_limiter(rate_limit: int = DEFAULT_RATE_LIMIT) -> CallLimiter:
    """The limiter of a load at ``rate_limit`` calls a minute, with the plan's hour and day limits
    (``[sources.openmeteo_hourly] calls_per_hour`` / ``calls_per_day``; the free plan's unless set)."""
    given = {window: source_config(f"calls_per_{window}", 0, PIPELINE_NAME) for window in ("hour", "day")}
    return CallLimiter(
        rate_limit,
        source_config("limit_window_scale", 1.0, PIPELINE_NAME),
        given["hour"] or None,
        given["day"] or None,
    )


def past_calls(connection: db.ConnectionSettings, seconds: float = 86_400) -> list[tuple[float, float]]:
    """(seconds ago, weighted calls) of every attempt the warehouse recorded in the last ``seconds``
    (a day), oldest first: the provider's limits count failed attempts too. Answers loaded before
    attempts were recorded count from ``requests`` (times their attempts) and ``quarantine``."""
    with db.connect(connection) as conn, conn.cursor() as cursor:
        tables = ("attempts", "requests", "quarantine")
        has = {table: db.relation_exists(cursor, DATASET_NAME, table) for table in tables}
        # an answer's last attempt was sent when it was fetched: recent answers have recent attempts
        recorded = (
            f"select request_id from {DATASET_NAME}.attempts where sent_at > now() - make_interval(secs => %(secs)s)"
            if has["attempts"]
            else "select null where false"
        )
        parts = []
        if has["attempts"]:
            parts.append(f"select sent_at as at, weighted_calls as weight from {DATASET_NAME}.attempts")
        if has["requests"]:
            parts.append(
                f"select fetched_at as at, weighted_calls * attempts as weight from {DATASET_NAME}.requests"
                f" where request_id not in ({recorded})"
            )
        if has["quarantine"]:
            parts.append(
                f"select fetched_at as at, weighted_calls as weight from {DATASET_NAME}.quarantine"
                f" where request_id not in ({recorded})"
            )
        if not parts:
            return []
        cursor.execute(
            f"""
            select extract(epoch from now() - at), weight
            from ({" union all ".join(parts)}) as calls
            where at > now() - make_interval(secs => %(secs)s)
            order by at
            """,
            {"secs": seconds},
        )
        return [(float(ago), float(weight)) for ago, weight in cursor.fetchall()]


@dataclass
class Budget:
    """The provider's limits and how much of each window the recorded attempts already used."""

    limits: dict[str, int]
    used: dict[str, float]
    failed_today: int  # attempts of the last day without an answer the warehouse kept

    def describe(self) -> str:
        parts = [f"{self.used[name]:,.1f} of {limit:,} calls in the last {name}" for name, limit in self.limits.items()]
        failed = f" ({self.failed_today:,} failed attempts among them)"
        return "provider budget used: " + ", ".join(reversed(parts)) + failed


def budget_used(connection: db.ConnectionSettings, rate_limit: int = DEFAULT_RATE_LIMIT) -> Budget:
    """How much of the provider's minute, hour and day the recorded attempts used (read only)."""
    limiter = make_limiter(rate_limit)
    scale = source_config("limit_window_scale", 1.0, PIPELINE_NAME)
    past = past_calls(connection)
    used = {
        window: sum(weight for ago, weight in past if ago < WINDOWS[window] * 60 * scale) for window in limiter.limits
    }
    failed = 0
    with db.connect(connection) as conn, conn.cursor() as cursor:
        if db.relation_exists(cursor, DATASET_NAME, "attempts"):
            cursor.execute(
                f"select count(*) from {DATASET_NAME}.attempts"
                " where sent_at > now() - interval '1 day' and outcome <> 'HTTP 200'"
            )
            failed = cursor.fetchone()[0]
    return Budget(limiter.limits, used, failed)


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
