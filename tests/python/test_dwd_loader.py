"""The dlt loader against a local HTTP mirror and a real PostgreSQL: given files on the mirror,
when a load runs, then these raw rows, this state, these quarantined files."""

from __future__ import annotations

import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest

from weatherinsight import db
from weatherinsight.dwd.archives import delivery_id
from weatherinsight.dwd.service import load_dwd, make_window, parse_products, parse_stations
from weatherinsight.dwd.settings import HOURLY_PATH
from weatherinsight.dwd.settle import settle
from weatherinsight.dwd.upgrade import tables_to_upgrade

from conftest import DELIVERIES, SAMPLE_MIRROR, Mirror, archive_hours, query

pytestmark = pytest.mark.quick


def load(
    mirror: Mirror,
    database,
    pipelines_dir,
    products="wind",
    stations="1975",
    start=None,
    end=None,
    session=None,
    dry_run=False,
):
    return load_dwd(
        mirror.base_url,
        parse_products(products),
        parse_stations(stations),
        make_window(start, end),
        database,
        dry_run=dry_run,
        pipelines_dir=pipelines_dir,
        session=session,
    )


def execute(connection, statements: str) -> None:
    conn = db.connect(connection)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(statements)
    finally:
        conn.close()


def raw_count(database, table: str) -> int:
    return query(database, f"select count(*) from raw_dwd.{table}")[0][0]


def test_load_keeps_delivery_metadata_once_per_delivery(mirror, database, pipelines_dir) -> None:
    result = load(mirror, database, pipelines_dir)
    assert result.stats.rows_by_table["wind"] == 13200
    assert raw_count(database, "wind") == 13200
    # the per-file facts are one deliveries row, which every raw row of the archive references
    row = query(
        database,
        "select deliveries.release, deliveries.source_file, deliveries.file_size,"
        " (deliveries.file_created_at at time zone 'UTC')::date, wind._dlt_load_id, count(*)"
        " from raw_dwd.wind as wind join raw_dwd.deliveries as deliveries using (delivery_id)"
        " where wind._dlt_load_id = deliveries._dlt_load_id group by 1, 2, 3, 4, 5",
    )
    assert len(row) == 1 and row[0][5] == 13200
    release, source_file, size, created, load_id, _ = row[0]
    assert (release, source_file) == ("recent", "wind/recent/stundenwerte_FF_01975_akt.zip")
    assert size == (mirror.hourly / source_file).stat().st_size
    assert created == date(2021, 9, 19)  # DWD's own time stamp inside the archive
    assert query(database, "select delivery_id from raw_dwd.deliveries where product = 'wind'") == [
        (delivery_id(load_id, source_file),)
    ]
    raw_columns = {
        name
        for (name,) in query(database, "select column_name from information_schema.columns where table_name = 'wind'")
    }
    assert raw_columns.isdisjoint({"release", "source_file", "file_size", "file_created_at", "loaded_at"})
    # station lists of the product are loaded too, and every raw table exists for dbt
    assert raw_count(database, "station_lists") == 2 * 525
    assert raw_count(database, "air_temperature") == 0


def test_raw_rows_of_the_old_layout_are_keyed_by_the_next_load(mirror, database, pipelines_dir) -> None:
    first = load(mirror, database, pipelines_dir)
    load_id = first.load_info.loads_ids[0]
    # what earlier versions left: the per-file facts on every row, no key, and (before deliveries
    # were recorded) no deliveries row
    execute(
        database,
        """
        alter table raw_dwd.wind add column release varchar, add column source_file varchar,
            add column file_size bigint, add column file_last_modified timestamptz,
            add column file_created_at timestamptz, add column loaded_at timestamptz;
        update raw_dwd.wind as wind set release = deliveries.release, source_file = deliveries.source_file,
            file_size = deliveries.file_size, file_last_modified = deliveries.file_last_modified,
            file_created_at = deliveries.file_created_at, loaded_at = deliveries.loaded_at, delivery_id = null
        from raw_dwd.deliveries as deliveries where deliveries.delivery_id = wind.delivery_id;
        delete from raw_dwd.deliveries;
        """,
    )
    assert tables_to_upgrade(database) == ["wind"]
    again = load(mirror, database, pipelines_dir)
    assert again.plan.tasks == []  # nothing fetched: the rows already in raw are keyed in place
    source_file = "wind/recent/stundenwerte_FF_01975_akt.zip"
    assert query(
        database,
        "select delivery_id, release, source_file, row_count, (file_created_at at time zone 'UTC')::date"
        " from raw_dwd.deliveries",
    ) == [(delivery_id(load_id, source_file), "recent", source_file, 13200, date(2021, 9, 19))]
    assert query(
        database,
        "select count(*), count(deliveries.delivery_id)"
        " from raw_dwd.wind left join raw_dwd.deliveries using (delivery_id)",
    ) == [(13200, 13200)]
    assert tables_to_upgrade(database) == []


