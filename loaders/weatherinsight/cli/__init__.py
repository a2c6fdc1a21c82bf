"""``weatherinsight``: a thin click group over the service modules.

Every command is a few lines that call a service; user errors surface as one line and a
non-zero exit (details go to ``logs/weatherinsight.log``). A command's module is imported when the
command runs, so `weatherinsight dbt` does not pay for importing dlt (~0.5 s).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from weatherinsight import __version__
from weatherinsight.cli.common import log_file, setup_logging

#: command name -> module and attribute (in the order `--help` lists them)
COMMANDS = {
    "db": ("db_commands", "db_group"),
    "load": ("load_commands", "load_group"),
    "pipeline": ("pipeline_command", "pipeline_command"),
    "dbt": ("dbt_command", "dbt_command"),
    "show": ("show_command", "show_command"),
    "backfill": ("backfill_commands", "backfill_group"),
    "update": ("update_command", "update_command"),
    "status": ("report_commands", "status_command"),
    "validate": ("report_commands", "validate_command"),
    "doctor": ("report_commands", "doctor_command"),
    "explain": ("explain_command", "explain_command"),
    "serve": ("serve_command", "serve_command"),
    "lake": ("lake_commands", "lake_group"),
    "standin": ("standin_command", "standin_group"),
}


class _Group(click.Group):
    """Commands imported when used; unexpected errors become one line pointing at the log instead
    of a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(f"weatherinsight.cli.{module}"), attribute)

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
