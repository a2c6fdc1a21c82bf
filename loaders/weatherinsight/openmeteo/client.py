"""The Open-Meteo HTTP client: one request per batch at the provider's pace (the call limiter),
retried on timeouts, 429 and 5xx with backoff; every answer kept, a malformed payload as the reason
it was quarantined."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from weatherinsight.openmeteo.limiter import CallLimiter
from weatherinsight.openmeteo.payload import Block, PayloadError, parse_answer
from weatherinsight.openmeteo.plan import Batch, OpenMeteoRequestError
from weatherinsight.openmeteo.settings import (
    APIS,
    CONNECT_TIMEOUT_SECONDS,
    HTTP_ATTEMPTS,
    HTTP_BACKOFF_SECONDS,
    PIPELINE_NAME,
    READ_TIMEOUT_SECONDS,
    VARIABLES,
)
from weatherinsight.pipelines import source_config

log = logging.getLogger(__name__)


class NotOpenMeteo(OpenMeteoRequestError):
    """The base URL answers, but not like Open-Meteo's API."""


class Retryable(requests.RequestException):
    """HTTP 429 or 5xx: worth another attempt (after ``retry_after`` seconds when the server said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Attempt:
    """One HTTP request as the provider counts it: sent, and how it ended."""

    sent_at: datetime
    outcome: str = "no answer"  # "HTTP 200", "HTTP 500", or the error that ended it ("ReadTimeout")


@dataclass
class Answer:
    batch: Batch
    url: str
    fetched_at: datetime
    tries: list[Attempt] = field(default_factory=list)  # every attempt, failed ones included
    text: str | None = None  # the payload (kept in quarantine when malformed)
    blocks: list[Block] = field(default_factory=list)
    reason: str | None = None  # why it was quarantined
    error: str | None = None  # why every attempt failed

    @property
    def attempts(self) -> int:
        return len(self.tries)

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
        answer = Answer(batch, url, datetime.now(timezone.utc))

        def attempt() -> requests.Response:
            self.limiter.acquire(batch.weight)
            self.sent += 1
            answer.fetched_at = datetime.now(timezone.utc)
            tried = Attempt(answer.fetched_at)
            answer.tries.append(tried)
            try:
                response = self.session.get(url, timeout=self.timeout)
                response.content  # noqa: B018 - read the whole body here, so a cut body is retried
            except requests.RequestException as error:
                tried.outcome = type(error).__name__
                raise
            tried.outcome = f"HTTP {response.status_code}"
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
