"""The monitoring page of ``weatherinsight status --html``: the backfill runs as charts (rows/s and
windows/min per run over time, failures per run, duration against the plan's estimate) above the
coverage matrix. One self-contained HTML file: plotly.js is inlined from the plotly package, so the
page opens offline and needs no CDN."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

from weatherinsight import db
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.reports.status import Coverage, coverage_section

#: runs shown at most (newest)
RUN_LIMIT = 500
STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "rolled back": "#6a1b9a",
    "running": "#1565c0",
    "planned": "#9e9e9e",
}


@dataclass(frozen=True)
class RunFigures:
    """One backfill run as the charts show it."""

    run_id: int
    command: str
    status: str
    started_at: datetime
    seconds: float | None
    estimated_seconds: float | None
    windows_done: int
    windows_failed: int
    rows_built: int
    rows_loaded: int
    error: str | None

    @property
    def rows_per_second(self) -> float | None:
        return self.rows_built / self.seconds if self.seconds else None

    @property
    def windows_per_minute(self) -> float | None:
        return self.windows_done / (self.seconds / 60) if self.seconds else None


def recent_runs(connection: db.ConnectionSettings, limit: int = RUN_LIMIT) -> list[RunFigures]:
    """The newest ``limit`` runs of the ledger, oldest first (none before the first backfill)."""
    with Ledger(connection) as ledger:
        rows = ledger.recent_runs(limit) if ledger.exists() else []
    return [
        RunFigures(
            run_id=row["run_id"],
            command=row["command"],
            status=row["status"],
            started_at=row["started_at"],
            seconds=(row["finished_at"] - row["started_at"]).total_seconds() if row["finished_at"] else None,
            estimated_seconds=float(row["estimated_seconds"]) if row["estimated_seconds"] is not None else None,
            windows_done=(row["windows_succeeded"] or 0) + (row["windows_failed"] or 0),
            windows_failed=row["windows_failed"] or 0,
            rows_built=row["rows_built"] or 0,
            rows_loaded=row["rows_loaded"] or 0,
            error=row["error"],
        )
        for row in reversed(rows)
    ]


def _layout(title: str, y_title: str, **extra: object) -> dict:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "height": 300,
        "margin": {"l": 60, "r": 60, "t": 60, "b": 40},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        **extra,
    }


def _hover(run: RunFigures) -> str:
    duration = f"{run.seconds:,.0f} s" if run.seconds is not None else "running"
    text = f"run {run.run_id} ({run.command}, {run.status})<br>{run.rows_built:,} rows built in {duration}"
    if run.error:
        text += "<br>" + html.escape(run.error[:120])
    return text


def charts(runs: list[RunFigures]) -> list[tuple[str, dict]]:
    """(chart id, plotly figure as a dict) for each chart of the runs view."""
    return [("throughput", _throughput(runs)), ("failures", _failures(runs)), ("duration", _duration(runs))]


def _series(runs: list[RunFigures], name: str, values: list, **style) -> dict:
    """One trace over the runs' start times, hovering each run's summary."""
    return {
        "name": name,
        "x": [run.started_at.isoformat() for run in runs],
        "y": values,
        "text": [_hover(run) for run in runs],
        "hoverinfo": "text+y",
        **style,
    }


def _throughput(runs: list[RunFigures]) -> dict:
    marker = {"color": [STATUS_COLOURS.get(run.status, "#555") for run in runs], "size": 9}
    rows = [run.rows_per_second for run in runs]
    windows = [run.windows_per_minute for run in runs]
    return {
        "data": [
            _series(runs, "rows/s", rows, type="scatter", mode="lines+markers", marker=marker),
            _series(
                runs, "windows/min", windows, type="scatter", mode="lines+markers", yaxis="y2", line={"dash": "dot"}
            ),
        ],
        "layout": _layout(
            "Throughput per run",
            "rows built per second",
            yaxis2={"title": {"text": "windows per minute"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        ),
    }


def _failures(runs: list[RunFigures]) -> dict:
    failed = [run.windows_failed for run in runs]
    published = [run.windows_done - run.windows_failed for run in runs]
    bar = {"type": "bar", "textposition": "none"}
    return {
        "data": [
            _series(runs, "windows failed", failed, **bar, marker={"color": "#c62828"}),
            _series(runs, "windows published", published, **bar, marker={"color": "#2e7d32"}),
        ],
        "layout": _layout("Windows per run: published and failed", "windows", barmode="stack"),
    }


def _duration(runs: list[RunFigures]) -> dict:
    estimated = [run for run in runs if run.estimated_seconds is not None and run.seconds is not None]
    highest = max([run.seconds for run in estimated] + [run.estimated_seconds for run in estimated] + [1.0])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "runs",
                "x": [run.estimated_seconds for run in estimated],
                "y": [run.seconds for run in estimated],
                "text": [_hover(run) for run in estimated],
                "hoverinfo": "text",
                "marker": {"color": [STATUS_COLOURS.get(run.status, "#555") for run in estimated], "size": 10},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "as estimated",
                "x": [0, highest],
                "y": [0, highest],
                "line": {"dash": "dash", "color": "#999"},
                "hoverinfo": "skip",
            },
        ],
        "layout": _layout(
            "Duration against the plan's estimate",
            "run took (s)",
            xaxis={"title": {"text": "plan estimated (s)"}, "rangemode": "tozero"},
        ),
    }


def page(coverage: Coverage, runs: list[RunFigures]) -> str:
    """The whole monitoring page: runs view (charts and a table) and the coverage matrix."""
    from plotly.offline import get_plotlyjs

    css, coverage_html = coverage_section(coverage)
    figures = charts(runs) if runs else []
    divs = "".join(f'<div class="chart" id="chart-{name}"></div>' for name, _ in figures)
    calls = "".join(
        f"Plotly.newPlot('chart-{name}', {json.dumps(figure['data'])}, {json.dumps(figure['layout'])},"
        " {displaylogo: false, displayModeBar: false, responsive: true});"
        for name, figure in figures
    )
    rows = "".join(
        "<tr>"
        f"<td>{run.run_id}</td><td>{html.escape(run.command)}</td>"
        f'<td><i class="dot" style="background:{STATUS_COLOURS.get(run.status, "#555")}"></i>'
        f"{html.escape(run.status)}</td>"
        f"<td>{run.started_at:%Y-%m-%d %H:%M:%S}</td>"
        f"<td class='n'>{'' if run.seconds is None else f'{run.seconds:,.1f}'}</td>"
        f"<td class='n'>{'' if run.estimated_seconds is None else f'{run.estimated_seconds:,.1f}'}</td>"
        f"<td class='n'>{run.windows_done - run.windows_failed}</td><td class='n'>{run.windows_failed}</td>"
        f"<td class='n'>{run.rows_loaded:,}</td><td class='n'>{run.rows_built:,}</td>"
        f"<td>{html.escape((run.error or '')[:160])}</td></tr>"
        for run in reversed(runs[-50:])
    )
    runs_section = (
        f"""<section id="runs">
