"""dbt in this process, the project parsed once: each invocation gets a copy of that manifest, so a
window build pays for its SQL, not for dbt re-parsing the project because its ``--vars`` changed.

Why a parsed manifest may serve a window build with other vars: every var a window build sets is
read when SQL is compiled, not when the project is parsed (``tests/python/test_dbt_session.py``
parses the project with and without them and compares every node), with one exception:
``audit_schema`` decides in ``generate_schema_name`` which schema the windowed marts are built in.
:func:`route_to_audit` does the same on the parsed manifest (the same test compares the two).

The project is re-parsed when one of its files changed since the last parse, so an edited model is
never served stale. dbt's partial parsing keeps that cheap: its state lives in a folder of our own
(one per database), locked while a parse writes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from weatherinsight import db
from weatherinsight.ops.dbt import DbtResult

#: vars read only when SQL is compiled (see the module docstring); any other var may change how the
#: project parses, so an invocation setting one parses the project anew
RUNTIME_VARS = frozenset({"start_date", "end_date", "products", "stations", "locations", "audit_schema"})
#: the folders and files whose changes make dbt parse the project again
PROJECT_FILES = ("models", "macros", "seeds", "snapshots", "tests/dbt", "analyses", "dbt_packages")
PROJECT_CONFIGS = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml")


def project_fingerprint(root: Path) -> str:
    """A digest of the project's file names, sizes and modification times."""
    digest = hashlib.sha256()
    paths = [root / name for name in PROJECT_CONFIGS]
    for folder in PROJECT_FILES:
        paths.extend(sorted((root / folder).rglob("*")))
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def windowed_marts(manifest) -> dict[str, tuple[str, str]]:
    """The windowed models of the `marts` schema (those `generate_schema_name` sends to the audit
    schema): unique id -> (schema, relation name) as parsed."""
    return {
        node.unique_id: (node.schema, node.relation_name)
        for node in manifest.nodes.values()
        if node.resource_type == "model"
        and (node.config.meta or {}).get("window")
        and (node.config.schema or "").strip() == "marts"
    }


def route_to_audit(manifest, parsed: dict[str, tuple[str, str]], audit_schema: str | None) -> None:
    """Send the windowed marts to ``audit_schema`` (as `generate_schema_name` does when the
    `audit_schema` var is set), or back to where they were parsed when it is None; dbt's `graph`
    context variable follows."""
    graph = (manifest.flat_graph or {}).get("nodes", {})
    for unique_id, (schema, relation_name) in parsed.items():
        node = manifest.nodes[unique_id]
        if audit_schema:
            schema, relation_name = audit_schema, f'"{node.database}"."{audit_schema}"."{node.alias}"'
        node.schema, node.relation_name = schema, relation_name
        if unique_id in graph:
            graph[unique_id].update(schema=schema, relation_name=relation_name)


def vars_argument(variables: dict) -> list[str]:
    return ["--vars", yaml.safe_dump(variables, default_flow_style=True, width=10_000).strip()]


@contextlib.contextmanager
def output_to(path: Path | None) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1 and 2, which dbt's console log writes to)
    go to ``path`` for the duration; unchanged when ``path`` is None."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class DbtSession:
    """The project's manifest, parsed once (and again when a project file changes), and dbt
    invocations that reuse it. The connection comes from the PG* variables of this process."""

    def __init__(self, parse_dir: Path) -> None:
        self.parse_dir = parse_dir
        self.root = db.project_root()
        self._manifest = None
        self._windowed: dict[str, tuple[str, str]] = {}
        self._fingerprint: str | None = None
        self.parse_seconds = 0.0
        self.parses = 0

    def project_options(self) -> list[str]:
        """Where the project and its profile are, whatever the working directory."""
        options = ["--project-dir", str(self.root)]
        if not os.environ.get("DBT_PROFILES_DIR") and (self.root / "profiles.yml").is_file():
            options += ["--profiles-dir", str(self.root)]
        return options

    def manifest(self):
        """The parsed project, parsed anew if a project file changed since."""
        from dbt.cli.main import dbtRunner

        fingerprint = project_fingerprint(self.root)
        if self._manifest is not None and fingerprint == self._fingerprint:
            return self._manifest
        started = time.perf_counter()
        self.parse_dir.mkdir(parents=True, exist_ok=True)
        # one parse at a time writes dbt's partial-parse state in this folder
        with (self.parse_dir / ".lock").open("w") as lock, output_to(self.parse_dir / "parse.out"):
            fcntl.flock(lock, fcntl.LOCK_EX)
            folder = str(self.parse_dir)
            result = dbtRunner().invoke(
                # no manifest.json: the parsed manifest is kept in memory (writing it costs ~0.3 s)
                ["parse", *self.project_options(), "--no-write-json", "--target-path", folder, "--log-path", folder]
            )
        if not result.success:
            detail = result.exception or "see " + str(self.parse_dir / "parse.out")
            raise RuntimeError(f"dbt parse failed: {str(detail).strip().splitlines()[0]}")
        self._manifest, self._fingerprint = result.result, fingerprint
        self._windowed = windowed_marts(self._manifest)
        self.parse_seconds = time.perf_counter() - started
        self.parses += 1
        return self._manifest

    def invoke(self, arguments: list[str], target_path: Path | None = None, variables: dict | None = None) -> DbtResult:
        """``dbt <arguments>`` with the parsed manifest. dbt compiles every node it runs anew, so one
        manifest serves one invocation after another (the project has no ephemeral models, whose
        injected CTEs dbt would keep). With ``target_path`` dbt's artifacts and its console output
        go there (``dbt.out``); without, they go where dbt puts them and the output to this
        process's console."""
        from dbt.cli.main import dbtRunner
        from dbt_common.invocation import get_invocation_id

        variables = variables or {}
        if set(variables) - RUNTIME_VARS:
            raise ValueError(f"vars that change how the project parses: {sorted(set(variables) - RUNTIME_VARS)}")
        parses = self.parses
        manifest = self.manifest()
        parse_seconds = self.parse_seconds if self.parses != parses else 0.0
        route_to_audit(manifest, self._windowed, str(variables.get("audit_schema") or "").strip() or None)
        command = [*arguments, *self.project_options()]
        log_path = None
        if target_path is not None:
            target_path.mkdir(parents=True, exist_ok=True)
            log_path = target_path / "dbt.out"
            log_path.write_bytes(b"")
            command += ["--target-path", str(target_path), "--log-path", str(target_path)]
        if variables:
            command += vars_argument(variables)
        started = time.perf_counter()
        with output_to(log_path):
            outcome = dbtRunner(manifest=manifest).invoke(command)
        seconds = time.perf_counter() - started
        result = DbtResult.from_runner(outcome, target_path, log_path, get_invocation_id(), seconds)
        result.parse_seconds = parse_seconds
        return result
