"""``weatherinsight explain MART --station ID --year Y --quarter Q`` (``--location ID`` for the
Open-Meteo marts): where a quarterly mart row's number came from.

For the row's station and quarter: every DWD delivery (archive) with rows there — its source file,
release, DWD's version stamp (the file's modification time on the server), and per quality level
the hours it delivered, the hours it won in the hourly fact (with a value of the mart's measure,
as the row's ``observation_count`` counts them) and the hours it lost to a better delivery — then the
hours missing, the rows quarantined for the station and quarter, and the run that published the
row (a backfill window of the ledger, or a plain dbt build from change tracking).

For a location's row: every Open-Meteo request (answer) with rows there — its window, when it was
fetched, provisional (fetched within ``PROVISIONAL_DAYS`` of its window's end, so fetched again) or
final — with the hours it delivered, won (the latest fetch of an hour wins) and lost, the answers
quarantined for the location whose window meets the quarter, and the publishing run. Read only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from psycopg2 import sql
from psycopg2.extras import RealDictCursor

from weatherinsight import db
from weatherinsight.dwd.settings import DATASET_NAME as DWD_DATASET
from weatherinsight.openmeteo.settings import PROVISIONAL_DAYS
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, Catalogue, MartModel, load_catalogue
from weatherinsight.ops.backfill.ledger import latest_published_window
from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS, product_source
from weatherinsight.ops.dbt import backfill_target


class ExplainError(RuntimeError):
    """One readable line; ``exit_code`` 1 (no such row) or 2 (unknown mart or station)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Mart:
    model: MartModel
    fact: MartModel
    measure: str  # the hourly measure the row's observation_count counts


def quarterly_marts(catalogue: Catalogue) -> dict[str, Mart]:
    """The quarterly marts (per station or location) by name, each with its hourly fact and main
    measure (from the model's call of `quarterly_features(..., main_measure=...)` in the manifest)."""
    import json

    manifest = json.loads(backfill_target("manifest.json").read_text())
    code = {node["name"]: node.get("raw_code", "") for node in manifest["nodes"].values()}
    marts = {}
    for model in catalogue.models.values():
        if model.grain != "quarter" or model.key not in ("station_id", "location_id"):
            continue
        facts = [catalogue.models[p] for p in model.parents if p in catalogue.models]
        measure = re.search(r"main_measure\s*=\s*['\"](\w+)['\"]", code.get(model.name, ""))
        if len(facts) == 1 and measure:
            marts[model.name] = Mart(model, facts[0], measure.group(1))
    return marts


def resolve_mart(marts: dict[str, Mart], name: str) -> Mart:
    """``quarterly_temperature_features`` or the API's product name ``temperature``."""
    for candidate in (name, f"quarterly_{name}_features"):
        if candidate in marts:
            return marts[candidate]
    raise ExplainError(f"unknown mart {name!r} (known: {', '.join(sorted(marts))})", 2)


def _quarter_index(year: int, quarter: int) -> int:
    return year * 4 + quarter - 1


