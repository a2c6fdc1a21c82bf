"""The shapes the API answers, so ``/docs`` shows every one. Times are ISO 8601 text in UTC (``Z``),
days ISO dates; a mart's rows keep the columns of the mart (listed by ``/api/v1/features``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Number = int | float
Key = Literal["station_id", "location_id"]


class ErrorAnswer(BaseModel):
    """Every error: one line, plus fields that depend on the error (``parameter``, ``problems``…)."""

    model_config = ConfigDict(extra="allow")
    error: str


class Product(BaseModel):
    product: str
    key: Key
    columns: list[str]


class Products(BaseModel):
    items: list[Product]


class Page(BaseModel):
    """A page of rows and the total of rows the filter selects."""

    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


class FeaturePage(BaseModel):
    """A page of one product's quarterly features, one row per station (or location) and quarter."""

    product: str
    key: Key
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


class Window(BaseModel):
    """One window of a backfill run (``ops.backfill_windows``)."""

    model_config = ConfigDict(extra="allow")
    window_id: int
    run_id: int
    batch: int | None = None
    product: str
    stations: list[int] | None = None
    layer: str | None = None
    window_start: str
    window_end: str
    status: str
    rows_loaded: int | None = None
    rows_built: int | None = None
    checksum: str | None = None
    raw_watermark: Number | None = None
    started_at: str | None = None
    finished_at: str | None = None
    seconds: Number | None = None
    dbt_invocation_id: str | None = None
    published: Any = None
    error: str | None = None


class Run(BaseModel):
    """One backfill run (``ops.backfill_runs``) with its windows."""

    model_config = ConfigDict(extra="allow")
    run_id: int
    command: str
    arguments: Any = None
    status: str
    started_at: str | None = None
    finished_at: str | None = None
    windows_total: int | None = None
    windows_succeeded: int | None = None
    windows_failed: int | None = None
    windows_skipped: int | None = None
    rows_loaded: int | None = None
    rows_built: int | None = None
    estimated_seconds: Number | None = None
    host: str | None = None
    pid: int | None = None
    error: str | None = None
    windows: list[Window]


class CoverageQuarter(BaseModel):
    quarter: str
    start: str
    state: str
    raw_hours: int | None = None
    published_hours: int | None = None
    coverage: Number | None = None
    detail: str | None = None


class Coverage(BaseModel):
    """The coverage matrix of one product, quarter by quarter, as ``weatherinsight status`` shows it."""

    product: str
    start: str
    end: str
    quarters: list[CoverageQuarter]


class LatestRun(BaseModel):
    run_id: int
    finished_at: str | None = None


class Freshness(BaseModel):
    newest_quarter_start: str | None = None
    newest_load_at: str | None = None
    rows: int


class Health(BaseModel):
    status: Literal["ok"]
    database: bool
    latest_successful_run: LatestRun | None = None
    freshness: dict[str, Freshness]
