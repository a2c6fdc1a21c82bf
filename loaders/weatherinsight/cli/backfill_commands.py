"""``weatherinsight backfill``: plan, run, resume and restore window backfills (weatherinsight.ops)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from weatherinsight import db
from weatherinsight.cli.common import ISO_DATE, base_url_option, console, report, user_errors
from weatherinsight.dwd.service import SourceUnreachable, configured_base_url
from weatherinsight.ops.backfill.errors import BackfillFailed
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.backfill.locks import WindowBusy
from weatherinsight.ops.backfill.plan import BackfillPlan, make_plan
from weatherinsight.ops.backfill.request import MAX_PARALLEL, Request
from weatherinsight.ops.backfill.restore import restore, resume_request
from weatherinsight.ops.backfill.run import BackfillProgress, BatchOutcome, RunSummary, run_backfill
from weatherinsight.windows import GRAINS


def window_options(command: Callable) -> Callable:
    options = [
        click.option("--start", type=ISO_DATE, required=True, help="First day (UTC, inclusive)."),
        click.option("--end", type=ISO_DATE, required=True, help="Day after the last day (UTC, exclusive)."),
        click.option("--products", default="", help="Comma-separated products (default: all)."),
        click.option("--stations", default="", help="Comma-separated DWD station ids (default: all)."),
        click.option(
            "--locations",
            default="",
            help="Comma-separated Open-Meteo location ids of seeds/locations.csv, for the products "
            "location_weather and air_quality (default: all).",
        ),
        click.option("--by", type=click.Choice(GRAINS), default="quarter", show_default=True, help="Window size."),
        click.option("--force", is_flag=True, help="Rebuild complete windows too (the replaced rows are kept)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("backfill")
def backfill_group() -> None:
    """Backfill windows: load raw with dlt, build and test each window with dbt, publish what passed.

    \b
    The ledger (schema ops) records every run and window; rerunning a command resumes it.
    Example:
      weatherinsight backfill plan --start 2021-01-01 --end 2022-01-01 --products wind
      weatherinsight backfill run  --start 2021-01-01 --end 2022-01-01 --products wind --base-url URL
      weatherinsight backfill restore 7
    """
    from weatherinsight.lake import LakeError, refuse_spark_target

    try:
        refuse_spark_target("weatherinsight backfill")
    except LakeError as error:
        raise click.UsageError(str(error)) from error


def _print_plan(plan: BackfillPlan) -> None:
    table = Table(title=f"backfill plan: {len(plan.windows)} windows × {len(plan.request.products)} products")
    for column, justify in (
        ("window", "left"),
        ("product", "left"),
        ("state", "left"),
        ("raw hours", "right"),
        ("built hours", "right"),
        ("action", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    for entry in plan.entries:
        action = "build" if entry.action == "build" else f"skip ({entry.reason})"
        if entry.action == "build" and entry.reason != entry.state:
            action = f"build ({entry.reason})"
        table.add_row(
            entry.window.label, entry.product, entry.state, f"{entry.raw_hours:,}", f"{entry.built_hours:,}", action
        )
    report.print(table)
    builds = sum(1 for entry in plan.entries if entry.action == "build")
    basis = "median of past windows" if plan.history else "no history yet, assuming"
    report.print(
        f"to build: {builds} of {len(plan.entries)} (window, product) pairs in {len(plan.batches())} dbt builds; "
        f"~{plan.estimated_rows:,} raw station-hours loaded so far; "
        f"estimate {plan.estimated_seconds / 60:.1f} min ({basis} {plan.seconds_per_window:.0f} s per window)"
    )


@backfill_group.command("plan")
@window_options
@user_errors(BackfillFailed)
def plan_command(start: date, end: date, products: str, stations: str, locations: str, by: str, force: bool) -> None:
    """List the windows and what a run would do with each; changes nothing.

    States compare every published layer (hourly fact, daily fact, quarterly mart) with its input:
    complete, partial (a layer lacks keys of its input: raw hours unbuilt, a mart quarter deleted),
    missing, stale (a layer has not processed changes of its input, or holds rows its input lost),
    failed (last attempt failed its tests), empty (source has no data).

    Example: weatherinsight backfill plan --start 2020-01-01 --end 2021-01-01 --products wind
    """
    _show_plan(Request.make(start, end, products, stations, by, locations=locations, force=force))


def _show_plan(request: Request) -> None:
    """Print the plan of ``request``; reads only (a warehouse without a ledger gets none)."""
    connection = db.resolve(start=True)
    with Ledger(connection) as ledger:
        _print_plan(make_plan(connection, request, ledger))
    _print_request_budget(connection, request)


def _print_request_budget(connection: db.ConnectionSettings, request: Request) -> None:
    """What the Open-Meteo products of ``request`` still cost at the provider, and how long its limits
    hold the requests back."""
    from weatherinsight.openmeteo.service import budget_used, make_limiter, request_budget
    from weatherinsight.openmeteo.settings import DEFAULT_RATE_LIMIT
    from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS

    apis = [OPENMETEO_PRODUCTS[product] for product in request.products if product in OPENMETEO_PRODUCTS]
    if not apis or not request.load:
        return
    plan = request_budget(connection, apis, request.locations, request.start, request.end)
    budget = budget_used(connection)
    held = make_limiter(DEFAULT_RATE_LIMIT).wait_seconds(plan.weighted_calls, budget.used)
    locations = len({outcome.location.location_id for outcome in plan.outcomes.values()})
    report.print(
        f"Open-Meteo: {len(plan.batches):,} requests for {locations} locations still to fetch "
        f"({plan.weighted_calls:,.1f} weighted calls: held back {held / 60:.1f} min by the provider's limits at "
        f"{DEFAULT_RATE_LIMIT} calls a minute, plus the time the requests take); {budget.describe()}"
    )


class BackfillProgressBar(BackfillProgress):
    def __init__(self) -> None:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description:<36}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} windows, {task.fields[rows]} rows, {task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.bar = Progress(*columns, console=console, transient=False)
        self.task = None
        self.rows = 0
        self.failed = 0

    def loading(self) -> None:
        self.bar.start()
        self.task = self.bar.add_task("loading raw with dlt", total=None, rows="0", failed=0)

    def started(self, plan: BackfillPlan) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", total=None, rows="0", failed=0)
        self.bar.update(self.task, description="building windows", total=len(plan.batches()), completed=0)

    def batch_done(self, outcome: BatchOutcome) -> None:
        self.rows += outcome.rows_built
        self.failed += 0 if outcome.ok else 1
        self.bar.update(self.task, advance=1, rows=f"{self.rows:,}", failed=self.failed)
        verdict = "published" if outcome.ok else "FAILED: " + "; ".join(outcome.problems)[:200]
        self.bar.console.print(
            f"  {outcome.window.label} {','.join(outcome.products)}: {verdict} "
            f"({outcome.rows_built:,} rows, {outcome.seconds:.1f} s)"
        )

    def stop(self) -> None:
        self.bar.stop()


def _print_summary(summary: RunSummary) -> None:
    table = Table(title=f"backfill run {summary.run_id}")
    table.add_column("windows ok", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("rows loaded", justify="right")
    table.add_column("rows built", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("estimate", justify="right")
    table.add_column("success rate", justify="right")
    attempted = summary.windows_ok + summary.windows_failed
    rate = f"{summary.windows_ok / attempted:.0%}" if attempted else "-"
    table.add_row(
        str(summary.windows_ok),
        str(summary.windows_failed),
        str(summary.windows_skipped),
        f"{summary.rows_loaded:,}",
        f"{summary.rows_built:,}",
        f"{summary.seconds:.1f} s",
        f"{summary.plan.estimated_seconds + summary.load_seconds:.1f} s",
        rate,
    )
    console.print(table)


def _execute(request: Request) -> None:
    connection = db.resolve(start=True)
    if request.load and not request.base_url:
        request.base_url = configured_base_url()
    progress = BackfillProgressBar()
    try:
        summary = run_backfill(connection, request, progress)
    finally:
        progress.stop()
    _print_summary(summary)
    if summary.windows_failed:
        failed = [o for o in summary.outcomes if not o.ok]
        first = failed[0]
        raise click.ClickException(
            f"{summary.windows_failed} window(s) failed, published marts unchanged for them "
            f"(first: {first.window.label}: {'; '.join(first.problems)[:300]}); "
            f"see: weatherinsight validate --start {request.start} --end {request.end}"
        )


@backfill_group.command("run")
@window_options
@click.option("--parallel", type=click.IntRange(1, MAX_PARALLEL), default=1, show_default=True, help="Windows at once.")
@click.option("--retry-failed", is_flag=True, help="Also rebuild windows whose last attempt failed.")
@click.option("--dry-run", is_flag=True, help="Print the plan (as `backfill plan`) and stop.")
@base_url_option
@click.option("--no-load", is_flag=True, help="Build from raw as loaded; fetch nothing.")
@click.option(
    "--backup",
    "backup_first",
    is_flag=True,
    help="Back up the whole warehouse (`db backup`, into backups/) before loading or publishing anything.",
)
@click.option(
    "--wait", type=click.FloatRange(0), default=0.0, help="Seconds to wait for a busy window (default: refuse)."
)
@user_errors(BackfillFailed, WindowBusy, SourceUnreachable)
def run_command(
    start: date,
    end: date,
    products: str,
    stations: str,
    locations: str,
    by: str,
    force: bool,
    parallel: int,
    retry_failed: bool,
    dry_run: bool,
    base_url: str,
    no_load: bool,
    backup_first: bool,
    wait: float,
) -> None:
    """Load raw for the range, then build, test and publish each window that is not complete.

    Ctrl-C or a kill leaves the ledger consistent; rerun the same command to resume.

    Example: weatherinsight backfill run --start 2021-01-01 --end 2021-04-01 --products wind --stations 1975
    """
    request = Request.make(
        start,
        end,
        products,
        stations,
        by,
        locations=locations,
        force=force,
        retry_failed=retry_failed,
        parallel=parallel,
        base_url=base_url,
        load=not no_load,
        wait=wait,
    )
    if dry_run:
        _show_plan(request)
        return
    if backup_first:
        from weatherinsight.ops.backup import BackupError, backup

        connection = db.resolve(start=True)
        try:
            path, size, seconds = backup(connection)
        except BackupError as error:
            raise click.ClickException(f"{error}; nothing was run") from error
        click.echo(f"backed up {connection.database} to {path} ({size / 1e6:,.1f} MB in {seconds:.1f} s)")
    _execute(request)


@backfill_group.command("resume")
@click.argument("run_id", type=int, required=False)
@click.option("--base-url", help="Override the run's base URL (DWD's server or a mirror).")
@user_errors(BackfillFailed, WindowBusy, SourceUnreachable)
def resume_command(run_id: int | None, base_url: str | None) -> None:
    """Rerun a failed or interrupted run (default: the latest run, if it failed), retrying its failed windows.

    Example: weatherinsight backfill resume 12
    """
    connection = db.resolve(start=True)
    found = resume_request(connection, run_id)
    if found is None:
        click.echo("nothing to resume: the latest backfill run did not fail")
        return
    original, request = found
    if base_url:
        request.base_url = base_url
    click.echo(f"resuming run {original}: {request.start} – {request.end}, {', '.join(request.products)}")
    _execute(request)


@backfill_group.command("restore")
@click.argument("run_id", type=int)
@click.option("--force", is_flag=True, help="Restore even when later runs published overlapping windows.")
@user_errors(BackfillFailed, WindowBusy)
def restore_command(run_id: int, force: bool) -> None:
    """Put back the published rows a run replaced, and record it in the ledger.

    Example: weatherinsight backfill restore 4   (run ids: weatherinsight backfill runs)
    """
    result = restore(db.resolve(start=True), run_id, force=force)
    click.echo(
        f"restored run {result.run_id}: {result.windows} windows, {result.rows_removed:,} rows removed, "
        f"{result.rows_restored:,} rows put back (ledger: restore run {result.restore_run_id})"
    )


@backfill_group.command("runs")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@user_errors()
def runs_command(limit: int) -> None:
    """List recent runs from the ledger: arguments, status, windows, rows, duration and error.

    Example: weatherinsight backfill runs --limit 5
    """
    connection = db.resolve(start=True)
    with Ledger(connection) as ledger:
        ledger.ensure()
        ledger.reap()
        rows = ledger.recent_runs(limit)
    table = Table(title="backfill runs")
    for column in ("run", "command", "status", "started", "seconds", "windows ok/failed/skipped", "rows", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        seconds = (row["finished_at"] - row["started_at"]).total_seconds() if row["finished_at"] else None
        arguments = row["arguments"]
        label = row["command"]
        if row["command"] == "run":
            label = f"run {arguments['start']}..{arguments['end']} {','.join(arguments['products'])}"
        table.add_row(
            str(row["run_id"]),
            label,
            row["status"],
            row["started_at"].isoformat(timespec="seconds"),
            f"{seconds:.1f}" if seconds is not None else "",
            f"{row['windows_succeeded'] or 0}/{row['windows_failed'] or 0}/{row['windows_skipped'] or 0}",
            f"{row['rows_built'] or 0:,}",
            row["error"] or "",
        )
    console.print(table)
