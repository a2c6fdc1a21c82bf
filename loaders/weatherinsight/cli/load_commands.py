"""``weatherinsight load``: raw loads with dlt, with a progress bar and a closing summary."""

from __future__ import annotations

from datetime import date

import click
from dlt.pipeline.exceptions import PipelineStepFailed
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from weatherinsight import db, lake
from weatherinsight.cli.common import ISO_DATE, base_url_option, console, user_errors
from weatherinsight.dwd.service import (
    FileTask,
    LoadPlan,
    LoadProgress,
    LoadResult,
    SourceUnreachable,
    inspect_command,
    load_dwd,
    make_window,
    parse_products,
    parse_stations,
)


@click.group("load")
def load_group() -> None:
    """Load raw data into the warehouse with dlt.

    Example: weatherinsight load dwd --products wind --stations 1975 --start 2021-01-01 --end 2022-01-01
    """


class LoadProgressBar(LoadProgress):
    """Draws files done, rows parsed and an ETA (by bytes, as files differ a thousandfold in size)."""

    def __init__(self, plan: LoadPlan, bar: Progress) -> None:
        self.bar = bar
        self.rows = 0
        self.files_done = 0
        self.files_total = len(plan.tasks)
        self.by_bytes = all(task.remote.size for task in plan.tasks)
        total = sum(task.remote.size or 0 for task in plan.tasks) if self.by_bytes else len(plan.tasks)
        self.task = bar.add_task("DWD files", total=total, files=self._files(), rows="0")

    def _files(self) -> str:
        return f"{self.files_done}/{self.files_total}"

    def file_started(self, task: FileTask) -> None:
        self.bar.update(self.task, description=task.path.rsplit("/", 1)[-1])

    def rows_parsed(self, rows: int) -> None:
        self.rows += rows
        self.bar.update(self.task, rows=f"{self.rows:,}")

    def file_finished(self, task: FileTask) -> None:
        self.files_done += 1
        self.bar.update(self.task, files=self._files())
        self.bar.advance(self.task, (task.remote.size or 0) if self.by_bytes else 1)


def _print_plan(plan: LoadPlan) -> None:
    table = Table(title=f"would fetch {len(plan.tasks)} files ({len(plan.unchanged)} unchanged, skipped)")
    for column in ("file", "release", "size", "last modified", "window to load"):
        table.add_column(column, overflow="fold")
    for task in plan.tasks:
        windows = ", ".join(
            f"{w.start.date() if w.start else '…'} – {w.end.date() if w.end else '…'}" for w in task.windows
        )
        modified = task.remote.last_modified.isoformat(timespec="minutes") if task.remote.last_modified else "?"
        table.add_row(task.path, task.release, f"{task.remote.size or 0:,}", modified, windows or "all")
    console.print(table)


def _print_summary(result: LoadResult) -> None:
    stats = result.stats
    table = Table(title="DWD load summary")
    table.add_column("table")
    table.add_column("rows loaded", justify="right")
    for name, rows in sorted(stats.rows_by_table.items()):
        table.add_row(name, f"{rows:,}")
    table.add_row("quarantine", f"{stats.rows_quarantined:,}")
    console.print(table)
    if stats.quarantined:
        kept = Table(title="quarantined (kept in raw_dwd.quarantine with the line and reason)")
        kept.add_column("file", overflow="fold")
        kept.add_column("rows", justify="right")
        kept.add_column("reasons", overflow="fold")
        for path, reasons in sorted(stats.quarantined.items()):
            shown = "; ".join(
                f"{reason} ({count:,}×)" if count > 1 else reason for reason, count in reasons.most_common(3)
            )
            more = len(reasons) - 3
            rows = "whole file" if path in stats.whole_files else f"{sum(reasons.values()):,}"
            kept.add_row(path, rows, shown + (f"; {more} more" if more > 0 else ""))
        console.print(kept)
    rate = result.rows_loaded / result.seconds if result.seconds else 0.0
    click.echo(
        f"files fetched: {stats.files_fetched}, skipped as unchanged: {len(result.plan.unchanged)}, "
        f"quarantined: {stats.files_quarantined}, failed: {len(stats.files_failed)}; "
        f"rows loaded: {result.rows_loaded:,} ({rate:,.0f} rows/s); "
        + (
            f"stored: {result.rows_stored:,} new or changed, {sum(result.settled.confirmed.values()):,} "
            "confirmed unchanged; "
            if result.settled.loads
            else ""
        )
        + f"quarantined rows: {stats.rows_quarantined:,}; duration: {result.seconds:.1f} s"
    )


