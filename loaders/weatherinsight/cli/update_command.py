"""``weatherinsight update``: the everyday run (:mod:`weatherinsight.ops.update`)."""

from __future__ import annotations

import logging
import sys

import click

from weatherinsight import db
from weatherinsight.cli.common import report

log = logging.getLogger(__name__)


@click.command("update")
@click.option("--base-url", help="DWD's server or a mirror (default: [sources.dwd_hourly] base_url).")
@click.option(
    "--openmeteo-base-url",
    envvar="WEATHERINSIGHT_OPENMETEO_BASE_URL",
    help="Open-Meteo or a mirror (default: the real APIs; WEATHERINSIGHT_OPENMETEO_BASE_URL).",
)
def update_command(base_url: str | None, openmeteo_base_url: str | None) -> None:
    """Load what is new, build, validate: the everyday run, for cron, a systemd timer or scheduled CI.

    What it keeps up to date is the [update] section of .dlt/config.toml (DWD products and stations,
    Open-Meteo APIs and days). The plain dbt build is skipped when nothing is new. One update at a
    time (a second waits); each is a run of command `update` in the ledger.

    \b
    Exit codes: 0 ok, 1 a data problem (fetch failures, failed build or tests, validate),
    2 a bad configuration, 3 the source or the database unreachable.

    Example: weatherinsight update
    """
    from weatherinsight.lake import LakeError, refuse_spark_target
    from weatherinsight.ops.update import EXIT_UNREACHABLE, UpdateError, configured_scope, run_update

    try:
        refuse_spark_target("weatherinsight update")
    except LakeError as error:
        raise click.UsageError(str(error)) from error
    try:
        scope = configured_scope()
        connection = db.resolve(start=True)
        outcome = run_update(connection, scope, base_url, openmeteo_base_url, say=report.print)
    except UpdateError as error:
        log.error("update failed (exit %s): %s", error.exit_code, error)
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
    except db.DatabaseError as error:
        log.error("update failed: %s", error)
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    loaded = ", ".join(f"{source} {rows:,}" for source, rows in outcome.rows_by_source.items()) or "nothing"
    built = f"built {outcome.models_built} models ({outcome.rows_built:,} rows)" if outcome.built else "build skipped"
    report.print(
        f"update run {outcome.run_id}: loaded {outcome.rows_loaded:,} rows ({loaded}); {built}: "
        f"{outcome.build_reason}; {len(outcome.problems)} problem(s) in {outcome.seconds:.1f} s"
    )
    for problem in outcome.problems:
        click.echo(f"problem: {problem}", err=True)
    if outcome.problems:
        click.echo(f"Error: {len(outcome.problems)} problem(s) (listed above)", err=True)
    sys.exit(outcome.exit_code)
