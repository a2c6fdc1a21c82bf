"""A load's rows settled into the raw tables: only what changed is stored.

DWD regenerates every ``recent`` archive every day: the new version repeats ~500 days the warehouse
already holds and adds a day. dlt loads each archive's rows into ``raw_dwd.incoming_<product>``
(no indexes); settling then compares them, in the database where the earlier rows already are,
with the row the archive's previous version holds for the same station and hour (same values, same
quality level) and stores in ``raw_dwd.<product>`` only the rows that differ: new hours, revised
values, revised quality levels. An archive is a product's release for one station (a historical
archive re-released under a new name is the next version of the same archive). Per delivery it
records ranges of hours: ``changed_ranges`` (stored: what dbt must recompute; change tracking reads
it) and ``confirmed_ranges`` (runs of hours delivered again unchanged: ``explain`` counts them), and
on its ``deliveries`` row ``rows_stored`` and ``is_history``. An archive's first version (nothing to
compare with) is stored as it is, its span one changed range.

A delivery older than one already settled for the same archive (a mirror serving a stale copy) is
stored whole as history (``is_history``): precedence ranks it below the newer versions at the same
quality level, so it never overrides them. Raw therefore grows with the distinct versions of an
hour, not with the deliveries, and every past version stays reconstructable: what delivery ``d``
held for an hour it confirmed is the archive's latest stored row before it.

Settling runs per load, in load order, one transaction each, under the load lock: after every dlt
run, and before the next one plans (a load whose dlt run completed but whose settling was cut off is
settled then; until it is, dbt sees none of its rows, as none of its changes). The upgrade of a
warehouse that stored every delivery whole (:func:`drop_stored_duplicates`) applies the same rule
to the rows it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.dwd.parser import empty_table
from weatherinsight.dwd.settings import DATASET_NAME, PRODUCTS

log = logging.getLogger(__name__)

DELIVERIES = "deliveries"
CHANGED = "changed_ranges"
CONFIRMED = "confirmed_ranges"
#: one row per settled load that stored rows: what change tracking lists (not the ranges, which
#: grow by a row per archive every day)
SETTLED = "settled_loads"
#: columns of a raw row that are its identity or its place, not its observation
NOT_COMPARED = {"station_id", "observed_at", "source_row_number", "delivery_id", "_dlt_load_id"}


def incoming_table(product: str) -> str:
    """The table dlt loads ``product``'s rows into before they are settled."""
    return f"incoming_{product}"


def compared_columns(product: str) -> list[str]:
    """The columns whose equality makes a delivered row the same observation: quality level and measures."""
    return [name for name in empty_table(PRODUCTS[product]).schema.names if name not in NOT_COMPARED]


def stored_columns(product: str) -> list[str]:
    return [*empty_table(PRODUCTS[product]).schema.names, "delivery_id", "_dlt_load_id"]


@dataclass
class SettleStats:
    """What settling stored and what it found delivered again unchanged, per product."""

    stored: dict[str, int] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)
    loads: int = 0

    def add(self, product: str, stored: int, confirmed: int) -> None:
        self.stored[product] = self.stored.get(product, 0) + stored
        self.confirmed[product] = self.confirmed.get(product, 0) + confirmed


RANGES_DDL = """
create table if not exists {table} (
    delivery_id bigint not null,
    product text not null,
    station_id integer not null,
    first_observed_at timestamptz not null,
    last_observed_at timestamptz not null,
    row_count bigint not null,
    _dlt_load_id text not null
);
create index if not exists {load_index} on {table} (_dlt_load_id, product);
create index if not exists {station_index} on {table} (product, station_id, first_observed_at)
"""


def ensure_tables(cursor, schema: str = DATASET_NAME) -> None:
    """The range tables, the settled loads and the two columns settling fills on ``deliveries``. Only what is
    missing is created: ``alter table`` would lock ``deliveries`` against the builds reading it."""
    cursor.execute(
        "select count(*) from information_schema.columns where table_schema = %s and table_name = %s"
        " and column_name in ('rows_stored', 'is_history')",
        (schema, DELIVERIES),
    )
    columns_there = cursor.fetchone()[0] == 2
    if columns_there and all(db.relation_exists(cursor, schema, table) for table in (CHANGED, CONFIRMED, SETTLED)):
        return
    cursor.execute(
        sql.SQL(
            "create table if not exists {} (_dlt_load_id text primary key, settled_at timestamptz not null)"
        ).format(sql.Identifier(schema, SETTLED))
    )
    for table in (CHANGED, CONFIRMED):
        cursor.execute(
            sql.SQL(RANGES_DDL).format(
                table=sql.Identifier(schema, table),
                load_index=sql.Identifier(f"{table}__load_id"),
                station_index=sql.Identifier(f"{table}__station"),
            )
        )
    if not columns_there:
        deliveries = sql.Identifier(schema, DELIVERIES)
        cursor.execute(sql.SQL("alter table {} add column if not exists rows_stored bigint").format(deliveries))
        cursor.execute(sql.SQL("alter table {} add column if not exists is_history boolean").format(deliveries))