@load_group.command("dwd")
@base_url_option
@click.option("--products", default="", help="Comma-separated products (default: all), e.g. air_temperature,wind.")
@click.option("--stations", default="", help="Comma-separated DWD station ids (default: all), e.g. 44,1975.")
@click.option("--start", type=ISO_DATE, help="First day to load (UTC, inclusive).")
@click.option("--end", type=ISO_DATE, help="Day after the last day to load (UTC, exclusive).")
@click.option("--dry-run", is_flag=True, help="List what would be fetched and loaded; write nothing.")
@click.option(
    "--destination",
    type=click.Choice(["postgres", "lake"]),
    default="postgres",
    show_default=True,
    help="The warehouse (PostgreSQL), or a lake of parquet files for the spark dbt target.",
)
@click.option(
    "--lake-url",
    default=None,
    help="The lake with --destination lake: file:///…, s3://… or a folder "
    "(default: WEATHERINSIGHT_LAKE_URL, else .lake/ in the checkout).",
)
@user_errors(SourceUnreachable, PipelineStepFailed)
def load_dwd_command(
    base_url: str,
    products: str,
    stations: str,
    start: date | None,
    end: date | None,
    dry_run: bool,
    destination: str,
    lake_url: str | None,
) -> None:
    """Load DWD CDC hourly observations (historical and recent) into the raw_dwd dataset.

    A rerun fetches nothing unchanged; a wider window fetches only what is missing.
    Loader state is kept per warehouse (server and database): inspect it with the `dlt pipeline`
    command the summary prints.

    Example: weatherinsight load dwd --base-url http://127.0.0.1:8765/ --products wind --stations 1975
             --start 2021-01-01 --end 2022-01-01
    """
    chosen_products = parse_products(products)
    chosen_stations = parse_stations(stations)
    window = make_window(start, end)
    if lake_url and destination != "lake":
        raise click.UsageError("--lake-url needs --destination lake")
    url = lake.lake_url(lake_url) if destination == "lake" else None
    connection = db.resolve(start=True) if url is None else None
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.fields[files]} files, {task.fields[rows]} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    started: list[bool] = []

    def start_bar(plan: LoadPlan) -> LoadProgressBar:
        bar.start()  # only once there is work, so that errors before it stay one line
        started.append(True)
        return LoadProgressBar(plan, bar)

    try:
        result = load_dwd(
            base_url,
            chosen_products,
            chosen_stations,
            window,
            connection,
            dry_run=dry_run,
            progress_factory=start_bar,
            lake_url=url,
        )
    finally:
        if started:
            bar.stop()
    if dry_run:
        _print_plan(result.plan)
        return
    _print_summary(result)
    if url is not None:
        click.echo(f"lake: {url}/raw_dwd (read it with: weatherinsight dbt build --target spark)")
    click.echo(f"inspect the pipeline with: {inspect_command(connection, lake_url=url)}")
    if result.stats.files_failed:
        raise click.ClickException(
            f"{len(result.stats.files_failed)} files could not be fetched "
            f"({', '.join(result.stats.files_failed[:3])}…); rerun the same command to retry them"
        )


class OpenMeteoProgressBar:
    """Requests done of planned, rows, ETA."""

    def __init__(self, plan, bar: Progress) -> None:
        self.bar = bar
        self.rows = 0
        self.task = bar.add_task("Open-Meteo requests", total=len(plan.batches), files="", rows="0")

    def request_done(self, batch, rows: int) -> None:
        self.rows += rows
        self.bar.update(
            self.task,
            description=f"{batch.api} location {batch.location.location_id} {batch.start}",
            rows=f"{self.rows:,}",
        )
        self.bar.advance(self.task)


def _print_openmeteo_summary(result) -> None:
    table = Table(title="Open-Meteo load summary (checkpoints in raw_openmeteo.checkpoints)")
    for column in ("api", "location", "status", "rows", "requests", "weighted calls", "quarantined", "last error"):
        table.add_column(
            column,
            justify="right" if column in ("rows", "requests", "weighted calls", "quarantined") else "left",
            overflow="fold",
        )
    for outcome in result.outcomes:
        table.add_row(
            outcome.api,
            f"{outcome.location.location_id} {outcome.location.name}",
            outcome.status,
            f"{outcome.rows:,}",
            f"{outcome.requests:,}",
            f"{outcome.weighted:,.1f}",
            f"{outcome.quarantined:,}",
            outcome.last_error or "",
        )
    console.print(table)
    outcomes = result.outcomes
    ok = sum(1 for outcome in outcomes if outcome.status in ("ok", "up to date"))
    answered = sum(outcome.answered for outcome in outcomes)
    planned = sum(outcome.batches for outcome in outcomes)
    quarantined = sum(outcome.quarantined for outcome in outcomes)
    rate = result.rows / result.seconds if result.seconds else 0.0
    success = 100.0 * answered / planned if planned else 100.0
    click.echo(
        f"locations ok: {ok}, failed: {len(result.failed)}; rows loaded: {result.rows:,} ({rate:,.0f} rows/s); "
        f"answers quarantined: {quarantined:,}"
        + (" (kept whole in raw_openmeteo.quarantine; the next load fetches them again)" if quarantined else "")
        + "; "
        f"requests: {result.requests:,} ({sum(o.weighted for o in outcomes):,.1f} weighted calls, "
        f"{result.waited_seconds:.1f} s held back by the rate limit); success rate: {success:.1f} %; "
        f"duration: {result.seconds:.1f} s"
    )


