"""The dbt side of a backfill: prepare what window builds read but do not build, and build one
window of the selected models into an audit schema, with every data test that guards its rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from weatherinsight import db
from weatherinsight.ops.catalogue import MARTS_SCHEMA, Catalogue, MartModel
from weatherinsight.ops.dbt import DbtResult
from weatherinsight.ops.dbt_worker import DbtWorker
from weatherinsight.ops.errors import BackfillFailed
from weatherinsight.ops.windows import Window


class PrepareFailed(BackfillFailed):
    """dbt could not build what the window builds need."""


def ensure_relations(
    connection: db.ConnectionSettings, worker: DbtWorker, catalogue: Catalogue, run_dir: Path, refresh_stations: bool
) -> None:
    """Build what a window build reads but does not build, where missing: seeds, staging views, the
    station snapshot and dimension, and the windowed marts (created empty)."""
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            # one preparer at a time: two runs on a fresh database would create the same views at once
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.prepare'))")
            missing_marts = [name for name in catalogue.models if not db.relation_exists(cursor, MARTS_SCHEMA, name)]
            base_missing = not db.relation_exists(cursor, MARTS_SCHEMA, "dim_station") or not db.relation_exists(
                cursor, "staging", "stg_dwd__station_list_entries"
            )
            if base_missing or refresh_stations:
                exclude = ["--exclude", *catalogue.models]
                # seeds, views, the station snapshot and dimension; their tests run in the user's own builds
                no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
                result = worker.run(["build", *exclude, *no_tests], run_dir / "prepare")
                if not result.ok:
                    problems = "; ".join(result.problems()[:3]) or result.first_error_line()
                    raise PrepareFailed(f"preparing the project failed: {problems}")
            if missing_marts:
                # a windowed build of a missing model creates it with the window's rows: none here
                # (dbt's --empty cannot be used: its limit-0 subqueries break `ref(...) as alias`)
                result = worker.run(
                    ["run", "--select", *missing_marts],
                    run_dir / "create",
                    variables={"start_date": "1900-01-01", "end_date": "1900-01-02"},
                )
                if not result.ok:
                    raise PrepareFailed(f"creating the marts failed: {result.first_error_line()}")
    finally:
        conn.close()  # releases the lock


def build_window(
    worker: DbtWorker,
    models: Sequence[MartModel],
    window: Window,
    products: Sequence[str],
    stations: Sequence[int] | None,
    audit_schema: str,
    target: Path,
) -> DbtResult:
    """`dbt build` of ``models`` for ``window`` into ``audit_schema`` (the `audit_schema` var sends the
    windowed marts there), with the data tests that guard their rows."""
    return worker.run(
        [
            "build",
            "--select",
            *(model.name for model in models),
            "--exclude-resource-type",
            "unit_test",
            # every test that guards the window's rows, relationships to dim_station and the seeds
            # included (cautious selection leaves out tests with an unselected parent)
            "--indirect-selection",
            "eager",
        ],
        target,
        variables={
            "start_date": window.start.isoformat(),
            "end_date": window.end.isoformat(),
            "products": list(products),
            **({"stations": list(stations)} if stations else {}),
            "audit_schema": audit_schema,
        },
    )
