"""``weatherinsight status``: the coverage matrix, product × quarter (× station), of window states
(:mod:`weatherinsight.ops.backfill.states`), in the terminal or as a self-contained HTML page. Read only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, load_catalogue
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.backfill.sources import product_source
from weatherinsight.ops.backfill.states import diagnose, window_facts
from weatherinsight.windows import Window, split

STATES = ("complete", "partial", "stale", "missing", "failed", "empty", "none")
GLYPHS = {
    "complete": "█",
    "partial": "▒",
    "stale": "s",
    "missing": "·",
    "failed": "x",
    "empty": "○",
    "none": " ",
}
COLOURS = {
    "complete": "#2e7d32",
    "partial": "#f9a825",
    "stale": "#1565c0",
    "missing": "#c62828",
    "failed": "#6a1b9a",
    "empty": "#9e9e9e",
    "none": "#eeeeee",
}


@dataclass
class Cell:
    """One (product, quarter[, station]) of the coverage matrix."""

    product: str
    quarter: Window
    station: int | None
    state: str
    raw_hours: int
    built_hours: int
    #: why the cell has its state (which layer lacks or has not processed what)
    detail: str = ""

    @property
    def coverage(self) -> float | None:
        """Published share of the raw station-hours."""
        return self.built_hours / self.raw_hours if self.raw_hours else None


@dataclass
class Coverage:
    start: date
    end: date
    products: list[str]
    cells: list[Cell] = field(default_factory=list)

    def counts(self, product: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for cell in self.cells:
            if cell.product == product:
                counts[cell.state] += 1
        return counts

    def problems(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.state in ("missing", "partial", "stale", "failed")]


def data_range(connection: db.ConnectionSettings, products: Sequence[str]) -> tuple[date, date] | None:
    """First and last day with raw or published data for ``products``."""
    conn = db.connect(connection)
    bounds = []
    try:
        with conn.cursor() as cursor:
            for product in products:
                raw_schema = product_source(product).raw_schema
                for schema, table in ((raw_schema, product), (MARTS_SCHEMA, f"fct_hourly_{product}")):
                    if db.relation_exists(cursor, schema, table):
                        cursor.execute(
                            sql.SQL("select min(observed_at), max(observed_at) from {}").format(
                                sql.Identifier(schema, table)
                            )
                        )
                        low, high = cursor.fetchone()
                        if low is not None:
                            bounds.append((low, high))
    finally:
        conn.close()
    if not bounds:
        return None
    low = min(b[0] for b in bounds)
    high = max(b[1] for b in bounds)
    return low.date(), high.date()


def station_spans(cursor, product: str, by_station: bool) -> dict[int | None, tuple]:
    """First and last observation per station (or overall), over raw and published rows: the span in
    which a quarter without rows counts as missing rather than as no data expected. Open-Meteo
    products: per location."""
    source = product_source(product)
    key = sql.Identifier(source.key) if by_station else sql.SQL("null::integer")
    parts = []
    for schema, table in ((source.raw_schema, product), (MARTS_SCHEMA, f"fct_hourly_{product}")):
        if db.relation_exists(cursor, schema, table):
            parts.append(
                sql.SQL("select {key} as k, min(observed_at) as lo, max(observed_at) as hi from {t} group by 1").format(
                    key=key, t=sql.Identifier(schema, table)
                )
            )
    if not parts:
        return {}
    cursor.execute(
        sql.SQL("select k, min(lo), max(hi) from ({}) as spans group by k").format(sql.SQL(" union all ").join(parts))
    )
    return {k: (lo.date(), hi.date()) for k, lo, hi in cursor.fetchall()}


def delivered_spans(cursor, product: str, by_station: bool) -> dict[int | None, list[tuple]]:
    """The spans of hours the delivered files of ``product`` cover (``raw_dwd.deliveries``; for
    Open-Meteo the answers in ``raw_openmeteo.requests``), per station or location (or all
    together): a quarter they cover without a row is a gap at the source."""
    source = product_source(product)
    if not db.relation_exists(cursor, source.raw_schema, source.deliveries):
        return {}
    key = sql.Identifier(source.key) if by_station else sql.SQL("null::integer")
    cursor.execute(
        sql.SQL(
            "select {key}, min(first_observed_at), max(last_observed_at) from {deliveries}"
            " where product = %s and row_count > 0 group by {key}, {delivery}"
        ).format(
            key=key,
            deliveries=sql.Identifier(source.raw_schema, source.deliveries),
            delivery=sql.Identifier(source.delivery_column),
        ),
        (product,),
    )
    spans: dict[int | None, list[tuple]] = {}
    for station, first, last in cursor.fetchall():
        spans.setdefault(station, []).append((first.date(), last.date()))
    return spans


def _nothing_in_raw(quarter: Window, delivered: list[tuple], span: tuple | None) -> tuple[str, str]:
    """The state of a quarter without raw rows: a gap at the source when a delivered file covers it,
    else nothing delivered (not loaded, or DWD publishes nothing there)."""
    if any(first < quarter.end and quarter.start <= last for first, last in delivered):
        return "empty", "a gap at the source: the delivered files hold no rows in this quarter"
    if not delivered and span is not None and span[0] < quarter.end and quarter.start <= span[1]:
        return "missing", "nothing in raw: not loaded yet"  # raw without deliveries (loaded by hand)
    return "none", "nothing delivered: not loaded, or not published at the source"


def coverage(
    connection: db.ConnectionSettings,
    products: Sequence[str],
    start: date,
    end: date,
    stations: Sequence[int] | None = None,
    by_station: bool = False,
    locations: Sequence[int] | None = None,
) -> Coverage:
    """The product × quarter (× station or location) matrix of window states, every published layer
    compared; ``stations`` narrow the DWD products, ``locations`` the Open-Meteo ones."""
    quarters = [quarter.widened("quarter") for quarter in split(start, end, "quarter")]
    result = Coverage(quarters[0].start, quarters[-1].end, list(products))
    models = load_catalogue(connection)
    with Ledger(connection) as ledger:
        attempts = ledger.latest_attempts(products)
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in products:
                chosen = locations if product_source(product).key == "location_id" else stations
                spans = station_spans(cursor, product, by_station)
                keys: list[int | None] = sorted(k for k in spans if k is not None) if by_station else [None]
                if by_station and chosen:
                    keys = [k for k in keys if k in chosen]
                hourly, *downstream = models.selection([product])
                delivered = delivered_spans(cursor, product, by_station)
                for key in keys:
                    scope = [key] if key is not None else chosen
                    facts = window_facts(cursor, product, hourly.name, quarters, scope, downstream)
                    span = spans.get(key)
                    for quarter, fact in zip(quarters, facts, strict=True):
                        overlapping = [
                            attempt
                            for (name, low, high, _), attempt in attempts.items()
                            if name == product and Window(low, high).overlaps(quarter) and not attempt.interrupted
                        ]
                        latest = None
                        if any(attempt.status == "failed" for attempt in overlapping):
                            latest = "failed"
                        elif any(attempt.status == "succeeded" for attempt in overlapping):
                            latest = "succeeded"
                        state, why = diagnose(fact, latest, False)
                        if state in ("missing", "empty") and fact.raw_hours == 0:
                            # a quarter a delivered file covers without a row is a gap at the source,
                            # whether or not a run has built it since
                            source_state, source_why = _nothing_in_raw(quarter, delivered.get(key, []), span)
                            if state == "missing" or source_state == "empty":
                                state, why = source_state, source_why
                        result.cells.append(Cell(product, quarter, key, state, fact.raw_hours, fact.built_hours, why))
    finally:
        conn.close()
    return result


def quarter_label(quarter: Window) -> str:
    return f"{quarter.start.year}-Q{(quarter.start.month - 1) // 3 + 1}"


def coverage_section(result: Coverage) -> tuple[str, str]:
    """The coverage matrix as HTML: (its CSS, a section with one row of coloured quarter cells per
    product and station)."""
    rows: dict[tuple[str, int | None], list[Cell]] = {}
    for cell in result.cells:
        rows.setdefault((cell.product, cell.station), []).append(cell)
    quarters = sorted({cell.quarter for cell in result.cells})
    years = sorted({quarter.start.year for quarter in quarters})
    header = "".join(f'<th colspan="{sum(1 for q in quarters if q.start.year == year)}">{year}</th>' for year in years)
    body = []
    for (product, station), cells in rows.items():
        unit = product_source(product).unit
        name = html.escape(product + (f" / {unit} {station}" if station is not None else ""))
        tds = []
        for cell in cells:
            coverage_text = f", coverage {cell.coverage:.1%}" if cell.coverage is not None else ""
            title = (
                f"{product} {quarter_label(cell.quarter)}: {cell.state} ({cell.detail}); raw station-hours "
                f"{cell.raw_hours:,}, published {cell.built_hours:,}{coverage_text}"
            )
            tds.append(f'<td class="{cell.state}" title="{html.escape(title)}"></td>')
        body.append(f"<tr><th class='name'>{name}</th>{''.join(tds)}</tr>")
    legend = "".join(f'<span><i class="{state}"></i>{state}</span>' for state in STATES)
    styles = "".join(f".{state}{{background:{colour}}}" for state, colour in COLOURS.items())
    css = f"""
table.coverage{{border-collapse:separate;border-spacing:2px}}
table.coverage td{{width:10px;height:18px;padding:0}}
table.coverage th{{font-weight:normal;font-size:11px;color:#555;text-align:left}}
table.coverage th.name{{padding-right:1em;white-space:nowrap}}
.legend span{{margin-right:1.2em}} .legend i{{display:inline-block;width:12px;height:12px;margin-right:4px}}
{styles}
"""
    section = f"""<section id="coverage">
<h2>Coverage by product and quarter</h2>
<p>{result.start} to {result.end} (UTC). Each cell is one quarter; hover for row counts.
States compare raw deliveries with every published layer and the backfill ledger.</p>
<p class="legend">{legend}</p>
<table class="coverage"><tr><th></th>{header}</tr>
{"".join(body)}
</table></section>"""
    return css, section
