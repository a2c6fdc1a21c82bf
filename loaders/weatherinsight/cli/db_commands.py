"""``weatherinsight db``: the embedded PostgreSQL (or the server the libpq variables name)."""

from __future__ import annotations

from pathlib import Path

import click

from weatherinsight import db
from weatherinsight.cli.common import user_errors


@click.group("db")
def db_group() -> None:
    """Start, stop and locate the warehouse database.

    \b
    Example:
      weatherinsight db up
      eval "$(weatherinsight db env)"
      weatherinsight db down
    """


@db_group.command("up")
@user_errors()
def up() -> None:
    """Start the embedded PostgreSQL (kept running until `db down`).

    When PGHOST is set, the server it names is used instead and nothing is started.

    Example: weatherinsight db up
    """
    if db.external_configured():
        connection = db.from_env()
        db.ensure_database(connection)
        click.echo(f"PGHOST is set: using {connection.describe()} (no embedded server started)")
        return
    connection = db.embedded_up()
    click.echo(f"running: {connection.describe()}")
    click.echo('point psql, dbt and dlt at it with: eval "$(weatherinsight db env)"')


@db_group.command("down")
@user_errors()
def down() -> None:
    """Stop the embedded PostgreSQL.

    Example: weatherinsight db down
    """
    click.echo("stopped embedded PostgreSQL" if db.embedded_down() else "embedded PostgreSQL was not running")


@db_group.command("status")
@user_errors()
def status() -> None:
    """Say whether the database runs and where; exit 1 when it does not.

    Example: weatherinsight db status
    """
    if db.external_configured():
        connection = db.from_env()
        db.connect(connection).close()
        click.echo(f"reachable: {connection.describe()} (from PGHOST)")
        return
    connection = db.embedded_running()
    if connection is None:
        click.echo(f"not running: embedded PostgreSQL in {db.pgdata_dir()} (start it with: weatherinsight db up)")
        raise SystemExit(1)
    click.echo(f"running: {connection.describe()} (data in {db.pgdata_dir()})")


@db_group.command("env")
@user_errors()
def env() -> None:
    """Print `export` lines for PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE.

    Starts the embedded server when needed. Example: eval "$(weatherinsight db env)"
    """
    click.echo(db.export_lines(db.resolve(start=True)))


@db_group.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@user_errors(OSError)
def backup(file: Path | None) -> None:
    """Dump the whole warehouse (marts, raw, reference data, ledger, loader state) to FILE.

    Custom format, compressed, made with the pg_dump that matches the server (the embedded server's
    own). Default FILE: backups/<database>-<UTC time>.dump in the checkout. Never overwrites a file.

    Example: weatherinsight db backup backups/before-backfill.dump
    """
    from weatherinsight.ops.backup import BackupError
    from weatherinsight.ops.backup import backup as dump

    connection = db.resolve(start=True)
    try:
        path, size, seconds = dump(connection, file)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"backed up {connection.database} to {path} ({size / 1e6:,.1f} MB in {seconds:.1f} s)")


@db_group.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--into", "into", help="Database to restore into (default: the configured one).")
@click.option("--replace", is_flag=True, help="Replace an existing database (it is kept, renamed aside).")
@user_errors(OSError)
def restore(file: Path, into: str | None, replace: bool) -> None:
    """Restore a dump made by `db backup` into a database that does not exist yet (or --replace one).

    The dump is restored into a new database first; only once that succeeded does it take the
    target's name, so a corrupt dump or a failed restore leaves the current warehouse untouched.
    A replaced database is renamed aside (<name>__replaced_<time>), not dropped.

    \b
    Example:
      weatherinsight db restore backups/before-backfill.dump --replace
      weatherinsight db restore backups/before-backfill.dump --into weatherinsight_yesterday
    """
    from weatherinsight.ops.backup import BackupError
    from weatherinsight.ops.backup import restore as load

    connection = db.resolve(start=True)
    try:
        target, aside, seconds = load(connection, file, into, replace)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"restored {file} into {target} in {seconds:.1f} s")
    if aside:
        click.echo(f"the database it replaced is kept as {aside} (drop it when done: dropdb {aside})")