<h2>Backfill runs</h2>
<p>{len(runs)} run{"" if len(runs) == 1 else "s"} from the ledger (<code>ops.backfill_runs</code>); marker colours:
succeeded green, failed red, rolled back purple, running blue.</p>
<div class="charts">{divs}</div>
<table class="runs"><tr><th>run</th><th>command</th><th>status</th><th>started (UTC)</th><th>seconds</th>
<th>estimate (s)</th><th>windows published</th><th>windows failed</th><th>rows loaded</th><th>rows built</th>
<th>error</th></tr>{rows}</table>
</section>"""
        if runs
        else '<section id="runs"><h2>Backfill runs</h2><p>No backfill has run yet.</p></section>'
    )
    script = f"<script>{get_plotlyjs()}</script><script>{calls}</script>" if figures else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WeatherInsight runs and coverage</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
h1{{font-size:22px}} h2{{font-size:18px;margin-top:1.5em}}
.charts{{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}}
.chart{{border:1px solid #ddd;border-radius:4px;min-height:300px}}
table.runs{{border-collapse:collapse;margin-top:1em;font-size:12px}}
table.runs td,table.runs th{{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}}
table.runs td.n{{text-align:right;font-variant-numeric:tabular-nums}}
i.dot{{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:5px}}
{css}
</style></head><body>
<h1>WeatherInsight: backfill runs and coverage</h1>
{runs_section}
{coverage_html}
{script}
</body></html>
"""
