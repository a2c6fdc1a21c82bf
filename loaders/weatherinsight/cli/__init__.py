"""``weatherinsight``: a thin click group over the service modules.

Every command is a few lines that call a service; user errors surface as one line and a
non-zero exit (details go to ``logs/weatherinsight.log``).
"""

from __future__ import annotations

import logging
import sys

import click

from weatherinsight import __version__
from weatherinsight.cli.backfill_commands import backfill_group
from weatherinsight.cli.common import log_file, setup_logging
from weatherinsight.cli.db_commands import db_group
from weatherinsight.cli.dbt_command import dbt_command
from weatherinsight.cli.load_commands import load_group
from weatherinsight.cli.pipeline_command import pipeline_command
from weatherinsight.cli.report_commands import doctor_command, status_command, validate_command
from weatherinsight.cli.show_command import show_command


class _Group(click.Group):
    """Unexpected errors become one line pointing at the log instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - last resort: keep the terminal readable
            logging.getLogger("weatherinsight").exception("unexpected error")
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise click.ClickException(f"{type(error).__name__}: {first_line} (details in {log_file()})") from error


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="weatherinsight")
@click.option("-v", "--verbose", is_flag=True, help="Also log details to the terminal.")
def cli(verbose: bool) -> None:
    """WeatherInsight: DWD hourly observations into PostgreSQL with dlt, modelled with dbt.

    \b
    Example:
      weatherinsight db up
      weatherinsight load dwd --base-url http://127.0.0.1:8765/ --products wind
      weatherinsight dbt build
    """
    setup_logging(verbose)


cli.add_command(db_group)
cli.add_command(load_group)
cli.add_command(pipeline_command)
cli.add_command(dbt_command)
cli.add_command(show_command)
cli.add_command(backfill_group)
cli.add_command(status_command)
cli.add_command(validate_command)
cli.add_command(doctor_command)


def main() -> None:
    """Entry point: usage errors, like every other error, are one line and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
