"""The layout the code keeps, checked on every run: each layer imports only the layers below it, the
two sources never import each other, no Python module outgrows 500 lines, and the window machinery
stays one materialization in small macro files, each saying what it owns, with no dbt adapter macro
overridden for the whole project."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "loaders" / "weatherinsight"

#: what a module may not import: (modules it applies to, modules it must not import)
FORBIDDEN = [
    # the bottom: the database, windows, pipelines, the lake know nothing of what uses them
    (("db", "errors", "windows", "pipelines", "lake", "engines", "marts"), ("ops", "api", "cli", "dwd", "openmeteo")),
    # each source is a package of its own
    (("dwd",), ("openmeteo", "ops", "api", "cli")),
    (("openmeteo",), ("dwd", "ops", "api", "cli")),
    # ops by job, each above the last: dbt < backfill < reports < update
    (("ops.dbt",), ("ops.backfill", "ops.reports", "ops.update", "api", "cli")),
    (("ops.backfill",), ("ops.reports", "ops.update", "api", "cli")),
    (("ops.reports",), ("ops.update", "api", "cli")),
    (("ops", "api"), ("cli",)),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__")


def imported(path: Path) -> set[str]:
    """The weatherinsight modules ``path`` imports (``weatherinsight.`` left off)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("weatherinsight"):
            base = node.module.removeprefix("weatherinsight").lstrip(".")
            names.update(f"{base}.{alias.name}".strip(".") for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name.removeprefix("weatherinsight.") for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_layers_import_only_the_layers_below_them() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for owners, forbidden in FORBIDDEN:
            if within(name, owners):
                wrong += [f"{name} imports {target}" for target in imported(path) if within(target, forbidden)]
    assert not wrong, "\n".join(wrong)


def test_no_python_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 500
    }
    assert not long


def test_the_window_machinery_is_small_files_that_say_what_they_own() -> None:
    folder = ROOT / "macros" / "window_replace"
    files = sorted(folder.glob("*.sql"))
    assert {"materialization.sql", "change_plan.sql", "ranges.sql", "record_changes.sql"} <= {f.name for f in files}
    for path in files:
        text = path.read_text()
        assert len(text.splitlines()) <= 150, path.name
        assert text.startswith("{#-"), f"{path.name} starts without a header saying what it owns"
    # one reader of the compiled plan: the materialization
    readers = [
        path.name
        for path in (ROOT / "macros").rglob("*.sql")
        for _ in re.finditer(r"(?<!macro )recorded_change_plan\(\)", path.read_text())
    ]
    assert readers == ["materialization.sql"]


def test_no_dbt_adapter_macro_is_overridden_for_the_whole_project() -> None:
    """A project macro named like one of dbt's (``postgres__create_table_as``,
    ``get_create_table_as_sql``…) would change every model's build, not only the marts'."""
    ours = {
        match.group(1)
        for path in (ROOT / "macros").rglob("*.sql")
        for match in re.finditer(r"{%-?\s*macro\s+(\w+)\(", path.read_text())
    }
    import dbt.include.global_project
    import dbt.include.postgres

    theirs = set()
    for package in (dbt.include.global_project, dbt.include.postgres):
        for path in Path(package.__path__[0]).rglob("*.sql"):
            theirs.update(re.findall(r"{%-?\s*macro\s+(\w+)\(", path.read_text()))
    # the two dbt expects projects to write: schema names, and the rows a data test reads (dbt's
    # documented hook for `where` placeholders: here the rows a build changed)
    assert ours & theirs <= {"generate_schema_name", "get_where_subquery"}


def test_the_api_reads_through_one_module() -> None:
    """Routes compose no SQL: every query of the API is in ``api/reads.py``."""
    composing = [
        str(path.relative_to(PACKAGE))
        for path in sorted((PACKAGE / "api").rglob("*.py"))
        if re.search(r"^\s*(from psycopg import sql|from psycopg\.rows|await cursor\.execute)", path.read_text(), re.M)
    ]
    assert composing == ["api/reads.py"]
