"""Reading DWD files into what dlt loads: an archive's product rows as Arrow batches keyed to their
delivery (handed to dlt as finished CSV or parquet load files), its quarantined rows, one ``deliveries`` row
per archive and load with the file's facts, station lists, and every raw table's empty schema."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import IO, Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import requests

from weatherinsight.dwd.listing import RemoteFile, download
from weatherinsight.dwd.parser import (
    ParseError,
    Reject,
    empty_table,
    parse_mez_periods,
    parse_product_file,
)
from weatherinsight.dwd.progress import LoadProgress, LoadStats
from weatherinsight.dwd.settings import PRODUCTS
from weatherinsight.dwd.stations import parse_station_list
from weatherinsight.dwd.tasks import FileTask, record_loaded

log = logging.getLogger(__name__)


def delivery_id(load_id: str, path: str) -> int:
    """The key of one archive's delivery in one load: a signed 64-bit hash of the load id and the
    file's path (a file is fetched once per load), the same for the same load wherever it is computed."""
    digest = hashlib.blake2b(f"{load_id}\0{path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def with_delivery(table: pa.Table, delivery: int | None) -> pa.Table:
    """A product batch with the key of its delivery: the per-file facts (release, file, size,
    version stamps, load time) are one row of ``deliveries``, not repeated on every row."""
    return table.append_column(pa.field("delivery_id", pa.int64()), pa.array([delivery] * table.num_rows, pa.int64()))


def quarantine_rows(task: FileTask, rejects: Sequence[Reject], loaded_at: datetime) -> pa.Table:
    return pa.table(
        {
            "product": pa.array([task.product.name] * len(rejects), pa.string()),
            "release": pa.array([task.release] * len(rejects), pa.string()),
            "source_file": pa.array([task.path] * len(rejects), pa.string()),
            "source_row_number": pa.array([reject.row_number for reject in rejects], pa.int64()),
            "raw_line": pa.array([reject.line for reject in rejects], pa.string()),
            "reason": pa.array([reject.reason for reject in rejects], pa.string()),
            "quarantined_at": pa.array([loaded_at] * len(rejects), pa.timestamp("us", tz="UTC")),
        }
    )


def archive_batches(
    handle: IO[bytes], task: FileTask, delivery: Delivery
) -> Iterator[tuple[pa.Table | None, list[Reject]]]:
    """Yield (rows, rejects) per batch of one downloaded archive, the rows keyed to ``delivery``
    (which learns the product file's creation time); raise ParseError for a bad archive."""
    try:
        archive = zipfile.ZipFile(handle)
        names = archive.namelist()
        products = [name for name in names if name.startswith("produkt_") and name.endswith(".txt")]
        if len(products) != 1:
            raise ParseError(f"archive holds {len(products)} product files (expected 1)")
        parameters = [name for name in names if name.startswith("Metadaten_Parameter") and name.endswith(".txt")]
        mez = parse_mez_periods(archive.read(parameters[0]).decode("latin-1")) if parameters else []
        info = archive.getinfo(products[0])
        delivery.created_at = datetime(*info.date_time, tzinfo=timezone.utc)
        with archive.open(products[0]) as stream:
            for batch in parse_product_file(stream, task.product, task.station_id, mez, task.windows):
                rows = with_delivery(batch.table, delivery.id) if batch.table.num_rows else None
                yield rows, list(batch.rejects)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ParseError(f"unreadable archive: {error}") from error


def file_rows(
    task: FileTask, session: requests.Session, stats: LoadStats, progress: LoadProgress, load_files: LoadFiles
) -> Iterator[Any]:
    """Fetch and parse one task: product rows go to ``load_files``; yield what is ready for dlt,
    marked with its raw table name (finished load files, quarantine rows and, for an archive, its
    delivery); update the loader state when done."""
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
    delivery = Delivery(task, loaded_at, dlt.current.load_package_state()["load_id"])
    try:
        with handle:
            if task.kind == "station_list":
                batches = station_list_batches(handle.read(), task, loaded_at)
            else:
                batches = archive_batches(handle, task, delivery)
            for rows, rejects in batches:
                if rows is not None and rows.num_rows:
                    stats.add_rows(table_name, rows.num_rows)
                    progress.rows_parsed(rows.num_rows)
                    if task.kind == "archive":
                        delivery.add(rows)
                        yield from load_files.add(rows)
                    else:
                        yield dlt.mark.with_table_name(rows, table_name)
                if rejects:
                    stats.quarantine_rows(task.path, [reject.reason for reject in rejects])
                    yield dlt.mark.with_table_name(quarantine_rows(task, rejects, loaded_at), "quarantine")
    except ParseError as error:
        log.warning("quarantined %s: %s", task.path, error)
        stats.quarantine_file(task.path, str(error))
        yield dlt.mark.with_table_name(quarantine_rows(task, [Reject(None, str(error))], loaded_at), "quarantine")
    if delivery.rows:
        # in the same load package as the rows: dbt learns what changed from it once the load completes
        yield dlt.mark.with_table_name(delivery.table(), "deliveries")
    record_loaded(dlt.current.source_state(), task)
    progress.file_finished(task)


class Delivery:
    """What one archive delivered in one load: its key, station, file version and span of hours.
    The raw rows reference it by ``delivery_id``; staging joins it back."""

    SCHEMA = pa.schema(
        [
            ("delivery_id", pa.int64()),
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
            # filled when the rows are settled (weatherinsight.dwd.settle)
            ("rows_stored", pa.int64()),
            ("is_history", pa.bool_()),
        ]
    )

    def __init__(self, task: FileTask, loaded_at: datetime | None, load_id: str | None) -> None:
        self.task, self.loaded_at = task, loaded_at
        self.id = delivery_id(load_id, task.path) if load_id is not None else None
        self.rows = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.created_at: datetime | None = None

    def add(self, rows: pa.Table) -> None:
        span = pc.min_max(rows["observed_at"]).as_py()
        self.first = span["min"] if self.first is None else min(self.first, span["min"])
        self.last = span["max"] if self.last is None else max(self.last, span["max"])
        self.rows += rows.num_rows

    def table(self) -> pa.Table:
        task = self.task
        row = {
            "delivery_id": self.id,
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
            "rows_stored": None,
            "is_history": None,
        }
        return pa.Table.from_pylist([row] if self.rows else [], schema=self.SCHEMA)


class LoadFiles:
    """Product batches handed to dlt as finished load files with dlt's load id column filled in: dlt
    imports them into the load package as they are, skipping its normalize step, which otherwise
    re-reads and re-writes every row. ``csv`` is what PostgreSQL's COPY reads; ``parquet`` what a
    lake (dlt's filesystem destination) keeps. Batches stream into one file until it holds
    ``max_rows`` rows (dlt pays per file: a job, its configuration, its follow-ups), so memory stays
    that of one batch."""

    def __init__(self, max_rows: int = 1_000_000, file_format: str = "csv") -> None:
        if file_format not in ("csv", "parquet"):
            raise ValueError(f"load files are csv or parquet, not {file_format!r}")
        self.max_rows = max_rows
        self.file_format = file_format
        self.path: str | None = None
        self.writer: pacsv.CSVWriter | pq.ParquetWriter | None = None
        self.hints: pa.Table | None = None
        self.load_id = ""
        self.rows = 0

    def add(self, rows: pa.Table) -> Iterator[Any]:
        """Write ``rows``; yield the finished file when it is full."""
        if self.writer is None:
            self.load_id = dlt.current.load_package_state()["load_id"]
        rows = rows.append_column(
            pa.field("_dlt_load_id", pa.string(), nullable=False), pa.array([self.load_id] * rows.num_rows, pa.string())
        )
        ready = _csv_ready(rows) if self.file_format == "csv" else rows
        if self.writer is None:
            handle, self.path = tempfile.mkstemp(suffix=f".{self.file_format}", prefix="dwd-")
            os.close(handle)
            if self.file_format == "csv":
                self.writer = pacsv.CSVWriter(
                    self.path, ready.schema, write_options=pacsv.WriteOptions(include_header=True)
                )
            else:
                self.writer = pq.ParquetWriter(self.path, ready.schema)
            # the hints carry the real column types; a CSV file only the text COPY reads
            self.hints = rows.schema.empty_table()
        self.writer.write_table(ready)
        self.rows += rows.num_rows
        if self.rows >= self.max_rows:
            yield from self.finish()

    def finish(self) -> Iterator[Any]:
        """Yield the file being written, if any."""
        if self.writer is None:
            return
        self.writer.close()
        path, rows, hints = self.path, self.rows, self.hints
        self.writer, self.path, self.rows = None, None, 0
        try:
            yield dlt.mark.with_file_import(path, self.file_format, items_count=rows, hints=hints)
        finally:
            os.unlink(path)  # dlt linked or copied it into the load package

    def discard(self) -> None:
        """Drop a file not handed over (the extract stopped)."""
        if self.writer is not None:
            self.writer.close()
            os.unlink(self.path)
            self.writer, self.path, self.rows = None, None, 0


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


def station_list_batches(
    content: bytes, task: FileTask, loaded_at: datetime
) -> Iterator[tuple[pa.Table | None, list[Reject]]]:
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


def empty_tables() -> Iterator[Any]:
    """Every raw table with its full schema and no rows, so all tables exist after the first load
    (dbt's sources must resolve even for products not loaded yet)."""
    placeholder = FileTask("archive", next(iter(PRODUCTS.values())), "", RemoteFile("", "", None, None), "")
    for product in PRODUCTS.values():
        yield dlt.mark.with_table_name(with_delivery(empty_table(product), None), product.name)
    yield dlt.mark.with_table_name(quarantine_rows(placeholder, [], None), "quarantine")
    yield dlt.mark.with_table_name(Delivery(placeholder, None, None).table(), "deliveries")
    yield from (
        dlt.mark.with_table_name(rows, "station_lists") for rows, _ in station_list_batches(b"", placeholder, None)
    )
