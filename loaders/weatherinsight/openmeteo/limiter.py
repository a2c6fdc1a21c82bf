"""A client-side limiter that counts calls the way Open-Meteo does.

The provider counts weighted calls (a request with more than 10 variables or more than two weeks
counts as several) per minute, hour and day. The limiter holds each request back until it fits all
three windows (``pyrate-limiter``'s sliding-window log). Every window starts with the attempts the
warehouse recorded in the last day (``raw_openmeteo.attempts``: failed ones too, as the provider
counts them), so a rerun after a day of retries does not spend the day's budget twice. A limit above
the free 600 calls a minute is taken as a paid plan: only the minute is limited then, unless
``[sources.openmeteo_hourly] calls_per_hour`` / ``calls_per_day`` give the plan's other limits.
"""

from __future__ import annotations

import logging
import math
import time

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RateItem

from weatherinsight.openmeteo.settings import FREE_LIMITS

log = logging.getLogger(__name__)

NAME = "openmeteo"


#: the provider's windows, in minutes
WINDOWS = {"minute": 1, "hour": 60, "day": 1440}


def plan_limits(calls_per_minute: int, hour: int | None = None, day: int | None = None) -> dict[str, int]:
    """The limits to hold per window: ``calls_per_minute``, and the hour and day limits given (a
    plan's) or else the free plan's — none for a paid plan (above the free minute limit)."""
    limits = {"minute": calls_per_minute}
    free = calls_per_minute <= FREE_LIMITS["minute"]
    for window, given in (("hour", hour), ("day", day)):
        if given is not None or free:
            limits[window] = given if given is not None else FREE_LIMITS[window]
    return limits


class CallLimiter:
    def __init__(
        self,
        calls_per_minute: int,
        window_scale: float = 1.0,
        calls_per_hour: int | None = None,
        calls_per_day: int | None = None,
    ) -> None:
        """``calls_per_minute`` at most, and the hour and day limits (the free plan's unless given)
        where they bind. ``window_scale`` is the length of the provider's minute, hour and day as a
        fraction of real ones: 1 for Open-Meteo; a stand-in may count in shorter windows."""
        minute = self.minute = int(Duration.MINUTE * window_scale)
        self.limits = plan_limits(calls_per_minute, calls_per_hour, calls_per_day)
        rates: list[Rate] = []
        for window, limit in self.limits.items():
            # a longer window binds only with a lower rate per minute; a lower limit over a longer
            # window makes the shorter ones redundant
            while rates and rates[-1].limit >= limit:
                rates.pop()
            if not rates or limit / (minute * WINDOWS[window]) < rates[-1].limit / rates[-1].interval:
                rates.append(Rate(limit, minute * WINDOWS[window]))
        self.calls_per_minute = calls_per_minute
        self.most = min(self.limits.values())  # the most calls any window admits
        self.bucket = InMemoryBucket(rates)
        self.limiter = Limiter(self.bucket)
        self.waited_seconds = 0.0

    def wait_seconds(self, calls: float, used: dict[str, float] | None = None) -> float:
        """How long ``calls`` weighted calls are held back at most, when ``used`` calls of each
        window are spent already (none: an empty budget): a window admits what is left of its limit
        at once, then its limit again each time the window passes (the time the requests themselves
        take comes on top)."""
        used = used or {}
        waits = [
            math.ceil(max(0.0, calls + used.get(window, 0.0) - limit) / limit) * self.minute * WINDOWS[window] / 1000
            for window, limit in self.limits.items()
        ]
        return max(waits, default=0.0)

    @staticmethod
    def _units(weight: float) -> int:
        # the provider counts fractions; the limiter counts whole calls, rounded up (never too few)
        return max(1, math.ceil(weight - 1e-9))

    def remember(self, past: list[tuple[float, float]]) -> None:
        """Count calls made before this run: (seconds ago, weight), oldest first. Recorded as they
        were, even beyond a limit (a window already over its limit holds the next call back until
        enough of them have left it), which the bucket's own ``put`` would refuse."""
        now = self.bucket.now()
        items = [
            RateItem(NAME, now - int(seconds_ago * 1000))
            for seconds_ago, weight in past
            for _ in range(self._units(weight))
        ]
        self.bucket.items = sorted([*self.bucket.items, *items], key=lambda item: item.timestamp)

    def acquire(self, weight: float) -> None:
        """Wait until a request of ``weight`` calls fits every window, then count it."""
        units = min(self._units(weight), self.most)
        started = time.monotonic()
        self.limiter.try_acquire(NAME, units)
        waited = time.monotonic() - started
        self.waited_seconds += waited
        if waited > 5:
            log.info("held back %.0f s by the rate limit (%d calls a minute)", waited, self.calls_per_minute)
