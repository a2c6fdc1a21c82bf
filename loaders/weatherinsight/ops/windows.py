"""Backfill windows: splitting a range into months, quarters or years, the mart models a window
writes (from dbt's manifest), their window predicates, and each window's state from the data.

A window's state compares raw with the published hourly fact over the window (distinct
station-hours and newest load id on both sides) and the latest ledger attempt:

- ``complete``: every raw station-hour is published and nothing newer arrived since;
- ``stale``: raw holds deliveries newer than the published rows (or lost rows the marts still hold);
- ``partial``: some raw station-hours are published, not all (coverage = published / raw);
- ``missing``: nothing published (raw may not be loaded yet);
- ``failed``: the latest attempt failed its tests or errored (an interrupted one counts as missing
  or partial, so a rerun resumes it);
- ``empty``: the latest attempt succeeded and the source has no data in the window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from psycopg2 import sql

from weatherinsight.dwd.settings import DATASET_NAME

GRAINS = ("month", "quarter", "year")
MARTS_SCHEMA = "marts"


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


# ---- the mart models a window writes -----------------------------------------------------------


@dataclass(frozen=True)
class MartModel:
    """A windowed mart model as dbt's manifest describes it."""

    name: str
    column: str
    grain: str
    product: str | None
    parents: tuple[str, ...]

    @property
    def column_type(self) -> str:
        return "date" if self.grain == "day" else "timestamptz"

    def predicate(self, window: Window, stations: Sequence[int] | None = None) -> sql.Composed:
        """SQL condition selecting this model's rows of ``window`` (widened to its grain), as dbt's
        `model_window_predicate()` does."""
        return range_predicate(self.column, self.column_type, window.widened(self.grain), stations)


def range_predicate(column: str, column_type: str, window: Window, stations: Sequence[int] | None) -> sql.Composed:
    """``column`` in [window.start, window.end) (UTC midnights for timestamptz), and the stations."""
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
        parts.append(sql.SQL("station_id = any({})").format(sql.Literal(list(stations))))
    return sql.SQL(" and ").join(parts)


@dataclass
class Catalogue:
    """The windowed mart models of the project, from ``manifest.json``."""

    models: dict[str, MartModel] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest_path: Path) -> Catalogue:
        manifest = json.loads(manifest_path.read_text())
        models: dict[str, MartModel] = {}
        for node in manifest["nodes"].values():
            if node["resource_type"] != "model" or node["config"].get("schema") != MARTS_SCHEMA:
                continue
            meta = node["config"].get("meta") or {}
            window = meta.get("window")
            if not window:
                continue
            parents = tuple(parent.rsplit(".", 1)[-1] for parent in node["depends_on"]["nodes"])
            models[node["name"]] = MartModel(
                node["name"], window["column"], window["grain"], meta.get("product"), parents
            )
        return cls(models)

    def hourly_fact(self, product: str) -> MartModel:
        for model in self.models.values():
            if model.product == product and model.grain == "hour":
                return model
        raise KeyError(f"no hourly fact for product {product}")

    def selection(self, products: Sequence[str]) -> list[MartModel]:
        """The products' hourly facts and every windowed model downstream of them, parents first."""
        chosen = {self.hourly_fact(product).name for product in products}
        changed = True
        while changed:
            changed = False
            for model in self.models.values():
                downstream = model.name not in chosen and chosen & set(model.parents)
                # another product's model (none today) stays out even downstream of a chosen one
                if downstream and (model.product is None or model.product in products):
                    chosen.add(model.name)
                    changed = True
        return self.ordered(chosen)

    def inputs(self, selected: Sequence[MartModel]) -> list[MartModel]:
        """Windowed mart models the selection reads but does not build (copied into the audit schema)."""
        names = {model.name for model in selected}
        needed = {parent for model in selected for parent in model.parents if parent in self.models} - names
        return self.ordered(needed)

    def ordered(self, names: set[str]) -> list[MartModel]:
        order = {"hour": 0, "day": 1, "quarter": 2}
        return sorted((self.models[name] for name in names), key=lambda model: (order[model.grain], model.name))


# ---- window states from the data ---------------------------------------------------------------


@dataclass
class WindowFacts:
    raw_hours: int = 0
    built_hours: int = 0
    raw_watermark: float | None = None
    built_watermark: float | None = None


def _values(windows: Sequence[Window]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("({}, cast({} as timestamptz), cast({} as timestamptz))").format(
            sql.Literal(index), sql.Literal(f"{w.start} 00:00:00+00"), sql.Literal(f"{w.end} 00:00:00+00")
        )
        for index, w in enumerate(windows)
    )


def relation_exists(cursor, schema: str, table: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (f'"{schema}"."{table}"',))
    return bool(cursor.fetchone()[0])


def window_facts(
    cursor, product: str, fact: str, windows: Sequence[Window], stations: Sequence[int] | None = None
) -> list[WindowFacts]:
    """Raw vs published station-hours and newest load ids of ``product`` per window."""
    facts = [WindowFacts() for _ in windows]
    if not windows:
        return facts
    station_filter = sql.SQL("")
    if stations:
        station_filter = sql.SQL(" and t.station_id = any({})").format(sql.Literal(list(stations)))
    queries = []
    if relation_exists(cursor, DATASET_NAME, product):
        queries.append(
            (
                "raw",
                sql.SQL(
                    "with w (idx, s, e) as (values {values}) select w.idx,"
                    " count(distinct (t.station_id, t.observed_at)), max(cast(t._dlt_load_id as numeric))"
                    " from w join {table} as t"
                    " on t.observed_at >= w.s and t.observed_at < w.e{stations} group by w.idx"
                ).format(
                    values=_values(windows),
                    table=sql.Identifier(DATASET_NAME, product),
                    stations=station_filter,
                ),
            )
        )
    if relation_exists(cursor, MARTS_SCHEMA, fact):
        queries.append(
            (
                "built",
                sql.SQL(
                    "with w (idx, s, e) as (values {values}) select w.idx, count(*), max(t.latest_load_id)"
                    " from w join {table} as t on t.observed_at >= w.s and t.observed_at < w.e{stations} group by w.idx"
                ).format(values=_values(windows), table=sql.Identifier(MARTS_SCHEMA, fact), stations=station_filter),
            )
        )
    for side, query in queries:
        cursor.execute(query)
        for index, hours, watermark in cursor.fetchall():
            if side == "raw":
                facts[index].raw_hours, facts[index].raw_watermark = hours, watermark
            else:
                facts[index].built_hours, facts[index].built_watermark = hours, watermark
    return facts


def classify(facts: WindowFacts, attempt_status: str | None, attempt_interrupted: bool) -> str:
    """The state of a window (see the module docstring)."""
    raw, built = facts.raw_hours, facts.built_hours
    newer_raw = (
        facts.raw_watermark is not None
        and facts.built_watermark is not None
        and facts.raw_watermark > facts.built_watermark
    )
    if attempt_status == "failed" and not attempt_interrupted:
        return "failed"
    if raw == 0 and built == 0:
        return "empty" if attempt_status == "succeeded" else "missing"
    if built > 0 and (newer_raw or built > raw):
        return "stale"
    if built == 0:
        return "missing"
    if built < raw:
        return "partial"
    return "complete"
