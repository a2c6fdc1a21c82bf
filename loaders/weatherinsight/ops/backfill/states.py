"""Window states from the data: every published layer compared with its input over a window, and
the ledger's latest attempt.

Raw is compared with the hourly fact (distinct station-hours), the hourly fact with each model built
from it (station-days of the daily fact, station-quarters of the product's quarterly mart), and,
per layer, the input changes (raw deliveries, upstream builds) the layer has not processed yet
(``ops.unprocessed_changes``):

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

from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg2 import sql

from weatherinsight.db import relation_exists
from weatherinsight.ops.backfill import changes
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, MartModel
from weatherinsight.ops.backfill.sources import product_source
from weatherinsight.windows import Window


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


def _station_filter(stations: Sequence[int] | None, alias: str, key: str = "station_id") -> sql.Composed:
    if not stations:
        return sql.SQL("")
    return sql.SQL(" and {}.{} = any({})").format(
        sql.Identifier(alias), sql.Identifier(key), sql.Literal(list(stations))
    )


def window_facts(
    cursor,
    product: str,
    fact: str,
    windows: Sequence[Window],
    stations: Sequence[int] | None = None,
    downstream: Sequence[MartModel] = (),
) -> list[WindowFacts]:
    """Per window: raw vs published station-hours (or location-hours) of ``product`` and newest load
    ids, the raw deliveries the hourly fact has not processed, and each ``downstream`` model vs the
    hourly fact. ``stations`` are the product's stations or locations."""
    facts = [WindowFacts() for _ in windows]
    if not windows:
        return facts
    source = product_source(product)
    raw_hours = _hours_per_window(cursor, source.raw_schema, product, windows, stations, source.key, raw=True)
    for index, hours, watermark in raw_hours:
        facts[index].raw_hours, facts[index].raw_watermark = hours, watermark
    has_fact = relation_exists(cursor, MARTS_SCHEMA, fact)
    for index, hours, watermark in _hours_per_window(cursor, MARTS_SCHEMA, fact, windows, stations, source.key):
        facts[index].built_hours, facts[index].built_watermark = hours, watermark
    spans = [(window.start, window.end) for window in windows]
    hourly_name = changes.relation_name(MARTS_SCHEMA, fact)
    for index, count in enumerate(
        changes.pending_in_windows(cursor, hourly_name, [changes.raw_input(product)], spans, stations)
    ):
        facts[index].pending_raw = count
    for model in downstream:
        for index, layer in enumerate(
            _layer_facts(cursor, product, fact, model, windows, stations, has_fact, source.key)
        ):
            facts[index].layers.append(layer)
    return facts


def _hours_per_window(
    cursor,
    schema: str,
    table: str,
    windows: Sequence[Window],
    stations: Sequence[int] | None,
    key: str,
    raw: bool = False,
) -> list[tuple]:
    """(window index, distinct station-hours, newest load id) of a raw table or an hourly fact."""
    if not relation_exists(cursor, schema, table):
        return []
    cursor.execute(
        sql.SQL(
            "with w (idx, s, e) as (values {values}) select w.idx, {hours}, max({load_id})"
            " from w join {table} as t on t.observed_at >= w.s and t.observed_at < w.e{stations} group by w.idx"
        ).format(
            values=_values(windows),
            # raw holds a row per delivery; an hourly fact one per station-hour
            hours=sql.SQL("count(distinct (t.{}, t.observed_at))").format(sql.Identifier(key))
            if raw
            else sql.SQL("count(*)"),
            load_id=sql.SQL("cast(t._dlt_load_id as numeric)" if raw else "t.latest_load_id"),
            table=sql.Identifier(schema, table),
            stations=_station_filter(stations, "t", key),
        )
    )
    return cursor.fetchall()


#: per grain: the key of an hourly row in a downstream model (UTC day or quarter start)
_HOURLY_KEY = {
    "day": "cast(h.observed_at at time zone 'UTC' as date)",
    "quarter": "date_trunc('quarter', h.observed_at at time zone 'UTC') at time zone 'UTC'",
}
_UNITS = {"day": "days", "quarter": "quarters"}


def _layer_facts(
    cursor,
    product: str,
    fact: str,
    model: MartModel,
    windows: Sequence[Window],
    stations: Sequence[int] | None,
    has_fact: bool,
    key: str = "station_id",
) -> list[LayerFacts]:
    """``model`` (a daily or quarterly model built from ``fact``) vs the hourly fact, per window
    widened to the model's grain: keys missing, keys extra (only for the product's own models: the
    daily fact also holds other products' days) and unprocessed hourly changes."""
    # "station-quarters", or "location-quarters" for an Open-Meteo product's models
    unit = f"{key.removesuffix('_id')}-{_UNITS[model.grain]}" if model.grain in _UNITS else "keys"
    layers = [LayerFacts(model.name, unit) for _ in windows]
    widened = [window.widened(model.grain) for window in windows]
    if has_fact and relation_exists(cursor, MARTS_SCHEMA, model.name):
        check_extra = model.product == product
        cursor.execute(
            sql.SQL(
                "with w (idx, s, e) as (values {values}),"
                " hourly_keys as (select distinct w.idx, h.{key}, {hourly_key} as key from w join {fact} as h"
                "  on h.observed_at >= w.s and h.observed_at < w.e{hourly_stations}),"
                " model_keys as (select w.idx, m.{key}, m.{column} as key from w join {model} as m"
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
                key=sql.Identifier(key),
                hourly_stations=_station_filter(stations, "h", key),
                model=sql.Identifier(MARTS_SCHEMA, model.name),
                column=sql.Identifier(model.column),
                low=sql.SQL("cast(w.s at time zone 'UTC' as date)" if model.column_type == "date" else "w.s"),
                high=sql.SQL("cast(w.e at time zone 'UTC' as date)" if model.column_type == "date" else "w.e"),
                model_stations=_station_filter(stations, "m", key),
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
