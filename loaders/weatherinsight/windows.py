"""Backfill windows in Python: half-open ranges of UTC days, split into months, quarters or years,
widened to whole quarters, and the SQL condition selecting a model's rows inside one.

dbt reads the same rules from ``macros/window_replace/`` (``window_vars.sql``, ``window_scope.sql``,
``ranges.sql``); ``tests/python/test_window_parity.py`` compiles the Jinja side for a grid of windows
and grains and compares it with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from psycopg2 import sql

GRAINS = ("month", "quarter", "year")


@dataclass(frozen=True, order=True)
class Window:
    """A half-open range of UTC days [start, end)."""

    start: date
    end: date

    @property
    def label(self) -> str:
        if self.end == _add_months(self.start, 12) and self.start.month == 1 and self.start.day == 1:
            return f"{self.start.year}"
        if self.end == _add_months(self.start, 3) and self.start.month % 3 == 1 and self.start.day == 1:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.end == _add_months(self.start, 1) and self.start.day == 1:
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def quarters(self) -> list[date]:
        """First days of the UTC quarters the window touches."""
        first = quarter_start(self.start)
        result = []
        while first < self.end:
            result.append(first)
            first = _add_months(first, 3)
        return result

    def widened(self, grain: str) -> Window:
        """The window widened to whole days (unchanged) or quarters, as dbt's window macros widen it."""
        if grain != "quarter":
            return self
        quarters = self.quarters()
        return Window(quarters[0], _add_months(quarters[-1], 3))

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_start(day: date) -> date:
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def split(start: date, end: date, by: str) -> list[Window]:
    """[start, end) cut at calendar month, quarter or year boundaries (the ends may be partial)."""
    step = {"month": 1, "quarter": 3, "year": 12}[by]
    first = {
        "month": date(start.year, start.month, 1),
        "quarter": quarter_start(start),
        "year": date(start.year, 1, 1),
    }[by]
    windows = []
    while first < end:
        following = _add_months(first, step)
        windows.append(Window(max(first, start), min(following, end)))
        first = following
    return windows


def range_predicate(
    column: str, column_type: str, window: Window, stations: Sequence[int] | None, key: str = "station_id"
) -> sql.Composed:
    """``column`` in [window.start, window.end) (UTC midnights for timestamptz), and the stations (or
    locations: ``key`` names the column)."""
    suffix = "" if column_type == "date" else " 00:00:00+00"
    parts = [
        sql.SQL("{column} >= cast({start} as {cast}) and {column} < cast({end} as {cast})").format(
            column=sql.Identifier(column),
            start=sql.Literal(window.start.isoformat() + suffix),
            end=sql.Literal(window.end.isoformat() + suffix),
            cast=sql.SQL(column_type),
        )
    ]
    if stations:
        parts.append(sql.SQL("{} = any({})").format(sql.Identifier(key), sql.Literal(list(stations))))
    return sql.SQL(" and ").join(parts)
