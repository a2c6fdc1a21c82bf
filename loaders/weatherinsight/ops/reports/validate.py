"""``weatherinsight validate``: every DWD and Open-Meteo product by default; row counts,
completeness against each station's (location's) expected hours, duplicate keys, stations missing
from dim_station (locations from dim_location), every published layer's state and the latest
data-test results, with an exit code. Read only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA
from weatherinsight.ops.backfill.ledger import Ledger
from weatherinsight.ops.backfill.sources import product_source
from weatherinsight.ops.backfill.states import window_facts
from weatherinsight.ops.dbt import backfill_target, run_dbt
from weatherinsight.ops.reports.status import Coverage, coverage, quarter_label, station_spans
from weatherinsight.windows import Window


@dataclass
class ProductCheck:
    product: str
    published_rows: int = 0
    raw_hours: int = 0
    expected_hours: int = 0
    duplicate_keys: int = 0
    unknown_stations: int = 0
    failed_tests: list[str] = field(default_factory=list)
    unit: str = "station"  # what keys its rows: station or location

    @property
    def completeness(self) -> float | None:
        return self.published_rows / self.expected_hours if self.expected_hours else None


@dataclass
class Validation:
    coverage: Coverage
    checks: list[ProductCheck]
    #: data tests that failed over whole tables (``--deep``); None when not run
    deep_failures: list[str] | None = None

    @property
    def errors(self) -> list[str]:
        errors = [
            f"{cell.product} {quarter_label(cell.quarter)}"
            + (f" station {cell.station}" if cell.station is not None else "")
            + f": {cell.state} ({cell.detail})"
            for cell in self.coverage.problems()
        ]
        for check in self.checks:
            if check.duplicate_keys:
                errors.append(f"{check.product}: {check.duplicate_keys} duplicate ({check.unit}, hour) keys")
            errors.extend(f"{check.product}: data test failed: {test}" for test in check.failed_tests)
        errors.extend(f"data test failed over the whole table: {test}" for test in self.deep_failures or [])
        return errors

    @property
    def warnings(self) -> list[str]:
        return [
            f"{check.product}: {check.unknown_stations} {check.unit}(s) not in marts.dim_{check.unit}"
            for check in self.checks
            if check.unknown_stations
        ]

    @property
    def source_gaps(self) -> list[str]:
        """Quarters the delivered files cover without a row: gaps at the source, not in the warehouse."""
        return [
            f"{cell.product} {quarter_label(cell.quarter)}"
            + (f" station {cell.station}" if cell.station is not None else "")
            for cell in self.coverage.cells
            if cell.state == "empty" and cell.raw_hours == 0 and cell.detail.startswith("a gap at the source")
        ]


def validate(
    connection: db.ConnectionSettings,
    products: Sequence[str],
    start: date,
    end: date,
    stations: Sequence[int] | None = None,
    locations: Sequence[int] | None = None,
) -> Validation:
    """Row counts, completeness against expected hours, duplicate keys, stations (locations), test
    results; ``stations`` narrow the DWD products, ``locations`` the Open-Meteo ones."""
    matrix = coverage(connection, products, start, end, stations, locations=locations)
    window = Window(matrix.start, matrix.end)
    bounds = (f"{start} 00:00:00+00", f"{end} 00:00:00+00")
    checks = []
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            for product in products:
                source = product_source(product)
                has_dim = db.relation_exists(cursor, MARTS_SCHEMA, source.dimension)
                check = ProductCheck(product, unit=source.unit)
                checks.append(check)
                chosen = list((locations if source.key == "location_id" else stations) or []) or None
                fact = sql.Identifier(MARTS_SCHEMA, f"fct_hourly_{product}")
                (totals,) = window_facts(cursor, product, f"fct_hourly_{product}", [Window(start, end)], chosen)
                check.raw_hours, check.published_rows = totals.raw_hours, totals.built_hours
                spans = station_spans(cursor, product, by_station=True)
                if chosen:
                    spans = {key: span for key, span in spans.items() if key in chosen}
                keys = sql.SQL(" and {} = any(%s)").format(sql.Identifier(source.key)) if chosen else sql.SQL("")
                arguments = (*bounds, chosen) if chosen else bounds
                # hours each station should have: its observation span clipped to the range
                check.expected_hours = sum(
                    max(0, (min(date.fromordinal(hi.toordinal() + 1), end) - max(lo, start)).days * 24)
                    for lo, hi in spans.values()
                )
                if db.relation_exists(cursor, MARTS_SCHEMA, f"fct_hourly_{product}"):
                    cursor.execute(
                        sql.SQL(
                            "select count(*) from (select 1 from {} where observed_at >= %s and observed_at < %s{keys}"
                            " group by {key}, observed_at having count(*) > 1) as duplicates"
                        ).format(fact, key=sql.Identifier(source.key), keys=keys),
                        arguments,
                    )
                    check.duplicate_keys = cursor.fetchone()[0]
                    if has_dim:
                        cursor.execute(
                            sql.SQL(
                                "select count(distinct f.{key}) from {} as f where f.observed_at >= %s"
                                " and f.observed_at < %s{keys} and not exists (select 1 from {dimension} as d"
                                " where d.{key} = f.{key})"
                            ).format(
                                fact,
                                key=sql.Identifier(source.key),
                                dimension=sql.Identifier(MARTS_SCHEMA, source.dimension),
                                keys=keys,
                            ),
                            arguments,
                        )
                        check.unknown_stations = cursor.fetchone()[0]
    finally:
        conn.close()
    with Ledger(connection) as ledger:
        for check in checks:
            check.failed_tests = ledger.latest_failed_tests(check.product, window.start, window.end)
    return Validation(matrix, checks)


def deep_tests(connection: db.ConnectionSettings) -> list[str]:
    """Every data test over whole tables (``dbt test``: the weekly check; ``dbt build`` and ``update``
    test the rows they changed). Returns the tests that failed or errored; raises RuntimeError when
    dbt could not run."""
    target = backfill_target(connection.database, "validate-deep")
    result = run_dbt(connection, ["test", "--exclude", "test_type:unit"], target)
    if result.returncode == 2:
        raise RuntimeError(f"dbt test could not run; see {result.log_path}")
    return sorted(
        item["unique_id"].split(".")[2]
        for item in result.results
        if item["status"] in ("fail", "error") and item["unique_id"].startswith("test.")
    )
