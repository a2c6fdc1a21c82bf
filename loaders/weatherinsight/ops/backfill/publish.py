"""Write-audit-publish for one window: stage the published rows a build needs into the window's
audit schema, and, once its tests passed, replace the window's published rows with the audit
schema's in one transaction, keeping the replaced rows in ``ops_backup`` for ``backfill restore``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from psycopg2 import sql

from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, MartModel
from weatherinsight.ops.backfill.changes import adopt_audit_changes
from weatherinsight.ops.backfill.ledger import BACKUP_SCHEMA
from weatherinsight.ops.backfill.locks import writer_locks
from weatherinsight.ops.backfill.sources import Ids, ids_for
from weatherinsight.windows import Window, range_predicate


@dataclass
class Published:
    """What a publish replaced: per model its bounds, backup table and row counts."""

    models: list[dict] = field(default_factory=list)
    rows_by_model: dict[str, int] = field(default_factory=dict)


def stage_audit_schema(conn, audit: str, models: Sequence[MartModel], window: Window) -> None:
    """The audit schema with the published rows of the window's quarters of every model involved
    (so a month window still yields whole-quarter aggregates)."""
    quarters = window.widened("quarter")
    with conn.cursor() as cursor:
        schema = sql.Identifier(audit)
        cursor.execute(sql.SQL("drop schema if exists {0} cascade; create schema {0}").format(schema))
        for model in models:
            published = sql.Identifier(MARTS_SCHEMA, model.name)
            staged = sql.Identifier(audit, model.name)
            cursor.execute(sql.SQL("create table {} (like {} including defaults)").format(staged, published))
            cursor.execute(
                sql.SQL("insert into {} select * from {} where {}").format(
                    staged, published, range_predicate(model.column, model.column_type, quarters, None)
                )
            )


def publish_window(
    conn,
    audit: str,
    models: Sequence[MartModel],
    window: Window,
    ids: Ids | None,
    backup_prefix: str,
    record: Callable[[object, Published], None],
) -> Published:
    """Replace the window's published rows of ``models`` with the audit schema's, keep the replaced
    rows in ``ops_backup``, adopt what dbt recorded for the audit schema, and let ``record`` write
    the caller's ledger rows with the same cursor: one transaction, all or nothing."""
    published = Published()
    conn.autocommit = False
    try:
        with conn.cursor() as cursor:
            # the same writer locks dbt's models take: no plain dbt build interleaves
            writer_locks(cursor, [model.name for model in models])
            for model in models:
                published.models.append(_replace(cursor, audit, model, window, ids, backup_prefix))
                published.rows_by_model[model.name] = published.models[-1]["rows_inserted"]
            # what dbt recorded for the audit schema is now the published models' record
            adopt_audit_changes(cursor, audit, MARTS_SCHEMA)
            record(cursor, published)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.autocommit = True
    return published


def _replace(cursor, audit: str, model: MartModel, window: Window, ids: Ids | None, backup_prefix: str) -> dict:
    bounds = window.widened(model.grain)
    stations = ids_for(ids, model.key)
    predicate = range_predicate(model.column, model.column_type, bounds, stations, model.key)
    target = sql.Identifier(MARTS_SCHEMA, model.name)
    backup_name = f"{backup_prefix}__{model.name}"[:63]
    backup = sql.Identifier(BACKUP_SCHEMA, backup_name)
    cursor.execute(sql.SQL("drop table if exists {}").format(backup))
    cursor.execute(sql.SQL("create table {} as select * from {} where {}").format(backup, target, predicate))
    replaced = cursor.rowcount
    cursor.execute(sql.SQL("delete from {} where {}").format(target, predicate))
    columns = table_columns(cursor, MARTS_SCHEMA, model.name)
    cursor.execute(
        sql.SQL("insert into {} ({cols}) select {cols} from {} where {}").format(
            target, sql.Identifier(audit, model.name), predicate, cols=columns
        )
    )
    return {
        "model": model.name,
        "column": model.column,
        "column_type": model.column_type,
        "start": bounds.start.isoformat(),
        "end": bounds.end.isoformat(),
        "stations": list(stations) if stations else None,
        "key": model.key,
        "backup": backup_name,
        "rows_replaced": replaced,
        "rows_inserted": cursor.rowcount,
    }


def checksum(cursor, model: MartModel, window: Window, ids: Ids | None) -> str:
    """md5 over the published rows of ``model`` in ``window`` (and of the stations or locations ``ids`` names)."""
    cursor.execute(
        sql.SQL("select coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from {} as t where {}").format(
            sql.Identifier(MARTS_SCHEMA, model.name), model.predicate(window, ids)
        )
    )
    return cursor.fetchone()[0]


def table_columns(cursor, schema: str, table: str) -> sql.Composed:
    """The quoted column list of a table, in its order."""
    cursor.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
        " order by ordinal_position",
        (schema, table),
    )
    return sql.SQL(", ").join(sql.Identifier(row[0]) for row in cursor.fetchall())
