"""The backfill plan: each (window, product) of a request, its state from every published layer and
the ledger, and whether a run builds or skips it, with an estimate of the time from past windows."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import Catalogue, load_catalogue
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.backfill.request import Request
from weatherinsight.ops.backfill.states import diagnose, window_facts
from weatherinsight.windows import Window, split

#: seconds per window assumed before the ledger has any history
DEFAULT_SECONDS_PER_WINDOW = 20.0
TO_BUILD = ("missing", "partial", "stale")


@dataclass
class WindowPlan:
    """One (window, product) of a plan."""

    batch: int
    window: Window
    product: str
    state: str
    raw_hours: int
    built_hours: int
    action: str  # build | skip
    reason: str
    raw_watermark: float | None = None


@dataclass
class BackfillPlan:
    request: Request
    windows: list[Window]
    entries: list[WindowPlan]
    seconds_per_window: float
    history: bool

    def batches(self) -> dict[int, list[WindowPlan]]:
        batches: dict[int, list[WindowPlan]] = {}
        for entry in self.entries:
            if entry.action == "build":
                batches.setdefault(entry.batch, []).append(entry)
        return batches

    @property
    def estimated_seconds(self) -> float:
        parallel = min(self.request.parallel, max(len(self.batches()), 1))
        return len(self.batches()) * self.seconds_per_window / parallel

    @property
    def estimated_rows(self) -> int:
        return sum(entry.raw_hours for entry in self.entries if entry.action == "build")


def seconds_per_window(ledger: Ledger) -> tuple[float, bool]:
    """Median wall time of past succeeded windows (one dbt build each), or a default."""
    values = ledger.recent_window_seconds()
    return (statistics.median(values), True) if values else (DEFAULT_SECONDS_PER_WINDOW, False)


def make_plan(
    connection: db.ConnectionSettings, request: Request, ledger: Ledger, catalogue_: Catalogue | None = None
) -> BackfillPlan:
    """Each (window, product): its state from every published layer and the ledger, and whether a
    run builds it."""
    catalogue_ = catalogue_ or load_catalogue(connection)
    windows = split(request.start, request.end, request.by)
    attempts = ledger.latest_attempts(request.products)
    entries = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in request.products:
                hourly, *downstream = catalogue_.selection([product])
                ids = request.ids_for(product)
                facts = window_facts(cursor, product, hourly.name, windows, ids, downstream)
                for batch, (window, fact) in enumerate(zip(windows, facts, strict=True), start=1):
                    attempt = attempts.get((product, window.start, window.end, tuple(ids or ())))
                    state, why = diagnose(
                        fact, attempt.status if attempt else None, attempt.interrupted if attempt else False
                    )
                    action, reason = _decide(state, why, request, attempt.run_id if attempt else None)
                    entries.append(
                        WindowPlan(
                            batch,
                            window,
                            product,
                            state,
                            fact.raw_hours,
                            fact.built_hours,
                            action,
                            reason,
                            fact.raw_watermark,
                        )
                    )
    finally:
        conn.close()
    per_window, history = seconds_per_window(ledger)
    entries.sort(key=lambda entry: (entry.batch, entry.product))
    return BackfillPlan(request, windows, entries, per_window, history)


def _decide(state: str, why: str, request: Request, run_id: int | None) -> tuple[str, str]:
    if state in TO_BUILD:
        return "build", why
    if request.force:
        return "build", f"{state}, --force"
    if state == "failed":
        if request.retry_failed:
            return "build", "failed, --retry-failed"
        return "skip", f"failed in run {run_id}: rerun with --retry-failed"
    return "skip", state
