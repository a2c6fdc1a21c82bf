"""Who the API reads as: the role ``weatherinsight_api`` (``SELECT`` on the marts, the reference data
and the ledger, nothing else), in read-only transactions with a statement timeout."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.settings import DATASET_NAME as DWD_DATASET
from weatherinsight.openmeteo.settings import DATASET_NAME as OPENMETEO_DATASET
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA

READER_ROLE = "weatherinsight_api"
#: schemas the API reads: the published marts, the seeds, the ledger and its read models, and what
#: the coverage matrix compares them with (raw deliveries, staging views)
READ_SCHEMAS = (MARTS_SCHEMA, "reference", "ops", "staging", DWD_DATASET, OPENMETEO_DATASET)
STATEMENT_TIMEOUT_MS = 30_000


def reader(
    connection: db.ConnectionSettings, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> db.ConnectionSettings:
    """``connection`` with every session switched to the read-only role, read-only transactions and
    a statement timeout (libpq startup options: no statement of ours can forget them)."""
    return connection.with_options(
        f"-c role={READER_ROLE} -c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
        " -c timezone=UTC"
    )


def ensure_reader_role(connection: db.ConnectionSettings) -> None:
    """Create the read-only role when missing and grant it ``SELECT`` on what the API reads, now and
    on tables created later by the same user (dbt's full refreshes create new tables)."""
    role = sql.Identifier(READER_ROLE)
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            # two servers starting at once must not race on create role
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.reader-role'))")
            cursor.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("create role {} nologin").format(role))
            cursor.execute("select rolsuper from pg_roles where rolname = current_user")
            if not cursor.fetchone()[0]:
                cursor.execute(sql.SQL("grant {} to current_user").format(role))
            for name in READ_SCHEMAS:
                schema = sql.Identifier(name)
                cursor.execute(sql.SQL("create schema if not exists {}").format(schema))
                for statement in (
                    "grant usage on schema {schema} to {role}",
                    "grant select on all tables in schema {schema} to {role}",
                    "alter default privileges in schema {schema} grant select on tables to {role}",
                ):
                    cursor.execute(sql.SQL(statement).format(schema=schema, role=role))
    except psycopg2.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise db.DatabaseError(
            f"cannot set up the read-only role {READER_ROLE} (the user needs CREATEROLE, or create the role"
            f" and grant it to the user): {first}"
        ) from error
    finally:
        conn.close()
