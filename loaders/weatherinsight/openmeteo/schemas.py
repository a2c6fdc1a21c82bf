"""What an Open-Meteo chunk stores: the Arrow tables of the answers' rows (``weather`` /
``air_quality``), the requests, quarantined payloads and per-location checkpoints, with their
fixed schemas (so every table exists after the first load, with its types)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timezone

import pyarrow as pa

from weatherinsight.openmeteo.client import Answer
from weatherinsight.openmeteo.plan import LocationOutcome
from weatherinsight.openmeteo.settings import (
    APIS,
    VARIABLES,
    Variable,
)


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


def attempt_rows(answer: Answer) -> list[dict]:
    """One row per HTTP attempt of ``answer`` (failed ones too): what the provider counts against
    the minute, hour and day limits, so the next run's limiter starts from it."""
    batch = answer.batch
    return [
        {
            "request_id": answer.request_id,
            "api": batch.api,
            "location_id": batch.location.location_id,
            "attempt": number,
            "sent_at": tried.sent_at,
            "weighted_calls": batch.weight,
            "outcome": tried.outcome,
        }
        for number, tried in enumerate(answer.tries, start=1)
    ]


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


ATTEMPTS_SCHEMA = _schema(
    request_id="text",
    api="text",
    location_id="bigint",
    attempt="bigint",
    sent_at="timestamptz",
    weighted_calls="double",
    outcome="text",
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
