"""``weatherinsight status --by-day --station ID`` (or ``--location ID``): gaps per station (or
Open-Meteo location) and day.

For each UTC day and product: the hours the published hourly fact holds against the hours expected
(every hour inside the span the station's deliveries of the product cover; for a location, the span
its answers cover), the missing hours listed, each said to be a gap at the source (no delivery or
answer holds the hour) or in the warehouse (raw has it, the published hourly fact does not: a build
to run). Read only."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA
from weatherinsight.ops.backfill.sources import product_source


@dataclass
class DayGaps:
    """One (day, product) of one station or location."""

    day: date
    product: str
    expected: int
    observed: int
    source_gaps: list[int] = field(default_factory=list)  # hours of the day (0-23)
    warehouse_gaps: list[int] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.expected == 0:
            return "none"
        if self.warehouse_gaps:
            return "warehouse"
        if self.source_gaps:
            return "source"
        return "complete"


def hour_ranges(hours: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "00-02, 05, 07-08" (UTC hours)."""
    parts, run = [], []
    for hour in sorted(hours):
        if run and hour == run[-1] + 1:
            run.append(hour)
            continue
        if run:
            parts.append(run)
        run = [hour]
    if run:
        parts.append(run)
    return ", ".join(f"{p[0]:02d}" if len(p) == 1 else f"{p[0]:02d}-{p[-1]:02d}" for p in parts)


DAY_SQL = """
with
span as (
    select min(first_observed_at) as first_hour, max(last_observed_at) as last_hour
    from {deliveries}
    where product = %(product)s and {key} = %(station)s and row_count > 0
),
hours as (
    select hour
    from generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour', interval '1 hour') as hour
),
raw as (
    select distinct observed_at from {raw}
    where {key} = %(station)s and observed_at >= %(start)s and observed_at < %(end)s
),
published as (
    select observed_at from {fact}
    where {key} = %(station)s and observed_at >= %(start)s and observed_at < %(end)s
),
marked as (
    select
        hours.hour,
        hours.hour between span.first_hour and span.last_hour as expected,
        raw.observed_at is not null as in_raw,
        published.observed_at is not null as in_published
    from hours
    cross join span
    left join raw on raw.observed_at = hours.hour
    left join published on published.observed_at = hours.hour
)
select
    cast(hour at time zone 'UTC' as date) as day,
    count(*) filter (where expected) as expected,
    count(*) filter (where in_published) as observed,
    coalesce(array_agg(extract(hour from hour at time zone 'UTC')::int order by hour)
        filter (where expected and not in_published and not in_raw), '{{}}') as source_gaps,
    coalesce(array_agg(extract(hour from hour at time zone 'UTC')::int order by hour)
        filter (where in_raw and not in_published), '{{}}') as warehouse_gaps
from marked
group by 1
order by 1
"""


def daily_gaps(
    connection: db.ConnectionSettings, station: int, start: date, end: date, products: list[str]
) -> list[DayGaps]:
    """Every (day, product) of [start, end) for ``station`` (a location of the Open-Meteo products),
    products with a raw table and a fact."""
    found: list[DayGaps] = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in products:
                source = product_source(product)
                fact = f"fct_hourly_{product}"
                if not (
                    db.relation_exists(cursor, source.raw_schema, product)
                    and db.relation_exists(cursor, source.raw_schema, source.deliveries)
                    and db.relation_exists(cursor, MARTS_SCHEMA, fact)
                ):
                    continue
                cursor.execute(
                    sql.SQL(DAY_SQL).format(
                        deliveries=sql.Identifier(source.raw_schema, source.deliveries),
                        raw=sql.Identifier(source.raw_schema, product),
                        fact=sql.Identifier(MARTS_SCHEMA, fact),
                        key=sql.Identifier(source.key),
                    ),
                    {
                        "product": product,
                        "station": station,
                        "start": datetime(start.year, start.month, start.day).isoformat() + "+00",
                        "end": datetime(end.year, end.month, end.day).isoformat() + "+00",
                    },
                )
                for day, expected, observed, source_gaps, warehouse_gaps in cursor.fetchall():
                    found.append(DayGaps(day, product, expected, observed, list(source_gaps), list(warehouse_gaps)))
    finally:
        conn.close()
    return found


def station_days(connection: db.ConnectionSettings, station: int, products: list[str]) -> tuple[date, date] | None:
    """First and last day any delivery (answer) of ``products`` has for ``station`` (location)."""
    bounds = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for source in map(product_source, products):
                if not db.relation_exists(cursor, source.raw_schema, source.deliveries):
                    continue
                cursor.execute(
                    sql.SQL(
                        "select min(first_observed_at), max(last_observed_at) from {} "
                        "where {} = %s and product = %s and row_count > 0"
                    ).format(sql.Identifier(source.raw_schema, source.deliveries), sql.Identifier(source.key)),
                    (station, source.product),
                )
                low, high = cursor.fetchone()
                if low is not None:
                    bounds.append((low, high))
    finally:
        conn.close()
    if not bounds:
        return None
    return min(low for low, _ in bounds).date(), max(high for _, high in bounds).date() + timedelta(days=1)


COLOURS = {"complete": "#2e7d32", "source": "#9e9e9e", "warehouse": "#c62828", "none": "#eeeeee"}


def gaps_html(station: int, start: date, end: date, days: list[DayGaps], unit: str = "station") -> str:
    """A self-contained page: one row per day, one cell per product, hover for the missing hours."""
    products = list(dict.fromkeys(item.product for item in days))
    by_day: dict[date, dict[str, DayGaps]] = {}
    for item in days:
        by_day.setdefault(item.day, {})[item.product] = item
    rows = []
    for day in sorted(by_day):
        cells = []
        for product in products:
            item = by_day[day].get(product)
            if item is None:
                cells.append('<td class="none"></td>')
                continue
            detail = f"{product} {day}: {item.observed}/{item.expected} hours"
            if item.source_gaps:
                detail += f"; missing at the source: {hour_ranges(item.source_gaps)}"
            if item.warehouse_gaps:
                detail += f"; in raw, not published: {hour_ranges(item.warehouse_gaps)}"
            text = f"{item.observed}/{item.expected}" if item.expected else ""
            cells.append(f'<td class="{item.state}" title="{html.escape(detail)}">{text}</td>')
        rows.append(f"<tr><th>{day}</th>{''.join(cells)}</tr>")
    header = "".join(f"<th>{html.escape(product)}</th>" for product in products)
    styles = "".join(f"td.{state}{{background:{colour}}}" for state, colour in COLOURS.items())
    legend = (
        '<span class="complete">complete</span> <span class="source">gap at the source</span> '
        '<span class="warehouse">gap in the warehouse</span> <span class="none">not expected</span>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WeatherInsight gaps: {unit} {station}</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:separate;border-spacing:2px}} td{{min-width:56px;text-align:center;color:white;font-size:12px}}
th{{font-weight:normal;font-size:12px;color:#555;text-align:left;padding-right:1em}}
span{{padding:2px 6px;color:white;margin-right:4px}} {styles.replace("td.", "span.")} {styles}
</style></head><body>
<h1>Gaps of {unit} {station}, {start} to {end} (UTC days)</h1>
<p>Published hours / expected hours per day and product; hover for the missing hours.</p>
<p>{legend}</p>
<table><tr><th>day</th>{header}</tr>
{"".join(rows)}
</table></body></html>
"""