def explain(
    connection: db.ConnectionSettings,
    mart_name: str,
    station: int | None,
    year: int,
    quarter: int,
    location: int | None = None,
) -> dict:
    """The provenance of one row, as a JSON-able dict (see the module's docstring): the row of
    ``station`` (a DWD mart) or of ``location`` (an Open-Meteo mart)."""
    mart = resolve_mart(quarterly_marts(load_catalogue(connection)), mart_name)
    product = mart.fact.product
    source = product_source(product)
    given = {"station_id": station, "location_id": location}
    unit, key = source.unit, given.pop(source.key)
    if key is None or any(value is not None for value in given.values()):
        raise ExplainError(f"{mart.model.name} has a row per {unit}: give --{unit}", 2)
    conn = db.connect(connection)
    try:
        with conn.cursor(cursor_factory=RealDictCursor) as cursor:
            table = sql.Identifier(MARTS_SCHEMA, mart.model.name)
            by_key = sql.SQL("{} = %s").format(sql.Identifier(source.key))
            cursor.execute(sql.SQL("select year, quarter from {} where {}").format(table, by_key), (key,))
            quarters = [(row["year"], row["quarter"]) for row in cursor.fetchall()]
            if not quarters:
                cursor.execute(
                    sql.SQL("select 1 from {} where {}").format(sql.Identifier(MARTS_SCHEMA, source.dimension), by_key)
                    if db.relation_exists(cursor, MARTS_SCHEMA, source.dimension)
                    else sql.SQL("select 1 where false and %s is null"),
                    (key,),
                )
                known = cursor.fetchone() is not None
                if not known:
                    raise ExplainError(
                        f"unknown {unit} {key}: not in {source.dimension} and no rows in {mart.model.name}", 2
                    )
                raise ExplainError(f"{unit} {key} has no rows in {mart.model.name}", 1)
            if (year, quarter) not in quarters:
                target = _quarter_index(year, quarter)
                nearest = sorted(quarters, key=lambda q: (abs(_quarter_index(*q) - target), q))[:3]
                listed = ", ".join(f"{y}-Q{q}" for y, q in sorted(nearest))
                raise ExplainError(
                    f"no row of {mart.model.name} for {unit} {key} in {year}-Q{quarter}; nearest: {listed}", 1
                )
            cursor.execute(
                sql.SQL("select * from {} where {} and year = %s and quarter = %s").format(table, by_key),
                (key, year, quarter),
            )
            row = cursor.fetchone()
            start = row["quarter_start_at"]
            end_month = start.month + 3
            end = start.replace(year=start.year + (end_month > 12), month=(end_month - 1) % 12 + 1)
            if unit == "station":
                provenance = {
                    "deliveries": _deliveries(cursor, product, mart, key, start, end),
                    "confirmed_by": _confirmed(cursor, product, key, start, end),
                    "quarantined_rows": _quarantined(cursor, product, key, start, end),
                }
            else:
                provenance = {
                    "requests": _requests(cursor, product, mart, key, start, end),
                    "quarantined_answers": _quarantined_answers(cursor, product, key, start, end),
                }
            published_by = _published_by(cursor, mart, product, key, start, end)
    finally:
        conn.close()
    observation_count = int(row["observation_count"])
    return {
        "mart": mart.model.name,
        "product": product,
        source.key: key,
        "year": year,
        "quarter": quarter,
        "quarter_start_at": start.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "measure": mart.measure,
        "observation_count": observation_count,
        "expected_hours": int(row["expected_hours"]),
        "missing_hours": int(row["expected_hours"]) - observation_count,
        **provenance,
        "published_by": published_by,
    }


DELIVERIES_SQL = """
with
raw_rows as (
    select raw.observed_at, raw.quality_level, deliveries.delivery_id, deliveries.source_file, deliveries.release,
        deliveries.file_last_modified, deliveries._dlt_load_id
    from {raw} as raw
    inner join {deliveries} as deliveries
        on deliveries.delivery_id = raw.delivery_id and deliveries._dlt_load_id = raw._dlt_load_id
    where raw.station_id = %(station)s and raw.observed_at >= %(start)s and raw.observed_at < %(end)s
        and deliveries.product = %(product)s
),
facts as (
    select observed_at, source_file, cast(load_id as text) as load_id, {measure} is not null as has_value
    from {fact}
    where station_id = %(station)s and observed_at >= %(start)s and observed_at < %(end)s
)
select
    raw_rows.source_file, raw_rows.release, raw_rows.file_last_modified, raw_rows.quality_level,
    raw_rows.delivery_id, raw_rows._dlt_load_id as load_id,
    count(*) as raw_hours,
    count(*) filter (where won and facts.has_value) as winning_hours,
    count(*) filter (where won and not facts.has_value) as winning_hours_without_value,
    count(*) filter (where not won) as lost_hours
from raw_rows
left join facts on facts.observed_at = raw_rows.observed_at
cross join lateral (
    select coalesce(
        facts.source_file = raw_rows.source_file
        and cast(facts.load_id as numeric) = cast(raw_rows._dlt_load_id as numeric),
        false
    ) as won
) as outcome
group by 1, 2, 3, 4, 5, 6
order by raw_rows.file_last_modified, raw_rows.source_file, raw_rows.quality_level
"""


def _deliveries(cursor, product: str, mart: Mart, station: int, start: datetime, end: datetime) -> list[dict]:
    cursor.execute(
        sql.SQL(DELIVERIES_SQL).format(
            raw=sql.Identifier(DWD_DATASET, product),
            deliveries=sql.Identifier(DWD_DATASET, "deliveries"),
            fact=sql.Identifier(MARTS_SCHEMA, mart.fact.name),
            measure=sql.Identifier(mart.measure),
        ),
        {"station": station, "start": start, "end": end, "product": product},
    )
    counts = ("raw_hours", "winning_hours", "winning_hours_without_value", "lost_hours")
    return [_delivery(row, "quality_level", "delivery_id", "load_id", *counts) for row in cursor.fetchall()]


