"""dlt source for DWD CDC hourly station observations.

``dwd_hourly`` has one resource per product (raw table named after the product), a
``station_lists`` resource and quarantine rows routed to the ``quarantine`` table. Every delivery
is appended with its source file, release and file version, so any window can be rebuilt from raw
without refetching. Loader state remembers each file's version (size, Last-Modified) and the time
ranges already loaded from it: a rerun fetches nothing unchanged and a wider window fetches only
what is missing.

Product rows reach dlt as finished CSV load files (``dlt.mark.with_file_import``) with dlt's load id
filled in: dlt imports them into the load package as they are and PostgreSQL's COPY reads them,
so dlt's normalize step does not re-read and re-write every row (that step was half the load time).
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import requests
from dlt.extract.resource import DltResource

from weatherinsight.dwd.listing import RemoteFile, download
from weatherinsight.dwd.parser import (
    ParseError,
    TimeWindow,
    empty_table,
    parse_mez_periods,
    parse_product_file,
    parse_station_list,
)
from weatherinsight.dwd.settings import PIPELINE_NAME, PRODUCTS, Product

log = logging.getLogger(__name__)

_MIN = datetime.min.replace(tzinfo=timezone.utc)
_MAX = datetime.max.replace(tzinfo=timezone.utc)


@dataclass
class FileTask:
    """One file to fetch: a product archive or a station list, and the windows still to load from it."""

    kind: str  # "archive" or "station_list"
    product: Product
    release: str
    remote: RemoteFile
    path: str  # path below the hourly root, the key in loader state
    station_id: int | None = None
    windows: list[TimeWindow] = field(default_factory=lambda: [TimeWindow()])


@dataclass
class LoadStats:
    """Counts a load reports in its summary."""

    files_fetched: int = 0
    files_quarantined: int = 0
    files_failed: list[str] = field(default_factory=list)
    rows_by_table: dict[str, int] = field(default_factory=dict)
    rows_quarantined: int = 0

    def add_rows(self, table: str, rows: int) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + rows


class Progress:
    """Callbacks the source reports to; the CLI draws them as a progress bar."""

    def file_started(self, task: FileTask) -> None: ...

    def rows_parsed(self, rows: int) -> None: ...

    def file_finished(self, task: FileTask) -> None: ...


def _bounds(window: TimeWindow) -> tuple[datetime, datetime]:
    return (window.start or _MIN, window.end or _MAX)


def missing_windows(window: TimeWindow, loaded: Sequence[Sequence[str | None]]) -> list[TimeWindow]:
    """The parts of ``window`` not covered by the ``loaded`` ranges (ISO strings, None = unbounded)."""
    start, end = _bounds(window)
    covered = sorted(
        (datetime.fromisoformat(first) if first else _MIN, datetime.fromisoformat(last) if last else _MAX)
        for first, last in loaded
    )
    gaps: list[TimeWindow] = []
    cursor = start
    for first, last in covered:
        if last <= cursor or first >= end:
            continue
        if first > cursor:
            gaps.append(TimeWindow(None if cursor == _MIN else cursor, first))
        cursor = max(cursor, last)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(TimeWindow(None if cursor == _MIN else cursor, None if end == _MAX else end))
    return gaps


def merge_ranges(loaded: Sequence[Sequence[str | None]], window: TimeWindow) -> list[list[str | None]]:
    """Add ``window`` to the ``loaded`` ranges, merging overlaps; stored as ISO strings."""
    spans = sorted(
        [
            (datetime.fromisoformat(first) if first else _MIN, datetime.fromisoformat(last) if last else _MAX)
            for first, last in loaded
        ]
        + [_bounds(window)]
    )
    merged: list[list[datetime]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [
        [None if first == _MIN else first.isoformat(), None if last == _MAX else last.isoformat()]
        for first, last in merged
    ]


def _metadata_columns(table: pa.Table, task: FileTask, created_at: datetime | None, loaded_at: datetime) -> pa.Table:
    rows = table.num_rows
    timestamp = pa.timestamp("us", tz="UTC")
    extra = {
        "release": pa.array([task.release] * rows, pa.string()),
        "source_file": pa.array([task.path] * rows, pa.string()),
        "file_size": pa.array([task.remote.size] * rows, pa.int64()),
        "file_last_modified": pa.array([task.remote.last_modified] * rows, timestamp),
        "file_created_at": pa.array([created_at] * rows, timestamp),
        "loaded_at": pa.array([loaded_at] * rows, timestamp),
    }
    for name, values in extra.items():
        table = table.append_column(name, values)
    return table


def _quarantine_table(task: FileTask, rejects: Sequence[tuple[str | None, str]], loaded_at: datetime) -> pa.Table:
    return pa.table(
        {
            "product": pa.array([task.product.name] * len(rejects), pa.string()),
            "release": pa.array([task.release] * len(rejects), pa.string()),
            "source_file": pa.array([task.path] * len(rejects), pa.string()),
            "raw_line": pa.array([line for line, _ in rejects], pa.string()),
            "reason": pa.array([reason for _, reason in rejects], pa.string()),
            "quarantined_at": pa.array([loaded_at] * len(rejects), pa.timestamp("us", tz="UTC")),
        }
    )


def _archive_batches(
    handle: IO[bytes], task: FileTask, loaded_at: datetime
) -> Iterator[tuple[pa.Table | None, list[tuple[str | None, str]]]]:
    """Yield (rows, rejects) per batch of one downloaded archive; raise ParseError for a bad archive."""
    try:
        archive = zipfile.ZipFile(handle)
        names = archive.namelist()
        products = [name for name in names if name.startswith("produkt_") and name.endswith(".txt")]
        if len(products) != 1:
            raise ParseError(f"archive holds {len(products)} product files (expected 1)")
        parameters = [name for name in names if name.startswith("Metadaten_Parameter") and name.endswith(".txt")]
        mez = parse_mez_periods(archive.read(parameters[0]).decode("latin-1")) if parameters else []
        info = archive.getinfo(products[0])
        created_at = datetime(*info.date_time, tzinfo=timezone.utc)
        with archive.open(products[0]) as stream:
            for batch in parse_product_file(stream, task.product, task.station_id, mez, task.windows):
                rows = _metadata_columns(batch.table, task, created_at, loaded_at) if batch.table.num_rows else None
                yield rows, list(batch.rejects)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ParseError(f"unreadable archive: {error}") from error


def _record_loaded(state: dict, task: FileTask) -> None:
    files = state.setdefault("files", {})
    entry = files.get(task.path)
    if entry is None or {k: entry.get(k) for k in ("size", "last_modified")} != task.remote.version:
        entry = {**task.remote.version, "ranges": []}
    for window in task.windows:
        entry["ranges"] = merge_ranges(entry["ranges"], window)
    files[task.path] = entry


def _file_rows(task: FileTask, session: requests.Session, stats: LoadStats, progress: Progress) -> Iterator[Any]:
    """Fetch and parse one task, yielding Arrow tables marked with their raw table name (rows,
    quarantine rows and, for an archive, its delivery); update the loader state when done."""
    loaded_at = datetime.now(timezone.utc)
    progress.file_started(task)
    try:
        handle = download(session, task.remote)
    except requests.RequestException as error:
        log.error("download failed for %s: %s", task.path, error)
        stats.files_failed.append(task.path)
        progress.file_finished(task)
        return  # state untouched: the next run tries this file again
    stats.files_fetched += 1
    table_name = task.product.name if task.kind == "archive" else "station_lists"
    delivery = Delivery(task, loaded_at)
    try:
        with handle:
            if task.kind == "station_list":
                batches = _station_batches(handle.read(), task, loaded_at)
            else:
                batches = _archive_batches(handle, task, loaded_at)
            for rows, rejects in batches:
                if rows is not None and rows.num_rows:
                    stats.add_rows(table_name, rows.num_rows)
                    progress.rows_parsed(rows.num_rows)
                    if task.kind == "archive":
                        delivery.add(rows)
                        yield from _as_load_file(rows)
                    else:
                        yield dlt.mark.with_table_name(rows, table_name)
                if rejects:
                    stats.rows_quarantined += len(rejects)
                    yield dlt.mark.with_table_name(_quarantine_table(task, rejects, loaded_at), "quarantine")
    except ParseError as error:
        log.warning("quarantined %s: %s", task.path, error)
        stats.files_quarantined += 1
        yield dlt.mark.with_table_name(_quarantine_table(task, [(None, str(error))], loaded_at), "quarantine")
    if delivery.rows:
        # in the same load package as the rows: dbt learns what changed from it once the load completes
        yield dlt.mark.with_table_name(delivery.table(), "deliveries")
    _record_loaded(dlt.current.source_state(), task)
    progress.file_finished(task)


class Delivery:
    """What one archive delivered in one load: its station, file version and the span of hours."""

    SCHEMA = pa.schema(
        [
            ("product", pa.string()),
            ("station_id", pa.int32()),
            ("release", pa.string()),
            ("source_file", pa.string()),
            ("file_size", pa.int64()),
            ("file_last_modified", pa.timestamp("us", tz="UTC")),
            ("file_created_at", pa.timestamp("us", tz="UTC")),
            ("first_observed_at", pa.timestamp("us", tz="UTC")),
            ("last_observed_at", pa.timestamp("us", tz="UTC")),
            ("row_count", pa.int64()),
            ("loaded_at", pa.timestamp("us", tz="UTC")),
        ]
    )

    def __init__(self, task: FileTask, loaded_at: datetime | None) -> None:
        self.task, self.loaded_at = task, loaded_at
        self.rows = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.created_at: datetime | None = None

    def add(self, rows: pa.Table) -> None:
        span = pc.min_max(rows["observed_at"]).as_py()
        self.first = span["min"] if self.first is None else min(self.first, span["min"])
        self.last = span["max"] if self.last is None else max(self.last, span["max"])
        self.created_at = rows["file_created_at"][0].as_py()
        self.rows += rows.num_rows

    def table(self) -> pa.Table:
        task = self.task
        row = {
            "product": task.product.name,
            "station_id": task.station_id,
            "release": task.release,
            "source_file": task.path,
            "file_size": task.remote.size,
            "file_last_modified": task.remote.last_modified,
            "file_created_at": self.created_at,
            "first_observed_at": self.first,
            "last_observed_at": self.last,
            "row_count": self.rows,
            "loaded_at": self.loaded_at,
        }
        return pa.Table.from_pylist([row] if self.rows else [], schema=self.SCHEMA)


def _as_load_file(rows: pa.Table) -> Iterator[Any]:
    """Hand a batch to dlt as a finished CSV load file (what PostgreSQL's COPY reads), with dlt's load
    id column filled in: dlt imports it into the load package as is, skipping its normalize step,
    which otherwise re-reads and re-writes every row."""
    load_id = dlt.current.load_package_state()["load_id"]
    rows = rows.append_column(
        pa.field("_dlt_load_id", pa.string(), nullable=False), pa.array([load_id] * rows.num_rows, pa.string())
    )
    handle, path = tempfile.mkstemp(suffix=".csv", prefix="dwd-")
    os.close(handle)
    try:
        pacsv.write_csv(_csv_ready(rows), path, pacsv.WriteOptions(include_header=True))
        # the hints carry the real column types; the file only the text COPY reads
        yield dlt.mark.with_file_import(path, "csv", items_count=rows.num_rows, hints=rows.schema.empty_table())
    finally:
        os.unlink(path)  # dlt linked or copied it into the load package


def _csv_ready(rows: pa.Table) -> pa.Table:
    """Timestamps as explicit-UTC text (``2021-01-01 00:00:00+00``): Arrow writes time-zone-aware
    timestamps to CSV ~20 times slower than it formats them this way, and the ``+00`` keeps COPY
    from reading them in the session's time zone."""
    columns = []
    for column, field_ in zip(rows.columns, rows.schema, strict=True):
        if pa.types.is_timestamp(field_.type):
            utc_wall_time = pc.cast(column, pa.timestamp(field_.type.unit))  # values stay UTC
            column = pc.binary_join_element_wise(pc.cast(utc_wall_time, pa.string()), pa.scalar("+00"), "")
        columns.append(column)
    return pa.table(columns, names=rows.column_names)


def _station_batches(
    content: bytes, task: FileTask, loaded_at: datetime
) -> Iterator[tuple[pa.Table | None, list[tuple[str | None, str]]]]:
    rows, rejects = parse_station_list(content)
    for row in rows:
        row.update(
            product=task.product.name,
            release=task.release,
            source_file=task.path,
            file_last_modified=task.remote.last_modified,
            loaded_at=loaded_at,
        )
    schema = pa.schema(
        [
            ("station_id", pa.int32()),
            ("first_observed_on", pa.date32()),
            ("last_observed_on", pa.date32()),
            ("height_m", pa.float64()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            ("station_name", pa.string()),
            ("state", pa.string()),
            ("product", pa.string()),
            ("release", pa.string()),
            ("source_file", pa.string()),
            ("file_last_modified", pa.timestamp("us", tz="UTC")),
            ("loaded_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    yield pa.Table.from_pylist(rows, schema=schema), list(rejects)


@dlt.source(name=PIPELINE_NAME, max_table_nesting=0)
def dwd_hourly(
    tasks: Sequence[FileTask],
    session: requests.Session,
    stats: LoadStats | None = None,
    progress: Progress | None = None,
) -> list[DltResource]:
    """DWD hourly observations for the planned ``tasks`` (see :func:`weatherinsight.dwd.plan.plan_load`).

    Resources append (``write_disposition="append"``): every delivery is kept and deduplicated
    downstream by dbt; the loader state, not a cursor column, decides what is fetched again.
    """
    stats = stats if stats is not None else LoadStats()
    progress = progress or Progress()
    resources = []
    by_resource: dict[str, list[FileTask]] = {}
    for task in tasks:
        name = task.product.name if task.kind == "archive" else "station_lists"
        by_resource.setdefault(name, []).append(task)
    resources.append(dlt.resource(_empty_tables(), name="raw_tables", write_disposition="append"))
    for name, resource_tasks in by_resource.items():
        resources.append(
            dlt.resource(
                _resource_rows(resource_tasks, session, stats, progress),
                name=name,
                write_disposition="append",
            )
        )
    return resources


def _empty_tables() -> Iterator[Any]:
    """Every raw table with its full schema and no rows, so all tables exist after the first load
    (dbt's sources must resolve even for products not loaded yet)."""
    placeholder = FileTask("archive", next(iter(PRODUCTS.values())), "", RemoteFile("", "", None, None), "")
    for product in PRODUCTS.values():
        yield dlt.mark.with_table_name(_metadata_columns(empty_table(product), placeholder, None, None), product.name)
    yield dlt.mark.with_table_name(_quarantine_table(placeholder, [], None), "quarantine")
    yield dlt.mark.with_table_name(Delivery(placeholder, None).table(), "deliveries")
    yield from (dlt.mark.with_table_name(rows, "station_lists") for rows, _ in _station_batches(b"", placeholder, None))


def _resource_rows(
    tasks: Sequence[FileTask], session: requests.Session, stats: LoadStats, progress: Progress
) -> Iterator[Any]:
    for task in tasks:
        yield from _file_rows(task, session, stats, progress)
