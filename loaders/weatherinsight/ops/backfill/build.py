"""The dbt side of a backfill: prepare what window builds read but do not build, and build one
window of the selected models into an audit schema, with every data test that guards its rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from weatherinsight import db
from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA, Catalogue, MartModel
from weatherinsight.ops.backfill.errors import BackfillFailed
from weatherinsight.ops.backfill.sources import OPENMETEO_PRODUCTS, Ids, ids_for, product_source
from weatherinsight.ops.dbt import DbtResult
from weatherinsight.ops.dbt.worker import DbtWorker
from weatherinsight.windows import Window


class PrepareFailed(BackfillFailed):
    """dbt could not build what the window builds need."""


def ensure_relations(
    connection: db.ConnectionSettings,
    worker: DbtWorker,
    catalogue: Catalogue,
    run_dir: Path,
    refresh_stations: bool,
    products: Sequence[str] | None = None,
) -> None:
    """Build what a window build of ``products`` (default: all) reads but does not build, where
    missing: seeds, staging views, the station snapshot and the dimensions, and the windowed marts
    (created empty). A run of Open-Meteo products alone prepares only their side, so a warehouse
    without DWD data needs none."""
    needed = catalogue.models.values() if products is None else catalogue.selection(products)
    needed = [*needed, *catalogue.inputs(list(needed))]
    dwd = products is None or any(product not in OPENMETEO_PRODUCTS for product in products)
    bases = [(MARTS_SCHEMA, "dim_location")]
    if dwd:
        bases += [(MARTS_SCHEMA, "dim_station"), ("staging", "stg_dwd__station_list_entries")]
    conn = db.connect(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            # one preparer at a time: two runs on a fresh database would create the same views at once
            cursor.execute("select pg_advisory_lock(hashtext('weatherinsight.prepare'))")
            missing_marts = [model.name for model in needed if not db.relation_exists(cursor, MARTS_SCHEMA, model.name)]
            base_missing = not all(db.relation_exists(cursor, schema, name) for schema, name in bases)
            if base_missing or refresh_stations:
                exclude = ["--exclude", *catalogue.models]
                # DWD: seeds, views, the station snapshot and dimension; Open-Meteo alone: what its
                # marts read and dim_location. Their tests run in the user's own builds
                select = [] if dwd else ["--select", *(f"+{model.name}" for model in needed), "+dim_location"]
                no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
                result = worker.run(["build", *select, *exclude, *no_tests], run_dir / "prepare")
                if not result.ok:
                    problems = "; ".join(result.problems()[:3]) or result.first_error_line()
                    raise PrepareFailed(f"preparing the project failed: {problems}")
            stand_ins = _stand_in_views(cursor, products)
            if stand_ins:
                # staging views made before their raw tables existed read an empty stand-in
                # (macro raw_source): made again, they read the tables the load has since created
                result = worker.run(["run", "--select", *stand_ins], run_dir / "views")
                if not result.ok:
                    raise PrepareFailed(f"rebuilding {', '.join(stand_ins)} failed: {result.first_error_line()}")
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


#: read models over the ledger, which a backfill creates (``ops.backfill_windows``) before it prepares
LEDGER_VIEWS = (("ops", "dataset_versions", "ops", "backfill_windows"),)


def _stand_in_views(cursor, products: Sequence[str] | None) -> list[str]:
    """The views (Open-Meteo staging views of ``products``, the ledger's read models) that read an
    empty stand-in (macro raw_source) although the table they read exists now."""
    candidates = list(LEDGER_VIEWS)
    for product in OPENMETEO_PRODUCTS if products is None else [p for p in products if p in OPENMETEO_PRODUCTS]:
        candidates.append(("staging", f"stg_openmeteo__{product}", product_source(product).raw_schema, product))
    views = []
    for view_schema, view, table_schema, table in candidates:
        if not db.relation_exists(cursor, table_schema, table) or not db.relation_exists(cursor, view_schema, view):
            continue
        cursor.execute(
            "select count(*) from information_schema.view_table_usage where view_schema = %s"
            " and view_name = %s and table_schema = %s and table_name = %s",
            (view_schema, view, table_schema, table),
        )
        if not cursor.fetchone()[0]:
            views.append(view)
    return views


def build_window(
    worker: DbtWorker,
    models: Sequence[MartModel],
    window: Window,
    products: Sequence[str],
    ids: Ids | None,
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
            **({"stations": list(ids_for(ids, "station_id"))} if ids_for(ids, "station_id") else {}),
            **({"locations": list(ids_for(ids, "location_id"))} if ids_for(ids, "location_id") else {}),
            "audit_schema": audit_schema,
        },
    )
