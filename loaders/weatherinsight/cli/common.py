"""Shared CLI pieces: logging, parameter types and error translation."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import click
import psycopg2
from rich.console import Console

from weatherinsight import db
from weatherinsight.errors import RequestError

log = logging.getLogger("weatherinsight")


def _console(stderr: bool = False) -> Console:
    """A rich console; piped into a file or another program (no terminal, no COLUMNS), as wide as
    the content needs instead of the 80 columns rich assumes, which cut file names and windows."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(stderr=stderr, width=width)


#: columns of output that goes to a pipe or a file
PIPED_WIDTH = 250
console = _console(stderr=True)
#: reports (plans, status, validate) go to stdout, so they can be piped and saved
report = _console()


def log_file():
    folder = db.project_root() / "logs"
    folder.mkdir(exist_ok=True)
    return folder / "weatherinsight.log"


def setup_logging(verbose: bool) -> None:
    """Details go to ``logs/weatherinsight.log``; with ``-v`` the terminal gets them too. Without it the
    terminal shows only what commands print: progress, summaries and one-line errors."""
    root = logging.getLogger()
    if getattr(root, "_weatherinsight_configured", False):
        return
    root.setLevel(logging.INFO)
    handler = logging.FileHandler(log_file(), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if verbose:
        terminal = logging.StreamHandler()
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(terminal)
    root._weatherinsight_configured = True  # type: ignore[attr-defined]


class IsoDate(click.ParamType):
    """An ISO date (YYYY-MM-DD)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value), "%Y-%m-%d").date()
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


ISO_DATE = IsoDate()


def _configured_base_url() -> str:
    from weatherinsight.dwd.service import configured_base_url  # dlt: imported only by commands that load

    return configured_base_url()


#: where DWD data is fetched from, for every command that loads
base_url_option = click.option(
    "--base-url",
    default=_configured_base_url,
    show_default="https://opendata.dwd.de/, or [sources.dwd_hourly] base_url in .dlt/config.toml",
    help="DWD open-data root, or a mirror laid out the same way (also: SOURCES__DWD_HOURLY__BASE_URL).",
)


def root_cause(error: BaseException) -> BaseException:
    """The error dlt's PipelineStepFailed (and its kind) wrap."""
    cause = error
    while isinstance(getattr(cause, "exception", None), BaseException):
        cause = cause.exception
    return cause


def one_line(error: BaseException) -> str:
    """The most telling single line of an error (dlt wraps the real cause in several lines)."""
    cause = root_cause(error)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def user_errors(*error_types: type[BaseException]) -> Callable:
    """Turn the listed exceptions (and database errors, a lost connection among them) into one line
    and exit code 1; a wrong request (:class:`RequestError`) is a usage error in every command: one
    line, exit code 2, nothing changed."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except RequestError as error:
                raise click.UsageError(str(error)) from error
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                if getattr(error, "pgcode", None) is not None:  # the server's answer to a statement
                    raise
                log.exception("lost the database connection")
                raise click.ClickException(
                    f"lost the connection to PostgreSQL ({one_line(error)}); nothing half-written was kept:"
                    " rerun the same command once the server is back"
                ) from error
            except (db.DatabaseError, *error_types) as error:
                if isinstance(root_cause(error), KeyboardInterrupt):  # Ctrl-C inside a dlt step
                    log.warning("interrupted")
                    raise click.exceptions.Abort() from error
                log.exception("command failed")
                raise click.ClickException(one_line(error)) from error

        return wrapper

    return decorate
