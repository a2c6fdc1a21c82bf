"""Backfill windows: splitting a range into months, quarters or years, the mart models a window
writes (from dbt's manifest), their window predicates, and each window's state from the data.

A window's state compares every published layer with its input over the window, and looks at the
latest ledger attempt: raw with the hourly fact (distinct station-hours), the hourly fact with each
model built from it (station-days of the daily fact, station-quarters of the product's quarterly
mart), and, per layer, the input changes (raw deliveries, upstream builds) the layer has not
processed yet (``ops.unprocessed_changes``):

- ``complete``: every layer holds every key of its input and has processed every change;
- ``stale``: a layer has not processed changes of its input in the window, or holds rows its input
  lost (raw rows gone, a quarter the hourly fact no longer has);
- ``partial``: a layer lacks some keys of its input (raw station-hours not in the hourly fact, a
  station-quarter deleted from a mart…); coverage = published / raw hours;
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
from weatherinsight.ops import changes

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
class LayerFacts:
    """One published model built from the hourly fact, compared with it over a window."""

    model: str
    unit: str  # what a key is: station-days, station-quarters
    missing: int = 0  # keys of the hourly fact the model lacks
    extra: int = 0  # keys the model holds that the hourly fact has not
    pending: int = 0  # hourly changes the model has not processed

    def problem(self) -> tuple[str, str] | None:
        """(state, why) when this layer needs a rebuild."""
        if self.missing:
            return "partial", f"{self.model} lacks {self.missing} {self.unit}"
        if self.extra:
            return "stale", f"{self.model} holds {self.extra} {self.unit} the hourly fact has not"
        if self.pending:
            return "stale", f"{self.model} has {self.pending} unprocessed change(s) of its input"
        return None


@dataclass
class WindowFacts:
    raw_hours: int = 0
    built_hours: int = 0
    raw_watermark: float | None = None
    built_watermark: float | None = None
    #: raw deliveries the hourly fact has not processed
    pending_raw: int = 0
    layers: list[LayerFacts] = field(default_factory=list)


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


def _station_filter(stations: Sequence[int] | None, alias: str) -> sql.Composed:
    if not stations:
        return sql.SQL("")
    return sql.SQL(" and {}.station_id = any({})").format(sql.Identifier(alias), sql.Literal(list(stations)))


def window_facts(
    cursor,
    product: str,
    fact: str,
    windows: Sequence[Window],
    stations: Sequence[int] | None = None,
    downstream: Sequence[MartModel] = (),
) -> list[WindowFacts]:
    """Per window: raw vs published station-hours of ``product`` and newest load ids, the raw
    deliveries the hourly fact has not processed, and each ``downstream`` model vs the hourly fact."""
    facts = [WindowFacts() for _ in windows]
    if not windows:
        return facts
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
                    stations=_station_filter(stations, "t"),
                ),
            )
        )
    has_fact = relation_exists(cursor, MARTS_SCHEMA, fact)
    if has_fact:
        queries.append(
            (
                "built",
                sql.SQL(
                    "with w (idx, s, e) as (values {values}) select w.idx, count(*), max(t.latest_load_id)"
                    " from w join {table} as t on t.observed_at >= w.s and t.observed_at < w.e{stations} group by w.idx"
                ).format(
                    values=_values(windows),
                    table=sql.Identifier(MARTS_SCHEMA, fact),
                    stations=_station_filter(stations, "t"),
                ),
            )
        )
    for side, query in queries:
        cursor.execute(query)
        for index, hours, watermark in cursor.fetchall():
            if side == "raw":
                facts[index].raw_hours, facts[index].raw_watermark = hours, watermark
            else:
                facts[index].built_hours, facts[index].built_watermark = hours, watermark
    spans = [(window.start, window.end) for window in windows]
    hourly_name = changes.relation_name(MARTS_SCHEMA, fact)
    for index, count in enumerate(
        changes.pending_in_windows(cursor, hourly_name, [changes.raw_input(product)], spans, stations)
    ):
        facts[index].pending_raw = count
    for model in downstream:
        for index, layer in enumerate(_layer_facts(cursor, product, fact, model, windows, stations, has_fact)):
            facts[index].layers.append(layer)
    return facts


#: per grain: the key of an hourly row in a downstream model (UTC day or quarter start)
_HOURLY_KEY = {
    "day": "cast(h.observed_at at time zone 'UTC' as date)",
    "quarter": "date_trunc('quarter', h.observed_at at time zone 'UTC') at time zone 'UTC'",
}
_UNITS = {"day": "station-days", "quarter": "station-quarters"}


def _layer_facts(
    cursor,
    product: str,
    fact: str,
    model: MartModel,
    windows: Sequence[Window],
    stations: Sequence[int] | None,
    has_fact: bool,
) -> list[LayerFacts]:
    """``model`` (a daily or quarterly model built from ``fact``) vs the hourly fact, per window
    widened to the model's grain: keys missing, keys extra (only for the product's own models: the
    daily fact also holds other products' days) and unprocessed hourly changes."""
    layers = [LayerFacts(model.name, _UNITS.get(model.grain, "keys")) for _ in windows]
    widened = [window.widened(model.grain) for window in windows]
    if has_fact and relation_exists(cursor, MARTS_SCHEMA, model.name):
        check_extra = model.product == product
        cursor.execute(
            sql.SQL(
                "with w (idx, s, e) as (values {values}),"
                " hourly_keys as (select distinct w.idx, h.station_id, {hourly_key} as key from w join {fact} as h"
                "  on h.observed_at >= w.s and h.observed_at < w.e{hourly_stations}),"
                " model_keys as (select w.idx, m.station_id, m.{column} as key from w join {model} as m"
                "  on m.{column} >= {low} and m.{column} < {high}{model_stations}),"
                " missing as (select idx, count(*) as n from"
                "  (select * from hourly_keys except select * from model_keys)"
                "  as gone group by idx),"
                " extra as (select idx, count(*) as n from"
                "  (select * from model_keys except select * from hourly_keys)"
                "  as more group by idx)"
                " select w.idx, coalesce(missing.n, 0), coalesce(extra.n, 0) from w"
                " left join missing on missing.idx = w.idx left join extra on extra.idx = w.idx"
            ).format(
                values=_values(widened),
                hourly_key=sql.SQL(_HOURLY_KEY[model.grain]),
                fact=sql.Identifier(MARTS_SCHEMA, fact),
                hourly_stations=_station_filter(stations, "h"),
                model=sql.Identifier(MARTS_SCHEMA, model.name),
                column=sql.Identifier(model.column),
                low=sql.SQL("cast(w.s at time zone 'UTC' as date)" if model.column_type == "date" else "w.s"),
                high=sql.SQL("cast(w.e at time zone 'UTC' as date)" if model.column_type == "date" else "w.e"),
                model_stations=_station_filter(stations, "m"),
            )
        )
        for index, missing, extra in cursor.fetchall():
            layers[index].missing = missing
            layers[index].extra = extra if check_extra else 0
    consumer = changes.relation_name(MARTS_SCHEMA, model.name)
    spans = [(window.start, window.end) for window in widened]
    hourly = changes.relation_name(MARTS_SCHEMA, fact)
    for index, count in enumerate(changes.pending_in_windows(cursor, consumer, [hourly], spans, stations)):
        layers[index].pending = count
    return layers


def classify(facts: WindowFacts, attempt_status: str | None, attempt_interrupted: bool) -> str:
    """The state of a window (see the module docstring)."""
    return diagnose(facts, attempt_status, attempt_interrupted)[0]


def diagnose(facts: WindowFacts, attempt_status: str | None, attempt_interrupted: bool) -> tuple[str, str]:
    """The state of a window and why (the first layer that needs work)."""
    raw, built = facts.raw_hours, facts.built_hours
    if attempt_status == "failed" and not attempt_interrupted:
        return "failed", "the latest attempt failed"
    if raw == 0 and built == 0:
        return ("empty", "no data at the source") if attempt_status == "succeeded" else ("missing", "nothing loaded")
    if built > 0 and built > raw:
        return "stale", f"the hourly fact holds {built - raw:,} station-hours raw has not"
    if built > 0 and facts.pending_raw:
        return "stale", f"{facts.pending_raw} raw delivery(ies) not processed by the hourly fact"
    if built == 0:
        return "missing", "nothing published"
    if built < raw:
        return "partial", f"{raw - built:,} raw station-hours not in the hourly fact"
    for layer in facts.layers:
        problem = layer.problem()
        if problem is not None:
            return problem
    return "complete", "every layer holds and has processed everything"
