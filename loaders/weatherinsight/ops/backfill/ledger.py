"""The window ledger: tables in the ``ops`` schema that record every backfill run and window.

The ledger, not process memory, is the truth for what is done. A run holds a session-level
advisory lock on its own id while it lives; a run marked ``running`` whose lock is free has died
(killed, power cut), and :func:`reap` marks it and its unfinished windows failed ("interrupted"),
drops its audit schemas and leaves its published windows as they are (each was published in one
transaction together with its ledger row).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor

from weatherinsight import db
from weatherinsight.ops.backfill.changes import forget_audit_changes

log = logging.getLogger(__name__)

SCHEMA = "ops"
BACKUP_SCHEMA = "ops_backup"
AUDIT_PREFIX = "audit_r"
INTERRUPTED = "interrupted"
#: error prefix of a window that did not get its locks (another run held them): retried like an interrupted one
BUSY = "busy"
#: a value for :meth:`Ledger.update_windows` meaning the database's ``now()``
NOW = object()

DDL = """
create schema if not exists ops;
create schema if not exists ops_backup;

create table if not exists ops.backfill_runs (
    run_id bigserial primary key,
    command text not null,
    arguments jsonb not null,
    status text not null default 'running'
        check (status in ('planned', 'running', 'succeeded', 'failed', 'rolled back')),
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    windows_total integer,
    windows_succeeded integer,
    windows_failed integer,
    windows_skipped integer,
    rows_loaded bigint,
    rows_built bigint,
    estimated_seconds numeric,
    host text,
    pid integer,
    error text
);

create table if not exists ops.backfill_windows (
    window_id bigserial primary key,
    run_id bigint not null references ops.backfill_runs (run_id),
    batch integer not null,
    product text not null,
    stations integer[],
    layer text not null check (layer in ('raw', 'marts')),
    window_start date not null,
    window_end date not null,
    status text not null default 'planned'
        check (status in ('planned', 'running', 'succeeded', 'failed', 'rolled back')),
    rows_loaded bigint,
    rows_built bigint,
    checksum text,
    raw_watermark numeric,
    started_at timestamptz,
    finished_at timestamptz,
    seconds numeric,
    dbt_invocation_id text,
    published jsonb,
    error text
);
create index if not exists backfill_windows__product_window
    on ops.backfill_windows (product, window_start, window_end);
create index if not exists backfill_windows__run on ops.backfill_windows (run_id);

create table if not exists ops.data_quality_results (
    result_id bigserial primary key,
    run_id bigint not null references ops.backfill_runs (run_id),
    batch integer not null,
    products text[] not null,
    window_start date not null,
    window_end date not null,
    test_name text not null,
    model text,
    status text not null,
    failures bigint,
    message text,
    dbt_invocation_id text,
    checked_at timestamptz not null default now()
);
create index if not exists data_quality_results__window
    on ops.data_quality_results (window_start, window_end);