CONFIRMED_SQL = """
select deliveries.source_file, deliveries.release, deliveries.file_last_modified, deliveries.delivery_id,
    deliveries._dlt_load_id as load_id,
    sum(extract(epoch from least(runs.last_observed_at + interval '1 hour', %(end)s)
        - greatest(runs.first_observed_at, %(start)s)) / 3600)::bigint as confirmed_hours
from {confirmed} as runs
inner join {deliveries} as deliveries on deliveries.delivery_id = runs.delivery_id
where runs.product = %(product)s and runs.station_id = %(station)s
    and runs.first_observed_at < %(end)s and runs.last_observed_at >= %(start)s
group by 1, 2, 3, 4, 5
order by deliveries.file_last_modified, deliveries.source_file
"""


def _confirmed(cursor, product: str, station: int, start: datetime, end: datetime) -> list[dict]:
    """Deliveries that held hours of the quarter unchanged and so stored nothing for them: each
    confirmed what its archive's previous version holds there (``raw_dwd.confirmed_ranges``)."""
    if not db.relation_exists(cursor, DWD_DATASET, "confirmed_ranges"):
        return []
    cursor.execute(
        sql.SQL(CONFIRMED_SQL).format(
            confirmed=sql.Identifier(DWD_DATASET, "confirmed_ranges"),
            deliveries=sql.Identifier(DWD_DATASET, "deliveries"),
        ),
        {"station": station, "start": start, "end": end, "product": product},
    )
    return [_delivery(row, "delivery_id", "load_id", "confirmed_hours") for row in cursor.fetchall()]


def _delivery(row: dict, *columns: str) -> dict:
    """A delivery as explain shows it: its file, release and version stamp, then ``columns``."""
    found = {"source_file": row["source_file"], "release": row["release"]}
    return {**found, "version_stamp": _stamp(row["file_last_modified"]), **{column: row[column] for column in columns}}


