"""The change-tracking tables dbt keeps in ``ops`` (see ``macros/window_replace/change_tracking.sql``), as the
backfill and the reports use them.

dbt writes ``ops.model_changes`` (what each build of a windowed model replaced) and
``ops.processed_changes`` (which input changes each model has processed); the function
``ops.unprocessed_changes(consumer, inputs)`` says what a model has not processed yet. Relations are
named ``schema.table``: ``raw_dwd.wind`` for a raw table, ``marts.fct_hourly_wind`` for a model.

A backfill builds windows in an audit schema, so dbt records them under that schema's name; when
the window is published, :func:`adopt_audit_changes` moves the records to the published names in
the same transaction, and :func:`forget_audit_changes` drops them with an audit schema that is not
published.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from psycopg2 import sql

from weatherinsight.ops.backfill.sources import product_source

SCHEMA = "ops"


def relation_name(schema: str, table: str) -> str:
    """How change tracking names a relation (as the `change_tracking_name` macro does)."""
    return f"{schema}.{table}"


def raw_input(product: str) -> str:
    """The change-tracking name of a product's raw table."""
    return relation_name(product_source(product).raw_schema, product)


def tracking_exists(cursor) -> bool:
    cursor.execute("select to_regprocedure('ops.unprocessed_changes(text, text[])') is not null")
    return bool(cursor.fetchone()[0])


def pending_in_windows(
    cursor,
    consumer: str,
    inputs: Sequence[str],
    windows: Sequence[tuple[date, date]],
    stations: Sequence[int] | None = None,
) -> list[int]:
    """Per window: how many input changes (raw deliveries, upstream builds) that ``consumer`` has not
    processed meet the window (and the stations)."""
    counts = [0] * len(windows)
    if not windows or not tracking_exists(cursor):
        return counts
    values = sql.SQL(", ").join(
        sql.SQL("({}, cast({} as timestamptz), cast({} as timestamptz))").format(
            sql.Literal(index), sql.Literal(f"{start} 00:00:00+00"), sql.Literal(f"{end} 00:00:00+00")
        )
        for index, (start, end) in enumerate(windows)
    )
    station_filter = sql.SQL("")
    if stations:
        station_filter = sql.SQL(" and (pending.station_id is null or pending.station_id = any({}))").format(
            sql.Literal(list(stations))
        )
    cursor.execute(
        sql.SQL(
            "with windows (idx, window_start, window_end) as (values {values})"
            " select windows.idx, count(distinct (pending.input, pending.change_id))"
            " from ops.unprocessed_changes(%s, %s) as pending"
            " join windows on pending.range_start < windows.window_end and pending.range_end > windows.window_start"
            " where not pending.nothing_left{stations} group by windows.idx"
        ).format(values=values, stations=station_filter),
        (consumer, list(inputs)),
    )
    for index, count in cursor.fetchall():
        counts[index] = count
    return counts


def adopt_audit_changes(cursor, audit_schema: str, published_schema: str) -> None:
    """In the publish transaction: what dbt recorded for the audit schema's models becomes the
    published models' record (their changes, and the input changes they processed)."""
    if not tracking_exists(cursor):
        return
    prefix, published = f"{audit_schema}.", f"{published_schema}."

    def published_name(column: str) -> sql.Composed:
        return sql.SQL("case when starts_with({c}, {p}) then {q} || substr({c}, {n}) else {c} end").format(
            c=sql.Identifier(column), p=sql.Literal(prefix), q=sql.Literal(published), n=sql.Literal(len(prefix) + 1)
        )

    cursor.execute(
        sql.SQL("update ops.model_changes set relation = {} where starts_with(relation, %s)").format(
            published_name("relation")
        ),
        (prefix,),
    )
    cursor.execute(
        sql.SQL(
            "insert into ops.processed_changes"
            " (consumer, input, change_id, range_start, range_end, stations, invocation_id, processed_at)"
            " select {}, {}, change_id, range_start, range_end, stations, invocation_id, processed_at"
            " from ops.processed_changes where starts_with(consumer, %s) on conflict do nothing"
        ).format(published_name("consumer"), published_name("input")),
        (prefix,),
    )
    forget_audit_changes(cursor, audit_schema)


def forget_audit_changes(cursor, audit_schema: str) -> None:
    """Drop what dbt recorded for an audit schema's models (the schema was not published)."""
    if not tracking_exists(cursor):
        return
    prefix = f"{audit_schema}."
    cursor.execute("delete from ops.processed_changes where starts_with(consumer, %s)", (prefix,))
    cursor.execute("delete from ops.model_changes where starts_with(relation, %s)", (prefix,))


def forget_processed(cursor, invocation_ids: Sequence[str], published_schema: str) -> None:
    """A restore put back the rows some builds replaced: the raw deliveries those builds processed
    are unprocessed again (a plain build, or the plan, sees raw as newer than the restored rows).
    What they processed of upstream models stays processed: the restore put back the upstream
    model's rows too, so those changes are undone, not pending."""
    ids = [invocation_id for invocation_id in invocation_ids if invocation_id]
    if not ids or not tracking_exists(cursor):
        return
    cursor.execute(
        "delete from ops.processed_changes where invocation_id = any(%s) and starts_with(consumer, %s)"
        " and not starts_with(input, %s)",
        (ids, f"{published_schema}.", f"{published_schema}."),
    )