def test_second_run_downloads_and_loads_nothing(mirror, database, pipelines_dir) -> None:
    load(mirror, database, pipelines_dir)
    downloads_before = len(mirror.downloads())
    again = load(mirror, database, pipelines_dir)
    assert again.plan.tasks == []
    assert again.rows_loaded == 0
    assert len(mirror.downloads()) == downloads_before
    assert raw_count(database, "wind") == 13200


def test_state_survives_a_lost_working_folder(mirror, database, tmp_path) -> None:
    load(mirror, database, str(tmp_path / "first"))
    again = load(mirror, database, str(tmp_path / "second"))  # state restored from the destination
    assert again.plan.tasks == [] and raw_count(database, "wind") == 13200


def test_window_loads_only_its_hours_and_widening_fetches_the_rest(mirror, database, pipelines_dir) -> None:
    load(mirror, database, pipelines_dir, start=date(2021, 1, 1), end=date(2021, 2, 1))
    utc_days = "(min(observed_at) at time zone 'UTC')::date, (max(observed_at) at time zone 'UTC')::date"
    assert query(database, f"select count(*), {utc_days} from raw_dwd.wind") == [
        (744, date(2021, 1, 1), date(2021, 1, 31))
    ]
    wider = load(mirror, database, pipelines_dir, start=date(2020, 12, 1), end=date(2021, 3, 1))
    assert wider.rows_loaded == (31 + 28) * 24  # December and February only
    assert query(database, "select count(*), count(distinct observed_at) from raw_dwd.wind") == [(2160, 2160)]
    same = load(mirror, database, pipelines_dir, start=date(2021, 1, 1), end=date(2021, 2, 1))
    assert same.plan.tasks == []


def test_historical_archives_outside_the_window_are_not_downloaded(mirror, database, pipelines_dir) -> None:
    load(mirror, database, pipelines_dir, stations="2115", start=date(2024, 6, 1), end=date(2025, 1, 1))
    assert not any("_hist.zip" in path for path in mirror.downloads())
    assert query(database, "select distinct release from raw_dwd.deliveries") == [("recent",)]


def test_republished_file_stores_only_what_changed(mirror, database, pipelines_dir) -> None:
    relative = "wind/recent/stundenwerte_FF_01975_akt.zip"
    current = SAMPLE_MIRROR / HOURLY_PATH / relative  # DWD's download of 2021-09-19
    earlier = DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip"
    mirror.replace(relative, earlier)
    load(mirror, database, pipelines_dir)
    mirror.replace(relative, current)
    second = load(mirror, database, pipelines_dir)
    assert [task.path for task in second.plan.tasks] == [relative]
    # DWD's two real downloads, compared here hour by hour: new hours and revised values or quality
    # levels are stored, the rest is confirmed
    before, after = archive_hours(earlier), archive_hours(current)
    changed = {hour for hour, values in after.items() if before.get(hour) != values}
    assert 0 < len(changed) < len(after) == 13200
    assert second.settled.stored == {"wind": len(changed)}
    assert second.settled.confirmed == {"wind": len(after) - len(changed)}
    assert query(
        database,
        "select (file_created_at at time zone 'UTC')::date, row_count, rows_stored, count(raw.*)"
        " from raw_dwd.deliveries left join raw_dwd.wind as raw using (delivery_id) group by 1, 2, 3 order by 1",
    ) == [
        (date(2021, 8, 27), 13200, 13200, 13200),
        (date(2021, 9, 19), 13200, len(changed), len(changed)),
    ]
    stored = query(
        database,
        "select to_char(observed_at at time zone 'UTC', 'YYYYMMDDHH24') from raw_dwd.wind"
        " join raw_dwd.deliveries using (delivery_id) where file_created_at::date = '2021-09-19'",
    )
    assert {hour for (hour,) in stored} == changed
    # the runs of hours add up to the delivery, and the changed runs are exactly the stored hours
    assert query(
        database,
        "select (select sum(row_count) from raw_dwd.changed_ranges where delivery_id = d.delivery_id),"
        " (select sum(row_count) from raw_dwd.confirmed_ranges where delivery_id = d.delivery_id)"
        " from raw_dwd.deliveries as d where rows_stored < row_count",
    ) == [(len(changed), len(after) - len(changed))]
    # the same version delivered again (loader state lost) stores nothing
    execute(database, "delete from raw_dwd._dlt_pipeline_state")
    shutil.rmtree(pipelines_dir)
    third = load(mirror, database, pipelines_dir)
    assert third.settled.stored == {"wind": 0} and third.settled.confirmed == {"wind": 13200}
    assert raw_count(database, "wind") == 13200 + len(changed)


