"""The windowed models of the dbt project, as its manifest describes them: which hourly fact belongs
to a product, what is built from it, each model's time column and grain. Read from a manifest no
older than the project's files (``dbt parse`` in a folder of our own when it is)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from psycopg2 import sql

from weatherinsight import db
from weatherinsight.ops.backfill.errors import BackfillFailed
from weatherinsight.ops.backfill.sources import Ids, ids_for
from weatherinsight.ops.dbt import backfill_target, run_dbt
from weatherinsight.windows import Window, range_predicate

MARTS_SCHEMA = "marts"


class CatalogueUnavailable(BackfillFailed):
    """dbt could not parse the project."""


@dataclass(frozen=True)
class MartModel:
    """A windowed mart model as dbt's manifest describes it."""

    name: str
    column: str
    grain: str
    product: str | None
    parents: tuple[str, ...]
    key: str = "station_id"  # the column keying its rows besides time (meta.window.key)

    @property
    def column_type(self) -> str:
        return "date" if self.grain == "day" else "timestamptz"

    def predicate(self, window: Window, ids: Ids | None = None) -> sql.Composed:
        """SQL condition selecting this model's rows of ``window`` (widened to its grain) and of the
        stations or locations ``ids`` names for its key, as dbt's `model_window_predicate()` does."""
        return range_predicate(
            self.column, self.column_type, window.widened(self.grain), ids_for(ids, self.key), self.key
        )


@dataclass
class Catalogue:
    """The windowed mart models of the project, from ``manifest.json``."""

    models: dict[str, MartModel] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest_path: Path) -> Catalogue:
        manifest = json.loads(manifest_path.read_text())
        models: dict[str, MartModel] = {}
        for node in manifest["nodes"].values():
            if node["resource_type"] != "model" or node["config"].get("schema") != MARTS_SCHEMA:
                continue
            meta = node["config"].get("meta") or {}
            window = meta.get("window")
            if not window:
                continue
            parents = tuple(parent.rsplit(".", 1)[-1] for parent in node["depends_on"]["nodes"])
            models[node["name"]] = MartModel(
                node["name"],
                window["column"],
                window["grain"],
                meta.get("product"),
                parents,
                window.get("key", "station_id"),
            )
        return cls(models)

    def hourly_fact(self, product: str) -> MartModel:
        for model in self.models.values():
            if model.product == product and model.grain == "hour":
                return model
        raise KeyError(f"no hourly fact for product {product}")

    def selection(self, products: Sequence[str]) -> list[MartModel]:
        """The products' hourly facts and every windowed model downstream of them, parents first."""
        chosen = {self.hourly_fact(product).name for product in products}
        changed = True
        while changed:
            changed = False
            for model in self.models.values():
                downstream = model.name not in chosen and chosen & set(model.parents)
                # another product's model (none today) stays out even downstream of a chosen one
                if downstream and (model.product is None or model.product in products):
                    chosen.add(model.name)
                    changed = True
        return self.ordered(chosen)

    def inputs(self, selected: Sequence[MartModel]) -> list[MartModel]:
        """Windowed mart models the selection reads but does not build (copied into the audit schema)."""
        names = {model.name for model in selected}
        needed = {parent for model in selected for parent in model.parents if parent in self.models} - names
        return self.ordered(needed)

    def ordered(self, names: set[str]) -> list[MartModel]:
        order = {"hour": 0, "day": 1, "quarter": 2}
        return sorted((self.models[name] for name in names), key=lambda model: (order[model.grain], model.name))


def load_catalogue(connection: db.ConnectionSettings) -> Catalogue:
    """The windowed mart models, from a manifest no older than the project's files (`dbt parse`)."""
    root = db.project_root()
    manifest = backfill_target("manifest.json")
    sources = [root / "dbt_project.yml", *(root / "models").rglob("*"), *(root / "macros").rglob("*")]
    newest = max(path.stat().st_mtime for path in sources if path.is_file())
    if not manifest.is_file() or manifest.stat().st_mtime < newest:
        # parse in a folder of our own and move the manifest in: two runs starting at once never
        # read a half-written one
        target = backfill_target(f"parse_{os.getpid()}_{threading.get_ident()}")
        result = run_dbt(connection, ["parse"], target)
        if not result.ok:
            raise CatalogueUnavailable(f"dbt parse failed: {result.first_error_line()}")
        os.replace(target / "manifest.json", manifest)
        shutil.rmtree(target, ignore_errors=True)
    return Catalogue.from_manifest(manifest)
