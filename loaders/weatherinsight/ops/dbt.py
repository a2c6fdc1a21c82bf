"""dbt invocations for backfills: a subprocess per call (dbt is not re-entrant in one process and a
killed run must take its dbt with it), each with its own target folder so parallel windows never
share dbt's artifacts, its output kept in a log file."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from weatherinsight import db

log = logging.getLogger(__name__)


@dataclass
class DbtResult:
    """What one dbt invocation did: exit code, its artifacts' folder and their node results."""

    returncode: int
    target_path: Path
    log_path: Path
    invocation_id: str | None = None
    results: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tests(self) -> list[dict]:
        """Data-test results: name, model tested, status, failures, message."""
        return [
            {
                "name": result["unique_id"].split(".")[2],
                "model": result.get("model"),
                "status": result["status"],
                "failures": result.get("failures"),
                "message": (result.get("message") or "")[:500] or None,
            }
            for result in self.results
            if result["unique_id"].startswith("test.")
        ]

    def problems(self) -> list[str]:
        """One short line per failed test or errored node."""
        return [
            f"{result['unique_id'].split('.')[2]}: {result['status']}"
            + (f" ({result['failures']} rows)" if result.get("failures") else "")
            for result in self.results
            if result["status"] in ("fail", "error", "runtime error")
        ]

    def first_error_line(self) -> str:
        for result in self.results:
            if result["status"] in ("error", "runtime error") and result.get("message"):
                return result["message"].strip().splitlines()[0]
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"dbt exited with code {self.returncode}"
        errors = [line.strip() for line in text.splitlines() if "Error" in line or "error" in line]
        return errors[-1] if errors else f"dbt exited with code {self.returncode} (see {self.log_path})"


def venv_executable(name: str) -> str:
    """A console script installed beside this Python (dbt, dlt), else the one on PATH."""
    return shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name) or name


def dbt_executable() -> str:
    return venv_executable("dbt")


def run_dbt(
    connection: db.ConnectionSettings, arguments: list[str], target_path: Path, variables: dict | None = None
) -> DbtResult:
    """Run ``dbt <arguments>`` in the project against ``connection``; never raises on dbt failures."""
    target_path.mkdir(parents=True, exist_ok=True)
    log_path = target_path / "dbt.out"
    command = [dbt_executable(), *arguments, "--target-path", str(target_path), "--log-path", str(target_path)]
    if variables:
        command += ["--vars", yaml.safe_dump(variables, default_flow_style=True, width=10_000).strip()]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(connection.env())
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    log.info("dbt: %s", " ".join(command))
    with log_path.open("w") as out:
        completed = subprocess.run(command, cwd=db.project_root(), env=env, stdout=out, stderr=subprocess.STDOUT)
    result = DbtResult(completed.returncode, target_path, log_path)
    run_results = target_path / "run_results.json"
    if run_results.is_file():
        data = json.loads(run_results.read_text())
        result.invocation_id = data.get("metadata", {}).get("invocation_id")
        result.results = [
            {
                "unique_id": item["unique_id"],
                "status": item["status"],
                "failures": item.get("failures"),
                "message": item.get("message"),
                "rows_affected": (item.get("adapter_response") or {}).get("rows_affected"),
            }
            for item in data.get("results", [])
        ]
    if not result.ok:
        log.warning("dbt exited with %s; output in %s", completed.returncode, log_path)
    return result