def pending_loads(cursor, schema: str = DATASET_NAME) -> list[tuple[str, str]]:
    """(load id, product) of rows loaded but not settled yet, in load order."""
    cursor.execute(
        "select table_name from information_schema.tables where table_schema = %s and table_name like 'incoming\\_%%'",
        (schema,),
    )
    found = []
    for (table,) in cursor.fetchall():
        product = table.removeprefix("incoming_")
        if product not in PRODUCTS:
            continue
        cursor.execute(sql.SQL("select distinct _dlt_load_id from {}").format(sql.Identifier(schema, table)))
        found += [(load_id, product) for (load_id,) in cursor.fetchall()]
    return sorted(found, key=lambda item: (float(item[0]), item[1]))


def settle(connection: db.ConnectionSettings, schema: str = DATASET_NAME) -> SettleStats:
    """Upgrade the rows of deliveries an earlier version stored whole, then settle every loaded,
    unsettled load (one transaction per load and product), in load order."""
    stats = SettleStats()
    conn = db.connect(connection)
    try:
        with conn, conn.cursor() as cursor:
            if not db.relation_exists(cursor, schema, DELIVERIES):
                return stats
            ensure_tables(cursor, schema)
            pending = pending_loads(cursor, schema)
        waiting = sorted({load_id for load_id, _ in pending})
        for product in _products_to_upgrade(conn, schema, waiting):
            with conn, conn.cursor() as cursor:
                dropped = drop_stored_duplicates(cursor, product, schema, waiting)
            log.info("upgraded %s.%s: dropped %s rows equal to the version before them", schema, product, dropped)
        for index, (load_id, product) in enumerate(pending):
            last = all(other != product for _, other in pending[index + 1 :])
            with conn, conn.cursor() as cursor:
                stored, confirmed = _settle_load(cursor, schema, product, load_id, last)
            stats.add(product, stored, confirmed)
            log.info("settled load %s of %s: %s rows stored, %s unchanged", load_id, product, stored, confirmed)
        stats.loads = len(waiting)
    finally:
        conn.close()
    return stats


def _names(columns: list[str], prefix: str = "") -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(prefix) + sql.Identifier(column) for column in columns)


def _row(columns: list[str], alias: str) -> sql.Composable:
    return sql.SQL("row({})").format(_names(columns, f"{alias}."))


#: runs of consecutive hours per delivery, stored or not, from ``{hours}`` (delivery_id, station_id,
#: is_stored, observed_at), into the temporary table ``runs``
RUNS_SQL = """
create temporary table runs on commit drop as
select delivery_id, station_id, is_stored, min(observed_at) as first_observed_at,
    max(observed_at) as last_observed_at, count(*) as row_count
from (
    select delivery_id, station_id, is_stored, observed_at,
        observed_at - interval '1 hour' * row_number() over (
            partition by delivery_id, is_stored order by observed_at
        ) as island
    from {hours}
) as hours
group by delivery_id, station_id, is_stored, island;
"""