@load_group.command("openmeteo")
@click.option("--api", "api_names", required=True, help="weather, air-quality, or both: weather,air-quality.")
@click.option(
    "--locations", default="", help="Comma-separated ids from seeds/locations.csv (default: every location of the API)."
)
@click.option("--start", type=ISO_DATE, required=True, help="First day to load (UTC, inclusive).")
@click.option("--end", type=ISO_DATE, required=True, help="Day after the last day to load (UTC, exclusive).")
@click.option("--variables", default="", help="Comma-separated variables of one API (default: the seed's defaults).")
@click.option(
    "--batch-days", type=int, default=14, show_default=True, help="Days per request (14 = one call at the provider)."
)
@click.option(
    "--rate-limit", type=int, default=500, show_default=True, help="Weighted calls per minute (the free limit is 600)."
)
@click.option(
    "--base-url",
    default=None,
    help="One mirror serving /v1/archive and /v1/air-quality (also: WEATHERINSIGHT_OPENMETEO_BASE_URL); "
    "default: the real APIs.",
)
@click.option("--dry-run", is_flag=True, help="Show the batches and the calls they cost; fetch and write nothing.")
@click.option("--reset-failed", is_flag=True, help="Retry only the locations whose last load failed.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="Log level of this run's log lines.",
)
@user_errors(PipelineStepFailed)
def load_openmeteo_command(
    api_names: str,
    locations: str,
    start: date,
    end: date,
    variables: str,
    batch_days: int,
    rate_limit: int,
    base_url: str | None,
    dry_run: bool,
    reset_failed: bool,
    log_level: str | None,
) -> None:
    """Load Open-Meteo hourly weather or air quality per location into the raw_openmeteo dataset.

    Requests go out in batches per location, paced to the provider's limits; each location keeps a
    checkpoint, so a killed load resumes where it stopped and a rerun fetches nothing it holds.

    Example: weatherinsight load openmeteo --api weather --locations 1,2 --start 2023-01-01 --end 2024-01-01
    """
    import logging

    from weatherinsight.openmeteo.plan import parse_apis
    from weatherinsight.openmeteo.service import load_openmeteo

    if log_level:
        logging.getLogger("weatherinsight").setLevel(log_level.upper())
    apis = parse_apis(api_names)
    connection = db.resolve(start=True)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} requests, {task.fields[rows]} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    started: list[bool] = []

    def start_bar(plan) -> OpenMeteoProgressBar:
        bar.start()
        started.append(True)
        return OpenMeteoProgressBar(plan, bar)

    try:
        result = load_openmeteo(
            connection,
            apis,
            locations or None,
            start,
            end,
            variables=variables or None,
            batch_days=batch_days,
            rate_limit=rate_limit,
            base_url=base_url,
            dry_run=dry_run,
            reset_failed=reset_failed,
            progress_factory=start_bar,
        )
    finally:
        if started:
            bar.stop()
    from weatherinsight.openmeteo.service import budget_used, make_limiter

    plan = result.plan
    budget = budget_used(connection, rate_limit) if dry_run else None
    held = make_limiter(rate_limit).wait_seconds(plan.weighted_calls, budget.used if budget else None)
    click.echo(
        f"{len(plan.batches):,} requests to send ({plan.weighted_calls:,.1f} weighted calls: held back "
        f"{held / 60:.1f} min by the limits at {rate_limit} calls a minute, plus the time the requests take); "
        f"{plan.already_loaded:,} batches already loaded"
    )
    if dry_run:
        click.echo(budget.describe())
        return
    if reset_failed and not result.outcomes:
        click.echo("no location failed in its last load: nothing to retry")
        return
    _print_openmeteo_summary(result)
    if result.failed:
        names = ", ".join(f"{o.api} {o.location.location_id}" for o in result.failed[:5])
        raise click.ClickException(
            f"{len(result.failed)} location(s) failed ({names}): see last error above; "
            "rerun with --reset-failed to retry only them"
        )