"""


def run_lock_key(run_id: int) -> sql.Composed:
    return sql.SQL("hashtext({})").format(sql.Literal(f"weatherinsight.run:{run_id}"))


@dataclass(frozen=True)
class Attempt:
    """The latest ledger attempt at one (product, window) in the marts layer."""

    run_id: int
    status: str
    error: str | None
    rows_built: int | None

    @property
    def interrupted(self) -> bool:
        """Failed for a reason a rerun mends (killed, or locked out), not for its data."""
        return self.status == "failed" and (self.error or "").startswith((INTERRUPTED, BUSY))


class Ledger:
    """Reads and writes the ledger over one autocommit connection (held for a run's lifetime)."""

    def __init__(self, connection: db.ConnectionSettings) -> None:
        self.connection = connection
        self.conn = db.connect(connection)
        self.conn.autocommit = True

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- set-up -------------------------------------------------------------------------------

    def ensure(self) -> None:
        with self.conn.cursor() as cursor:
            # two commands starting at once must not race on `create table if not exists`
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.ledger-ddl'))")
            try:
                cursor.execute(DDL)
            finally:
                cursor.execute("select pg_advisory_unlock(hashtext('weatherinsight.ledger-ddl'))")

    def exists(self) -> bool:
        return bool(self._one("select to_regclass('ops.backfill_runs') is not null")[0])

    # ---- queries ------------------------------------------------------------------------------

    def _one(self, query: str | sql.Composable, params: Sequence[Any] = ()) -> tuple:
        with self.conn.cursor() as cursor:
            cursor.execute(query, params or None)
            return cursor.fetchone()

    def _all(self, query: str | sql.Composable, params: Sequence[Any] = ()) -> list[tuple]:
        with self.conn.cursor() as cursor:
            cursor.execute(query, params or None)
            return cursor.fetchall()

    def _dicts(self, query: str | sql.Composable, params: Sequence[Any] = ()) -> list[dict]:
        with self.conn.cursor(cursor_factory=RealDictCursor) as cursor:
            cursor.execute(query, params or None)
            return [dict(row) for row in cursor.fetchall()]

    def _execute(self, query: str | sql.Composable, params: Sequence[Any] = ()) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(query, params or None)

    # ---- runs ---------------------------------------------------------------------------------

    def start_run(self, command: str, arguments: dict) -> int:
        """A new run row, with this session holding the run's lock until it closes."""
        (run_id,) = self._one(
            "insert into ops.backfill_runs (command, arguments, status, host, pid) "
            "values (%s, %s, 'running', %s, %s) returning run_id",
            (command, Json(arguments), socket.gethostname(), os.getpid()),
        )
        self._execute(sql.SQL("select pg_advisory_lock({})").format(run_lock_key(run_id)))
        return run_id

    def finish_run(self, run_id: int, status: str, error: str | None = None, **figures: Any) -> None:
        assignments = [sql.SQL("status = %s"), sql.SQL("finished_at = now()"), sql.SQL("error = %s")]
        params: list[Any] = [status, error]
        for name, value in figures.items():
            assignments.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(value)
        self._execute(
            sql.SQL("update ops.backfill_runs set {} where run_id = %s").format(sql.SQL(", ").join(assignments)),
            (*params, run_id),
        )
        self._execute(sql.SQL("select pg_advisory_unlock({})").format(run_lock_key(run_id)))

    def run(self, run_id: int) -> dict | None:
        rows = self._dicts("select * from ops.backfill_runs where run_id = %s", (run_id,))
        return rows[0] if rows else None

    def last_update_fingerprint(self) -> str | None:
        """The project fingerprint the last succeeded ``update`` built with (none before the first)."""
        rows = self._all(
            "select arguments->>'project_fingerprint' from ops.backfill_runs"
            " where command = 'update' and status = 'succeeded' order by run_id desc limit 1"
        )
        return rows[0][0] if rows else None

    def latest_unfinished_run(self) -> dict | None:
        """The latest backfill run, if it failed or was interrupted (a later success supersedes it)."""
        rows = self._dicts("select * from ops.backfill_runs where command = 'run' order by run_id desc limit 1")
        return rows[0] if rows and rows[0]["status"] in ("failed", "running") else None

    def fail_run(self, run_id: int, message: str) -> None:
        """The run stopped (an error, Ctrl-C): its unfinished windows and the run are failed, a window
        that never started saying so."""
        self._execute(
            "update ops.backfill_windows set status = 'failed', finished_at = now(),"
            " error = case when status = 'planned' then %s else %s end"
            " where run_id = %s and status in ('planned', 'running')",
            (f"{message} (before this window started)", message, run_id),
        )
        self.finish_run(run_id, "failed", error=message)

    def set_run_plan(self, run_id: int, windows_total: int, estimated_seconds: float) -> None:
        self._execute(
            "update ops.backfill_runs set windows_total = %s, estimated_seconds = %s where run_id = %s",
            (windows_total, round(estimated_seconds, 1), run_id),
        )

    def recent_runs(self, limit: int) -> list[dict]:
        return self._dicts("select * from ops.backfill_runs order by run_id desc limit %s", (limit,))

    def running_run_ids(self) -> set[int]:
        return {row[0] for row in self._all("select run_id from ops.backfill_runs where status = 'running'")}

    def mark_rolled_back(self, cursor, run_id: int, restore_id: int) -> None:
        """In a restore's transaction: the run and its published windows are rolled back."""
        cursor.execute(
            "update ops.backfill_windows set status = 'rolled back', error = %s"
            " where run_id = %s and layer = 'marts' and status = 'succeeded'",
            (f"restored by run {restore_id}", run_id),
        )
        cursor.execute(
            "update ops.backfill_runs set status = 'rolled back', error = %s where run_id = %s",
            (f"restored by run {restore_id}", run_id),
        )

    # ---- windows ------------------------------------------------------------------------------

    def recent_window_seconds(self, limit: int = 50) -> list[float]:
        """Wall time of the latest succeeded window builds (one dbt build each), newest first."""
        if not self.exists():
            return []
        rows = self._all(
            "select max(seconds) from ops.backfill_windows where layer = 'marts' and status = 'succeeded'"
            " and seconds is not null group by run_id, batch order by max(window_id) desc limit %s",
            (limit,),
        )
        return [float(row[0]) for row in rows]

    def published_windows(self, run_id: int) -> list[dict]:
        """The run's succeeded marts windows, latest first (the order a restore undoes them in)."""
        return self._dicts(
            "select * from ops.backfill_windows where run_id = %s and layer = 'marts' and status = 'succeeded'"
            " order by batch desc, window_id desc",
            (run_id,),
        )

    def later_overlapping_runs(self, run_id: int) -> list[int]:
        """Runs after ``run_id`` that published windows overlapping its published ones."""
        rows = self._all(
            "select distinct later.run_id from ops.backfill_windows as later join ops.backfill_windows as mine"
            " on later.window_start < mine.window_end and mine.window_start < later.window_end"
            " where mine.run_id = %s and mine.status = 'succeeded' and mine.layer = 'marts'"
            " and later.run_id > %s and later.layer = 'marts' and later.status = 'succeeded' order by 1",
            (run_id, run_id),
        )
        return [row[0] for row in rows]

    def latest_failed_tests(self, product: str, start: date, end: date) -> list[str]:
        """Data tests whose latest result in a window meeting [start, end) of ``product`` failed."""
        if not self.exists():
            return []
        rows = self._all(
            "select test_name from (select distinct on (test_name, window_start, window_end) test_name,"
            " status from ops.data_quality_results where %s = any(products) and window_start < %s"
            " and window_end > %s order by test_name, window_start, window_end, result_id desc) as latest"
            " where status in ('fail', 'error') order by 1",
            (product, end, start),
        )
        return sorted({row[0] for row in rows})

    def backup_tables(self) -> tuple[int, int]:
        """How many tables ``ops_backup`` holds and their size in bytes."""
        return self._one(
            "select count(*), coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace where n.nspname = %s and c.relkind = 'r'",
            (BACKUP_SCHEMA,),
        )

    def add_window(
        self,
        run_id: int,
        batch: int,
        product: str,
        stations: Sequence[int] | None,
        layer: str,
        start: date,
        end: date,
        status: str = "planned",
    ) -> int:
        (window_id,) = self._one(
            "insert into ops.backfill_windows (run_id, batch, product, stations, layer, window_start, window_end, "
            "status) values (%s, %s, %s, %s, %s, %s, %s, %s) returning window_id",
            (run_id, batch, product, list(stations) if stations else None, layer, start, end, status),
        )
        return window_id

    def update_windows(self, window_ids: Sequence[int], cursor=None, **values: Any) -> None:
        """Set columns of ledger windows (``cursor`` lets a publish write them in its transaction)."""
        assignments = []
        params: list[Any] = []
        for name, value in values.items():
            if value is NOW:
                assignments.append(sql.SQL("{} = now()").format(sql.Identifier(name)))
                continue
            assignments.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(Json(value) if name == "published" and value is not None else value)
        statement = sql.SQL("update ops.backfill_windows set {} where window_id = any(%s)").format(
            sql.SQL(", ").join(assignments)
        )
        if cursor is not None:
            cursor.execute(statement, (*params, list(window_ids)))
        else:
            self._execute(statement, (*params, list(window_ids)))

    def latest_attempts(self, products: Sequence[str]) -> dict[tuple[str, date, date, tuple], Attempt]:
        """Latest marts-layer attempt per (product, window start, window end, stations)."""
        if not self.exists():
            return {}
        rows = self._all(
            "select distinct on (product, window_start, window_end, coalesce(stations, '{}'))"
            " product, window_start, window_end, stations, run_id, status, error, rows_built"
            " from ops.backfill_windows where layer = 'marts' and product = any(%s) and status <> 'planned'"
            " order by product, window_start, window_end, coalesce(stations, '{}'), window_id desc",
            (list(products),),
        )
        return {
            (product, start, end, tuple(stations or ())): Attempt(run_id, status, error, rows_built)
            for product, start, end, stations, run_id, status, error, rows_built in rows
        }

    def record_test_results(
        self,
        run_id: int,
        batch: int,
        products: Sequence[str],
        start: date,
        end: date,
        invocation_id: str | None,
        results: Sequence[dict],
    ) -> None:
        with self.conn.cursor() as cursor:
            for result in results:
                cursor.execute(
                    "insert into ops.data_quality_results (run_id, batch, products, window_start, window_end, "
                    "test_name, model, status, failures, message, dbt_invocation_id) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        run_id,
                        batch,
                        list(products),
                        start,
                        end,
                        result["name"],
                        result.get("model"),
                        result["status"],
                        result.get("failures"),
                        result.get("message"),
                        invocation_id,
                    ),
                )

    # ---- dead runs ----------------------------------------------------------------------------

    def dead_runs(self) -> list[int]:
        """Runs marked running whose process is gone (their run lock is free)."""
        dead = []
        for (run_id,) in self._all("select run_id from ops.backfill_runs where status = 'running' order by run_id"):
            (free,) = self._one(sql.SQL("select pg_try_advisory_lock({})").format(run_lock_key(run_id)))
            if free:
                self._execute(sql.SQL("select pg_advisory_unlock({})").format(run_lock_key(run_id)))
                dead.append(run_id)
        return dead

    def reap(self) -> list[int]:
        """Mark dead runs and their unfinished windows failed (interrupted); drop their audit schemas."""
        if not self.exists():
            return []
        dead = self.dead_runs()
        for run_id in dead:
            message = f"{INTERRUPTED}: run {run_id} stopped before this window finished"
            self._execute(
                "update ops.backfill_windows set status = 'failed', error = %s, finished_at = now() "
                "where run_id = %s and status in ('running', 'planned')",
                (message, run_id),
            )
            self._execute(
                "update ops.backfill_runs set status = 'failed', finished_at = now(), error = %s where run_id = %s",
                (f"{INTERRUPTED}: the process stopped (killed or crashed); rerun the same command to resume", run_id),
            )
            for schema in self.audit_schemas(run_id):
                self._execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
                with self.conn.cursor() as cursor:
                    forget_audit_changes(cursor, schema)
            log.warning("run %s had died; marked failed (interrupted)", run_id)
        return dead

    def audit_schemas(self, run_id: int | None = None) -> list[str]:
        prefix = f"{AUDIT_PREFIX}{run_id}_" if run_id is not None else AUDIT_PREFIX
        return [
            row[0]
            for row in self._all(
                "select nspname from pg_namespace where starts_with(nspname, %s) order by 1", (prefix,)
            )
        ]


def latest_published_window(cursor, product: str, station: int, start: date, end: date) -> dict | None:
    """The newest window a backfill published for ``product`` that covers ``station`` and meets
    [``start``, ``end``), on the caller's cursor (a dict cursor, in its snapshot), or none."""
    if not db.relation_exists(cursor, "ops", "backfill_windows"):
        return None
    cursor.execute(
        "select run_id, window_id, window_start, window_end, finished_at, dbt_invocation_id"
        " from ops.backfill_windows where layer = 'marts' and status = 'succeeded' and product = %s"
        " and window_start < %s and window_end > %s and (stations is null or %s = any(stations))"
        " order by finished_at desc limit 1",
        (product, end, start, station),
    )
    return cursor.fetchone()


@contextmanager
def open_ledger(connection: db.ConnectionSettings, create: bool = True) -> Iterator[Ledger]:
    ledger = Ledger(connection)
    try:
        if create:
            ledger.ensure()
        yield ledger
    finally:
        ledger.close()


def arguments_json(arguments: dict) -> str:
    return json.dumps(arguments, sort_keys=True, default=str)