#: the ``runs`` recorded: stored ones in ``changed_ranges``, the others in ``confirmed_ranges``, and
#: their loads in ``settled_loads``
RECORD_RUNS_SQL = """
insert into {changed} (delivery_id, product, station_id, first_observed_at, last_observed_at, row_count, _dlt_load_id)
select runs.delivery_id, %(product)s, runs.station_id, runs.first_observed_at, runs.last_observed_at, runs.row_count,
    delivery._dlt_load_id
from runs inner join {deliveries} as delivery on delivery.delivery_id = runs.delivery_id
where runs.is_stored order by runs.delivery_id, runs.first_observed_at;

insert into {confirmed} (delivery_id, product, station_id, first_observed_at, last_observed_at, row_count, _dlt_load_id)
select runs.delivery_id, %(product)s, runs.station_id, runs.first_observed_at, runs.last_observed_at, runs.row_count,
    delivery._dlt_load_id
from runs inner join {deliveries} as delivery on delivery.delivery_id = runs.delivery_id
where not runs.is_stored order by runs.delivery_id, runs.first_observed_at;

-- a load that stored nothing changes nothing: it is not listed
insert into {settled} (_dlt_load_id, settled_at)
select distinct delivery._dlt_load_id, now()
from runs inner join {deliveries} as delivery on delivery.delivery_id = runs.delivery_id
where runs.is_stored
on conflict do nothing;
"""


def _runs_sql(hours: str, schema: str) -> dict[str, sql.Composable]:
    """The two shared fragments, ready for a statement's ``{runs}`` and ``{record_runs}``."""
    return {
        "runs": sql.SQL(RUNS_SQL).format(hours=sql.Identifier(hours)),
        "record_runs": sql.SQL(RECORD_RUNS_SQL).format(
            changed=sql.Identifier(schema, CHANGED),
            confirmed=sql.Identifier(schema, CONFIRMED),
            deliveries=sql.Identifier(schema, DELIVERIES),
            settled=sql.Identifier(schema, SETTLED),
        ),
    }


SETTLE_SQL = """
-- the load's deliveries of this product, each with its archive's state before it
create temporary table settling on commit drop as
select delivery.delivery_id, delivery.station_id, delivery.release, delivery.first_observed_at,
    delivery.last_observed_at, delivery.row_count, archive.is_history,
    -- compared with the previous version: a delivery of an archive settled before, and not history
    archive.has_versions and not archive.is_history as is_compared
from {deliveries} as delivery
cross join lateral (
    select
        coalesce(bool_or(
            (coalesce(known.file_created_at, '-infinity'), coalesce(known.file_last_modified, '-infinity'))
            > (coalesce(delivery.file_created_at, '-infinity'), coalesce(delivery.file_last_modified, '-infinity'))
        ), false) as is_history,
        count(*) > 0 as has_versions
    from {deliveries} as known
    where known.product = delivery.product and known.station_id = delivery.station_id
        and known.release = delivery.release and known.rows_stored is not null
        and not coalesce(known.is_history, false)
) as archive
where delivery.product = %(product)s and delivery._dlt_load_id = %(load_id)s and delivery.rows_stored is null;

-- an archive's first version, or a stale copy: every row is stored, its span is one changed range
insert into {raw} ({stored})
select {stored} from {incoming} as incoming
where incoming._dlt_load_id = %(load_id)s
    and incoming.delivery_id in (select delivery_id from settling where not is_compared);

-- a new version: per archive and hour the row its latest version holds (history excluded)
create temporary table previous on commit drop as
select distinct on (raw.station_id, raw.observed_at, settling.delivery_id)
    settling.delivery_id as settling_id, raw.station_id, raw.observed_at, {raw_compared}
from settling
inner join {raw} as raw
    on raw.station_id = settling.station_id
    and raw.observed_at >= settling.first_observed_at and raw.observed_at <= settling.last_observed_at
inner join {deliveries} as version
    on version.delivery_id = raw.delivery_id and version.release = settling.release
    and not coalesce(version.is_history, false)
where settling.is_compared
order by raw.station_id, raw.observed_at, settling.delivery_id,
    version.file_created_at desc nulls last, version.file_last_modified desc nulls last,
    cast(version._dlt_load_id as numeric) desc;

create temporary table marked on commit drop as
select incoming.*, previous.station_id is null or {incoming_row} is distinct from {previous_row} as is_stored
from {incoming} as incoming
inner join settling on settling.delivery_id = incoming.delivery_id and settling.is_compared
left join previous
    on previous.settling_id = incoming.delivery_id
    and previous.station_id = incoming.station_id and previous.observed_at = incoming.observed_at
where incoming._dlt_load_id = %(load_id)s;

insert into {raw} ({stored})
select {stored} from marked where is_stored;

{runs}

insert into runs (delivery_id, station_id, is_stored, first_observed_at, last_observed_at, row_count)
select delivery_id, station_id, true, first_observed_at, last_observed_at, row_count
from settling where not is_compared;

{record_runs}

update {deliveries} as delivery
set rows_stored = coalesce(counted.rows_stored, 0), is_history = settling.is_history
from settling
left join (
    select delivery_id, sum(row_count) as rows_stored from runs where is_stored group by delivery_id
) as counted on counted.delivery_id = settling.delivery_id
where delivery.delivery_id = settling.delivery_id;

{clear_incoming};

select
    coalesce(sum(row_count) filter (where is_stored), 0),
    coalesce(sum(row_count) filter (where not is_stored), 0)
from runs
"""