def test_a_stale_copy_is_kept_as_history_below_the_newer_version(mirror, database, pipelines_dir) -> None:
    relative = "wind/recent/stundenwerte_FF_01975_akt.zip"
    load(mirror, database, pipelines_dir)  # DWD's download of 2021-09-19
    # a mirror then serves the copy of 2021-08-27: fetched (another file version), stored whole
    mirror.replace(relative, DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip")
    stale = load(mirror, database, pipelines_dir)
    assert stale.settled.stored == {"wind": 13200} and stale.settled.confirmed == {"wind": 0}
    assert query(
        database,
        "select (file_created_at at time zone 'UTC')::date, rows_stored, is_history from raw_dwd.deliveries order by 1",
    ) == [(date(2021, 8, 27), 13200, True), (date(2021, 9, 19), 13200, False)]
    # the newest version came back: compared with the newest version settled, history aside
    mirror.replace(relative, SAMPLE_MIRROR / HOURLY_PATH / relative)
    back = load(mirror, database, pipelines_dir)
    assert back.settled.stored == {"wind": 0} and back.settled.confirmed == {"wind": 13200}


def test_a_warehouse_that_stored_every_delivery_whole_drops_exactly_its_duplicates(
    mirror, database, pipelines_dir, monkeypatch
) -> None:
    import dlt

    from weatherinsight.dwd import dwd_hourly

    relative = "wind/recent/stundenwerte_FF_01975_akt.zip"
    earlier = DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip"
    current = SAMPLE_MIRROR / HOURLY_PATH / relative
    mirror.replace(relative, earlier)
    load(mirror, database, pipelines_dir)
    mirror.replace(relative, current)
    # what the versions before settling did: the next delivery's rows appended whole
    monkeypatch.setenv("SOURCES__DWD_HOURLY__BASE_URL", mirror.base_url)
    pipeline = dlt.pipeline(
        pipeline_name="dwd_before_settling",
        destination=dlt.destinations.postgres(credentials=database.dlt_credentials),
        dataset_name="raw_dwd",
        pipelines_dir=str(Path(pipelines_dir) / "before"),
    )
    pipeline.run(dwd_hourly(products=["wind"], stations=[1975], staged=False), loader_file_format="csv")
    execute(
        database,
        "update raw_dwd.deliveries set rows_stored = null, is_history = null;"
        " truncate raw_dwd.changed_ranges, raw_dwd.confirmed_ranges",
    )
    assert raw_count(database, "wind") == 2 * 13200
    before, after = archive_hours(earlier), archive_hours(current)
    repeated = sum(1 for hour, values in after.items() if before.get(hour) == values)
    # the next load upgrades first, then settles what it fetched (its own state had not seen the
    # version the other pipeline loaded): compared with the upgraded rows, all of it is confirmed
    upgraded = load(mirror, database, pipelines_dir)
    assert upgraded.settled.stored == {"wind": 0} and upgraded.settled.confirmed == {"wind": 13200}
    assert raw_count(database, "wind") == 2 * 13200 - repeated
    assert query(
        database,
        "select (file_created_at at time zone 'UTC')::date, rows_stored,"
        " (select sum(row_count) from raw_dwd.confirmed_ranges as runs where runs.delivery_id = d.delivery_id)"
        " from raw_dwd.deliveries as d order by 1, cast(_dlt_load_id as numeric)",
    ) == [
        (date(2021, 8, 27), 13200, None),
        (date(2021, 9, 19), 13200 - repeated, repeated),
        (date(2021, 9, 19), 0, 13200),
    ]


def test_truncated_zip_is_quarantined_and_other_stations_carry_on(mirror, database, pipelines_dir) -> None:
    broken = mirror.hourly / "wind/recent/stundenwerte_FF_01975_akt.zip"
    content = broken.read_bytes()
    broken.write_bytes(content[: len(content) // 2])
    result = load(mirror, database, pipelines_dir, stations="")
    assert result.stats.files_quarantined == 1
    assert query(
        database, "select source_file, raw_line, reason like 'unreadable archive%' from raw_dwd.quarantine"
    ) == [("wind/recent/stundenwerte_FF_01975_akt.zip", None, True)]
    assert query(database, "select distinct station_id from raw_dwd.wind") == [(2115,)]


def test_zip_without_product_file_is_quarantined(mirror, database, pipelines_dir) -> None:
    target = mirror.hourly / "wind/recent/stundenwerte_FF_01975_akt.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("Metadaten_Geographie_01975.txt", "nothing here")
    result = load(mirror, database, pipelines_dir)
    assert result.stats.files_quarantined == 1 and result.rows_loaded == 0
    assert query(database, "select reason from raw_dwd.quarantine") == [("archive holds 0 product files (expected 1)",)]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (2, "    ?", "QN_3 is not a number"),
        (1, "2021023100", "MESS_DATUM is not an hour of the calendar"),  # Arrow alone reads March 3rd
        (1, "2021013125", "MESS_DATUM is not an hour of the calendar"),  # once stopped the whole load
        (3, "  95.0", "F outside the plausible 0..80"),  # 95 m/s: a unit error, not a storm
    ],
)
def test_bad_rows_are_quarantined_and_counted(mirror, database, pipelines_dir, field, value, reason) -> None:
    target = mirror.hourly / "wind/recent/stundenwerte_FF_01975_akt.zip"
    with zipfile.ZipFile(DELIVERIES / "01975_download_2021-08-27" / "stundenwerte_FF_01975_akt.zip") as source:
        member = next(name for name in source.namelist() if name.startswith("produkt_"))
        lines = source.read(member).decode("ascii").split("\r\n")
    fields = lines[10].split(";")
    fields[field] = value  # damage one line
    lines[10] = ";".join(fields)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(member, "\r\n".join(lines))
    result = load(mirror, database, pipelines_dir)
    assert result.stats.rows_quarantined == 1
    assert result.rows_loaded == 13200 - 1
    assert dict(result.stats.quarantined) == {"wind/recent/stundenwerte_FF_01975_akt.zip": {reason: 1}}
    assert query(database, "select count(*) from raw_dwd.quarantine where reason = %s", (reason,)) == [(1,)]
    assert query(database, "select count(distinct observed_at) from raw_dwd.wind") == [(13200 - 1,)]


def test_http_500_fails_one_file_loads_the_rest_and_a_rerun_retries_it(
    mirror, database, pipelines_dir, http_session
) -> None:
    def load_2021():
        return load(mirror, database, pipelines_dir, stations="1975,2115", session=http_session,
                    start=date(2021, 1, 1), end=date(2022, 1, 1))  # fmt: skip

    failing = "wind/recent/stundenwerte_FF_01975_akt.zip"
    mirror.fail(failing)
    first = load_2021()
    assert first.stats.files_failed == [failing]
    assert query(database, "select distinct station_id from raw_dwd.wind") == [(2115,)]
    mirror.failing.clear()
    second = load_2021()
    assert [task.path for task in second.plan.tasks] == [failing]
    assert second.stats.files_failed == []
    # every hour of 2021 the file holds arrived with the rerun (counted from the file itself)
    with zipfile.ZipFile(mirror.hourly / failing) as archive:
        member = next(name for name in archive.namelist() if name.startswith("produkt_"))
        lines = archive.read(member).decode("latin-1").splitlines()[1:]
    in_2021 = sum(1 for line in lines if line.split(";")[1].strip().startswith("2021"))
    assert in_2021 > 6000
    assert query(database, "select count(*) from raw_dwd.wind where station_id = 1975") == [(in_2021,)]


def test_dry_run_writes_nothing(mirror, database, pipelines_dir) -> None:
    result = load(mirror, database, pipelines_dir, dry_run=True)
    assert len(result.plan.tasks) == 3  # the archive and the product's two station lists
    assert query(database, "select count(*) from information_schema.schemata where schema_name = 'raw_dwd'") == [(0,)]


def test_the_source_runs_on_its_own_from_dlt_config_and_state(mirror, database, pipelines_dir, monkeypatch) -> None:
    """As a verified source: configured through dlt's config (here its environment variable), it
    plans from the listing and its own state; a second run fetches nothing."""
    import dlt

    from weatherinsight.dwd import dwd_hourly

    monkeypatch.setenv("SOURCES__DWD_HOURLY__BASE_URL", mirror.base_url)
    pipeline = dlt.pipeline(
        pipeline_name="dwd_standalone",
        destination=dlt.destinations.postgres(credentials=database.dlt_credentials),
        dataset_name="raw_dwd",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(dwd_hourly(products=["wind"], stations=[1975]), loader_file_format="csv")
    # the rows wait in incoming_wind until settled (weatherinsight load dwd settles after its run)
    assert (raw_count(database, "incoming_wind"), raw_count(database, "wind")) == (13200, 0)
    assert settle(database).stored == {"wind": 13200}
    assert raw_count(database, "wind") == 13200
    downloads = len(mirror.downloads())
    pipeline.run(dwd_hourly(products=["wind"], stations=[1975]), loader_file_format="csv")
    assert len(mirror.downloads()) == downloads
    assert raw_count(database, "wind") == 13200
    assert query(database, "select count(*) from raw_dwd.deliveries where product = 'wind'") == [(1,)]
