"""What a load fetches and what loader state remembers of it: one task per file (a product archive
or a station list) with the windows of observation time still to load from it, and, per file in
dlt's source state, its version (size, Last-Modified) and the time ranges already loaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from weatherinsight.dwd.listing import RemoteFile
from weatherinsight.dwd.parser import TimeWindow
from weatherinsight.dwd.settings import Product

_MIN = datetime.min.replace(tzinfo=timezone.utc)
_MAX = datetime.max.replace(tzinfo=timezone.utc)


@dataclass
class FileTask:
    """One file to fetch: a product archive or a station list, and the windows still to load from it."""

    kind: str  # "archive" or "station_list"
    product: Product
    release: str
    remote: RemoteFile
    path: str  # path below the hourly root, the key in loader state
    station_id: int | None = None
    windows: list[TimeWindow] = field(default_factory=lambda: [TimeWindow()])


def _bounds(window: TimeWindow) -> tuple[datetime, datetime]:
    return (window.start or _MIN, window.end or _MAX)


def missing_windows(window: TimeWindow, loaded: Sequence[Sequence[str | None]]) -> list[TimeWindow]:
    """The parts of ``window`` not covered by the ``loaded`` ranges (ISO strings, None = unbounded)."""
    start, end = _bounds(window)
    covered = sorted(
        (datetime.fromisoformat(first) if first else _MIN, datetime.fromisoformat(last) if last else _MAX)
        for first, last in loaded
    )
    gaps: list[TimeWindow] = []
    cursor = start
    for first, last in covered:
        if last <= cursor or first >= end:
            continue
        if first > cursor:
            gaps.append(TimeWindow(None if cursor == _MIN else cursor, first))
        cursor = max(cursor, last)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(TimeWindow(None if cursor == _MIN else cursor, None if end == _MAX else end))
    return gaps


def merge_ranges(loaded: Sequence[Sequence[str | None]], window: TimeWindow) -> list[list[str | None]]:
    """Add ``window`` to the ``loaded`` ranges, merging overlaps; stored as ISO strings."""
    spans = sorted(
        [
            (datetime.fromisoformat(first) if first else _MIN, datetime.fromisoformat(last) if last else _MAX)
            for first, last in loaded
        ]
        + [_bounds(window)]
    )
    merged: list[list[datetime]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [
        [None if first == _MIN else first.isoformat(), None if last == _MAX else last.isoformat()]
        for first, last in merged
    ]


def record_loaded(state: dict, task: FileTask) -> None:
    """Remember in the source ``state`` that ``task``'s windows were loaded from its file version."""
    files = state.setdefault("files", {})
    entry = files.get(task.path)
    if entry is None or {k: entry.get(k) for k in ("size", "last_modified")} != task.remote.version:
        entry = {**task.remote.version, "ranges": []}
    for window in task.windows:
        entry["ranges"] = merge_ranges(entry["ranges"], window)
    files[task.path] = entry