def _settle_load(cursor, schema: str, product: str, load_id: str, last: bool) -> tuple[int, int]:
    compared = compared_columns(product)
    stored = stored_columns(product)
    cursor.execute(sql.SQL("set local work_mem = '256MB'"))
    cursor.execute(
        sql.SQL(SETTLE_SQL).format(
            deliveries=sql.Identifier(schema, DELIVERIES),
            raw=sql.Identifier(schema, product),
            incoming=sql.Identifier(schema, incoming_table(product)),
            **_runs_sql("marked", schema),
            raw_compared=_names(compared, "raw."),
            incoming_row=_row(compared, "incoming"),
            previous_row=_row(compared, "previous"),
            stored=_names(stored),
            # the last load waiting in the table: emptied at once, no row by row delete
            clear_incoming=sql.SQL("truncate {}" if last else "delete from {} where _dlt_load_id = %(load_id)s").format(
                sql.Identifier(schema, incoming_table(product))
            ),
        ),
        {"product": product, "load_id": load_id},
    )
    stored_rows, confirmed_rows = cursor.fetchone()
    return int(stored_rows), int(confirmed_rows)


def _products_to_upgrade(conn, schema: str, waiting: list[str]) -> list[str]:
    """Products with deliveries settled by no one and not waiting in incoming: stored whole by a
    version before settling."""
    with conn, conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "select distinct product from {} where rows_stored is null and row_count > 0"
                " and _dlt_load_id <> all(cast(%s as text[]))"
            ).format(sql.Identifier(schema, DELIVERIES)),
            (waiting,),
        )
        return sorted(product for (product,) in cursor.fetchall() if product in PRODUCTS)


UPGRADE_SQL = """
-- every stored row with the row of its archive's version before it (versions in delivery order)
create temporary table versions on commit drop as
select raw.ctid as row_ctid, raw.delivery_id, raw.station_id, raw.observed_at,
    {raw_row} is distinct from lag({raw_row}) over archive_hour as is_stored
from {raw} as raw
inner join {deliveries} as delivery on delivery.delivery_id = raw.delivery_id
where delivery.rows_stored is null and delivery._dlt_load_id <> all(cast(%(waiting)s as text[]))
window archive_hour as (
    partition by raw.station_id, raw.observed_at, delivery.release
    order by delivery.file_created_at nulls first, delivery.file_last_modified nulls first,
        cast(delivery._dlt_load_id as numeric)
);

{runs}

{record_runs}

delete from {raw} as raw using versions where raw.ctid = versions.row_ctid and not versions.is_stored;

update {deliveries} as delivery
set rows_stored = coalesce((
    select sum(row_count) from runs where runs.delivery_id = delivery.delivery_id and runs.is_stored
), 0), is_history = false
where delivery.product = %(product)s and delivery.rows_stored is null
    and delivery._dlt_load_id <> all(cast(%(waiting)s as text[]));

select coalesce(sum(row_count) filter (where not is_stored), 0) from runs
"""


def drop_stored_duplicates(
    cursor, product: str, schema: str = DATASET_NAME, waiting: list[str] | tuple[str, ...] = ()
) -> int:
    """Upgrade ``product``'s raw rows stored by a version before settling: delete each row equal to
    the row its archive's previous version stored for the hour, record the runs as settling does,
    and mark the deliveries settled (those of ``waiting`` loads, still in incoming, aside). Returns
    the rows dropped."""
    compared = compared_columns(product)
    cursor.execute(sql.SQL("set local work_mem = '256MB'"))
    cursor.execute(
        sql.SQL(UPGRADE_SQL).format(
            deliveries=sql.Identifier(schema, DELIVERIES),
            raw=sql.Identifier(schema, product),
            **_runs_sql("versions", schema),
            raw_row=_row(compared, "raw"),
        ),
        {"product": product, "waiting": list(waiting)},
    )
    return int(cursor.fetchone()[0])
