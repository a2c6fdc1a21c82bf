"""Shared CLI pieces: logging, parameter types and error translation."""

from __future__ import annotations

import errno
import functools
import logging
import logging.handlers
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
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


#: the log rotates at this size, keeping LOG_BACKUPS older files beside it
LOG_BYTES, LOG_BACKUPS = 10 * 2**20, 3


def log_file() -> Path:
    """``weatherinsight.log`` in ``WEATHERINSIGHT_LOG_DIR``, by default the checkout's ``logs/``."""
    configured = os.environ.get("WEATHERINSIGHT_LOG_DIR")
    return (Path(configured) if configured else db.project_root() / "logs") / "weatherinsight.log"


def setup_logging(verbose: bool) -> None:
    """Details go to ``logs/weatherinsight.log``; with ``-v`` the terminal gets them too. Without it the
    terminal shows only what commands print: progress, summaries and one-line errors. A log that
    cannot be written stops the command before it does anything."""
    root = logging.getLogger()
    if getattr(root, "_weatherinsight_configured", False):
        return
    root.setLevel(logging.INFO)
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError as error:
        raise click.ClickException(
            f"cannot write the log {path}: {error.strerror or error}; make its folder writable or set"
            " WEATHERINSIGHT_LOG_DIR to one that is"
        ) from error
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


def working_file_cause(error: BaseException) -> OSError | None:
    """The full disk or unwritable folder behind ``error``, however deep dlt wrapped it."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in WORKING_FILE_ERRORS:
            return cause
        inner = getattr(cause, "exception", None)
        pending.extend([inner if isinstance(inner, BaseException) else None, cause.__cause__, cause.__context__])
    return None


def one_line(error: BaseException) -> str:
    """The most telling single line of an error (dlt wraps the real cause in several lines)."""
    cause = root_cause(error)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


#: what a full disk, a quota, a read-only or unwritable folder, or a file where a folder belongs raise
WORKING_FILE_ERRORS = {
    errno.ENOSPC,
    errno.EFBIG,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EEXIST,
}


def working_file_error(error: OSError) -> str:
    """One line for a working file that could not be written, naming the folders a command writes."""
    what = f"{error.filename}: " if error.filename else ""
    return (
        f"cannot write a working file ({what}{error.strerror or error}); free space or fix permissions in dlt's"
        f" folder {db.pipelines_dir()}, the temporary folder {tempfile.gettempdir()} and {log_file().parent},"
        " then rerun the same command: nothing half-written was kept"
    )


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
            except (db.DatabaseError, OSError, *error_types) as error:
                if isinstance(root_cause(error), KeyboardInterrupt):  # Ctrl-C inside a dlt step
                    log.warning("interrupted")
                    raise click.exceptions.Abort() from error
                log.exception("command failed")
                unwritable = working_file_cause(error)
                if unwritable is not None:
                    raise click.ClickException(working_file_error(unwritable)) from error
                if isinstance(error, OSError):  # not a working file: the last-resort handler says what it is
                    raise
                raise click.ClickException(one_line(error)) from error

        return wrapper

    return decorate
