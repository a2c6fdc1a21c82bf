"""A client-side limiter that counts calls the way Open-Meteo does.

The provider counts weighted calls (a request with more than 10 variables or more than two weeks
counts as several) per minute, hour and day. The limiter holds each request back until it fits all
three windows (``pyrate-limiter``'s sliding-window log); the hour and day windows start with the
calls the warehouse recorded in the last day, so a rerun does not spend the day's budget twice.
A limit above the free 600 calls a minute is taken as a paid plan: only the minute is limited then.
"""

from __future__ import annotations

import logging
import math
import time

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RateItem

from weatherinsight.openmeteo.settings import FREE_LIMITS

log = logging.getLogger(__name__)

NAME = "openmeteo"


class CallLimiter:
    def __init__(self, calls_per_minute: int, window_scale: float = 1.0) -> None:
        """``calls_per_minute`` at most, and the free plan's hour and day limits where they bind.
        ``window_scale`` is the length of the provider's minute, hour and day as a fraction of real
        ones: 1 for Open-Meteo; a stand-in may count in shorter windows (the tests use 0.1)."""
        minute = int(Duration.MINUTE * window_scale)
        rates = [Rate(calls_per_minute, minute)]
        if calls_per_minute <= FREE_LIMITS["minute"]:
            # the hour and day limits, where they bind: a longer window with a lower rate per minute
            for limit, minutes in ((FREE_LIMITS["hour"], 60), (FREE_LIMITS["day"], 1440)):
                if limit / minutes < calls_per_minute:
                    rates.append(Rate(limit, minute * minutes))
        self.calls_per_minute = calls_per_minute
        self.bucket = InMemoryBucket(rates)
        self.limiter = Limiter(self.bucket)
        self.waited_seconds = 0.0

    def wait_seconds(self, calls: float) -> float:
        """How long ``calls`` weighted calls are held back at most, from an empty budget: a window
        admits its limit at once, then as much again each time the window passes (the time the
        requests themselves take comes on top)."""
        waits = [
            math.ceil(max(0.0, calls - rate.limit) / rate.limit) * rate.interval / 1000 for rate in self.bucket.rates
        ]
        return max(waits, default=0.0)

    @staticmethod
    def _units(weight: float) -> int:
        # the provider counts fractions; the limiter counts whole calls, rounded up (never too few)
        return max(1, math.ceil(weight - 1e-9))

    def remember(self, past: list[tuple[float, float]]) -> None:
        """Count calls made before this run: (seconds ago, weight), oldest first."""
        now = self.bucket.now()
        for seconds_ago, weight in past:
            self.bucket.put(RateItem(NAME, now - int(seconds_ago * 1000), self._units(weight)))

    def acquire(self, weight: float) -> None:
        """Wait until a request of ``weight`` calls fits every window, then count it."""
        units = min(self._units(weight), self.calls_per_minute)
        started = time.monotonic()
        self.limiter.try_acquire(NAME, units)
        waited = time.monotonic() - started
        self.waited_seconds += waited
        if waited > 5:
            log.info("held back %.0f s by the rate limit (%d calls a minute)", waited, self.calls_per_minute)