def _stamp(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


REQUESTS_SQL = """
with
raw_rows as (
    select raw.observed_at, raw.request_id, raw._dlt_load_id
    from {raw} as raw
    where raw.location_id = %(location)s and raw.observed_at >= %(start)s and raw.observed_at < %(end)s
),
facts as (
    select observed_at, request_id, {measure} is not null as has_value
    from {fact}
    where location_id = %(location)s and observed_at >= %(start)s and observed_at < %(end)s
)
select
    requests.request_id, requests.api, requests.window_start, requests.window_end, requests.fetched_at,
    requests.fetched_at < requests.window_end + make_interval(days => %(provisional_days)s) as provisional,
    raw_rows._dlt_load_id as load_id,
    count(*) as delivered_hours,
    count(*) filter (where won and facts.has_value) as winning_hours,
    count(*) filter (where won and not facts.has_value) as winning_hours_without_value,
    count(*) filter (where not won) as lost_hours
from raw_rows
inner join {requests} as requests
    on requests.request_id = raw_rows.request_id and requests._dlt_load_id = raw_rows._dlt_load_id
left join facts on facts.observed_at = raw_rows.observed_at
cross join lateral (select coalesce(facts.request_id = raw_rows.request_id, false) as won) as outcome
group by 1, 2, 3, 4, 5, 6, 7
order by requests.fetched_at, requests.request_id
"""


def _requests(cursor, product: str, mart: Mart, location: int, start: datetime, end: datetime) -> list[dict]:
    """The answers with rows of ``location`` in the quarter: window, fetched at, provisional or
    final, hours delivered, won (with a value) and lost to a later fetch."""
    source = product_source(product)
    if not db.relation_exists(cursor, source.raw_schema, product):
        return []
    cursor.execute(
        sql.SQL(REQUESTS_SQL).format(
            raw=sql.Identifier(source.raw_schema, product),
            requests=sql.Identifier(source.raw_schema, source.deliveries),
            fact=sql.Identifier(MARTS_SCHEMA, mart.fact.name),
            measure=sql.Identifier(mart.measure),
        ),
        {"location": location, "start": start, "end": end, "provisional_days": PROVISIONAL_DAYS},
    )
    return [
        {
            "request_id": row["request_id"],
            "api": row["api"],
            "window": f"{row['window_start'].date()} – {row['window_end'].date()}",
            "fetched_at": _stamp(row["fetched_at"]),
            "provisional": row["provisional"],
            "load_id": row["load_id"],
            **{
                column: row[column]
                for column in ("delivered_hours", "winning_hours", "winning_hours_without_value", "lost_hours")
            },
        }
        for row in cursor.fetchall()
    ]


def _quarantined_answers(cursor, product: str, location: int, start: datetime, end: datetime) -> dict:
    """Answers for ``location`` quarantined whose window meets the quarter, by reason."""
    source = product_source(product)
    if not db.relation_exists(cursor, source.raw_schema, "quarantine"):
        return {"answers": 0, "reasons": {}}
    cursor.execute(
        sql.SQL(
            "select reason, count(*) as answers from {} where api = %s and location_id = %s"
            " and window_start < %s and window_end > %s group by reason order by reason"
        ).format(sql.Identifier(source.raw_schema, "quarantine")),
        (OPENMETEO_PRODUCTS[product], location, end, start),
    )
    rows = cursor.fetchall()
    return {"answers": sum(row["answers"] for row in rows), "reasons": {row["reason"]: row["answers"] for row in rows}}


def _quarantined(cursor, product: str, station: int, start: datetime, end: datetime) -> dict:
    """Rows of the station's files quarantined whose MESS_DATUM lies in the quarter, and whole files."""
    if not db.relation_exists(cursor, DWD_DATASET, "quarantine"):
        return {"rows": 0, "whole_files": 0, "reasons": {}}
    cursor.execute(
        sql.SQL(
            """
            with
            station_files as (
                select distinct source_file from {deliveries} where product = %(product)s and station_id = %(station)s
            ),
            rejected as (
                select quarantine.raw_line, quarantine.reason,
                    case when split_part(quarantine.raw_line, ';', 2) ~ '^\\s*\\d{{10}}\\s*$'
                        then to_timestamp(trim(split_part(quarantine.raw_line, ';', 2)), 'YYYYMMDDHH24')
                            at time zone 'UTC'
                    end as mess_datum,
                    trim(split_part(quarantine.raw_line, ';', 1)) as station_field
                from {quarantine} as quarantine
                where quarantine.product = %(product)s
                    and (quarantine.source_file in (select source_file from station_files)
                        or quarantine.source_file like %(pattern)s)
            )
            select reason, count(*) filter (where raw_line is not null) as rows,
                count(*) filter (where raw_line is null) as whole_files
            from rejected
            where raw_line is null
                or (mess_datum >= %(start_utc)s and mess_datum < %(end_utc)s
                    and (station_field = ''
                        or station_field ~ '^\\d+$' and cast(station_field as integer) = %(station)s))
            group by reason
            """
        ).format(
            deliveries=sql.Identifier(DWD_DATASET, "deliveries"),
            quarantine=sql.Identifier(DWD_DATASET, "quarantine"),
        ),
        {
            "product": product,
            "station": station,
            "pattern": f"%\\_{station:05d}\\_%",
            "start_utc": start.astimezone(timezone.utc).replace(tzinfo=None),
            "end_utc": end.astimezone(timezone.utc).replace(tzinfo=None),
        },
    )
    rows = cursor.fetchall()
    return {
        "rows": sum(row["rows"] for row in rows),
        "whole_files": sum(row["whole_files"] for row in rows),
        "reasons": {row["reason"]: row["rows"] + row["whole_files"] for row in rows},
    }


def _published_by(cursor, mart: Mart, product: str, station: int, start: datetime, end: datetime) -> dict | None:
    """The latest publish of the row: a backfill window (ledger) or a dbt build (change tracking)."""
    window = latest_published_window(cursor, product, station, start.date(), end.date())
    change = None
    if db.relation_exists(cursor, "ops", "model_changes"):
        cursor.execute(
            "select invocation_id, recorded_at from ops.model_changes where relation = %s"
            " and range_start < %s and range_end > %s and (station_id is null or station_id = %s)"
            " order by change_id desc limit 1",
            (f"{MARTS_SCHEMA}.{mart.model.name}", end, start, station),
        )
        change = cursor.fetchone()
    if window and (change is None or window["finished_at"] >= change["recorded_at"]):
        return {
            "kind": "backfill",
            "run_id": window["run_id"],
            "window_id": window["window_id"],
            "window": f"{window['window_start']} – {window['window_end']}",
            "published_at": window["finished_at"].astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "dbt_invocation_id": window["dbt_invocation_id"],
        }
    if change:
        return {
            "kind": "dbt build",
            "dbt_invocation_id": change["invocation_id"],
            "published_at": change["recorded_at"].astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        }
    return None
