"""``weatherinsight db``: the embedded PostgreSQL (or the server the libpq variables name)."""

from __future__ import annotations

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
