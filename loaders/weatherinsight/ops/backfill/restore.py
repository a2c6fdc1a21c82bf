"""Undo and resume: ``backfill restore`` puts back the rows a run's published windows replaced (kept
in ``ops_backup``); ``backfill resume`` replays the request of a failed or interrupted run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA
from weatherinsight.ops.backfill.changes import forget_processed
from weatherinsight.ops.backfill.errors import BackfillFailed
from weatherinsight.ops.backfill.ledger import BACKUP_SCHEMA, Ledger
from weatherinsight.ops.backfill.locks import WindowLocks, window_lock_keys, writer_locks
from weatherinsight.ops.backfill.publish import table_columns
from weatherinsight.ops.backfill.request import BackfillRequestError, Request
from weatherinsight.windows import Window, range_predicate


class RestoreRefused(BackfillFailed):
    """The run cannot be restored (nothing published, or later runs published over it)."""


@dataclass
class RestoreSummary:
    run_id: int
    restore_run_id: int
    windows: int
    rows_restored: int
    rows_removed: int


def restore(connection: db.ConnectionSettings, run_id: int, force: bool = False, wait: float = 0.0) -> RestoreSummary:
    """Put back the rows the run's published windows replaced (kept in ``ops_backup``)."""
    with Ledger(connection) as ledger:
        windows = _restorable_windows(ledger, run_id, force)
        backups: dict[str, dict] = {}
        for row in windows:
            for item in row["published"] or []:
                backups.setdefault(item["backup"], item)
        restore_id = ledger.start_run("restore", {"run_id": run_id, "force": force})
        try:
            restored, removed = _put_back(
                connection, ledger, run_id, restore_id, backups, [row["dbt_invocation_id"] for row in windows], wait
            )
        except BaseException as error:
            ledger.finish_run(restore_id, "failed", error=str(error).splitlines()[0] if str(error) else repr(error))
            raise
        ledger.finish_run(
            restore_id, "succeeded", windows_total=len(windows), windows_succeeded=len(windows), rows_built=restored
        )
    return RestoreSummary(run_id, restore_id, len(windows), restored, removed)


def _restorable_windows(ledger: Ledger, run_id: int, force: bool) -> list[dict]:
    """The run's published windows, after checking the run can be restored."""
    if not ledger.exists() or ledger.run(run_id) is None:
        raise BackfillRequestError(f"no backfill run {run_id} (list runs with: weatherinsight backfill runs)")
    ledger.reap()
    run = ledger.run(run_id)
    if run["command"] != "run":
        raise BackfillRequestError(f"run {run_id} is a {run['command']}, not a backfill run")
    windows = ledger.published_windows(run_id)
    if not windows:
        raise RestoreRefused(f"run {run_id} has no published windows to restore (status: {run['status']})")
    later = [] if force else ledger.later_overlapping_runs(run_id)
    if later:
        raise RestoreRefused(
            f"run(s) {', '.join(map(str, later))} published overlapping windows after run {run_id}; "
            "restore those first, or pass --force"
        )
    return windows


def _put_back(
    connection: db.ConnectionSettings,
    ledger: Ledger,
    run_id: int,
    restore_id: int,
    backups: dict[str, dict],
    invocation_ids: Sequence[str],
    wait: float,
) -> tuple[int, int]:
    """Under the windows' locks, in one transaction: replace each window's rows with its backup,
    forget what the restored builds processed of raw, mark the run rolled back. (rows put back, removed)"""
    keys = sorted(
        {
            key
            for item in backups.values()
            for key in window_lock_keys(
                [item["model"]], Window(date.fromisoformat(item["start"]), date.fromisoformat(item["end"]))
            )
        }
    )
    conn = db.connect(connection)
    conn.autocommit = True
    restored = removed = 0
    try:
        with WindowLocks(conn, keys, f"the windows of run {run_id}", wait):
            conn.autocommit = False
            with conn.cursor() as cursor:
                writer_locks(cursor, [item["model"] for item in backups.values()])
                for item in backups.values():
                    window = Window(date.fromisoformat(item["start"]), date.fromisoformat(item["end"]))
                    predicate = range_predicate(
                        item["column"], item["column_type"], window, item["stations"], item.get("key", "station_id")
                    )
                    target = sql.Identifier(MARTS_SCHEMA, item["model"])
                    cursor.execute(sql.SQL("delete from {} where {}").format(target, predicate))
                    removed += cursor.rowcount
                    cursor.execute(
                        sql.SQL("insert into {} ({cols}) select {cols} from {}").format(
                            target,
                            sql.Identifier(BACKUP_SCHEMA, item["backup"]),
                            cols=table_columns(cursor, MARTS_SCHEMA, item["model"]),
                        )
                    )
                    restored += cursor.rowcount
                # what the restored builds processed of raw counts as unprocessed again
                forget_processed(cursor, invocation_ids, MARTS_SCHEMA)
                ledger.mark_rolled_back(cursor, run_id, restore_id)
            conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return restored, removed


def resume_request(connection: db.ConnectionSettings, run_id: int | None) -> tuple[int, Request] | None:
    """The request of ``run_id`` (default: the latest run if it failed or was interrupted), retrying
    failed windows; None when there is nothing to resume."""
    with Ledger(connection) as ledger:
        if not ledger.exists():
            if run_id is not None:
                raise BackfillRequestError(f"no backfill run {run_id}: no backfill has run yet")
            return None
        ledger.reap()
        if run_id is None:
            run = ledger.latest_unfinished_run()
            if run is None:
                return None
        else:
            run = ledger.run(run_id)
            if run is None:
                raise BackfillRequestError(f"no backfill run {run_id} (list runs with: weatherinsight backfill runs)")
        if run["command"] != "run":
            raise BackfillRequestError(f"run {run['run_id']} is a {run['command']}, not a backfill run")
        request = Request.from_arguments(run["arguments"])
        request.retry_failed = True
        return run["run_id"], request
