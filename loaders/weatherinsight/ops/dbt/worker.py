"""A dbt worker: a Python process that keeps the project parsed (:class:`DbtSession`) and runs the
dbt invocations its parent sends, one at a time. A backfill runs one worker per parallel lane, so
dbt's process-wide state (flags, adapters, event logging) is never shared by two windows at once.

Requests and answers are JSON lines: requests on the worker's stdin, answers on a copy of its
original stdout; everything dbt prints goes to the invocation's ``dbt.out`` (or to ``worker.out``).
The worker dies with its parent (``PR_SET_PDEATHSIG``): a killed backfill takes its dbt with it, as
a subprocess per window did. Ctrl-C reaches the worker too (same process group): dbt cancels its
queries and the invocation fails."""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from weatherinsight import db
from weatherinsight.ops.dbt import WORKER_NODE, DbtResult, dbt_environment, parse_folder

log = logging.getLogger(__name__)


class DbtWorker:
    """The parent's handle on one worker process; started on first use, restarted if it died."""

    def __init__(
        self,
        connection: db.ConnectionSettings,
        log_dir: Path,
        env: dict[str, str] | None = None,
        parse_dir: Path | None = None,
    ) -> None:
        """A worker for ``connection``; ``env`` adds variables to its environment (the spark target's
        ``DBT_TARGET`` and folders: one JVM then serves every invocation), ``parse_dir`` keeps its
        parse state elsewhere than the database's (another target parses to another manifest)."""
        self.connection = connection
        self.log_dir = log_dir
        self.env = env or {}
        self.parse_dir = parse_dir or parse_folder(connection.database)
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        #: answers still to read for requests sent without waiting (a parse started early)
        self.pending = 0

    def _start(self) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**dbt_environment(self.connection), **self.env}
        with (self.log_dir / "worker.out").open("ab") as errors:
            return subprocess.Popen(
                [sys.executable, "-m", "weatherinsight.ops.dbt.worker", str(self.parse_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=db.project_root(),
                env=env,
                text=True,
            )

    def _send(self, request: dict) -> bool:
        if self.process is None or self.process.poll() is not None:
            self.process, self.pending = self._start(), 0
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def _ask(self, request: dict) -> dict | None:
        if not self._send(request):
            return None
        try:
            for _ in range(self.pending):  # an early parse's answer: a failed one is reported by this request
                self.process.stdout.readline()
            self.pending = 0
            line = self.process.stdout.readline()
        except OSError:
            line = ""
        return json.loads(line) if line else None

    def start_parse(self) -> None:
        """Start dbt and parse the project in the worker now, without waiting: the parse overlaps
        whatever the parent does before its first window."""
        with self.lock:
            if self._send({"command": "parse"}):
                self.pending += 1

    def _lost(self) -> str:
        code = self.process.wait() if self.process else None
        self.process = None
        return f"the dbt worker stopped (exit code {code}); its output is in {self.log_dir / 'worker.out'}"

    def parse(self) -> float:
        """Parse the project now (not on the first window); the seconds it took."""
        with self.lock:
            answer = self._ask({"command": "parse"})
            if answer is None:
                raise RuntimeError(self._lost())
            if "error" in answer:
                raise RuntimeError(answer["error"])
            return answer["seconds"]

    def run(self, arguments: list[str], target_path: Path, variables: dict | None = None) -> DbtResult:
        """``dbt <arguments>`` in the worker; never raises on dbt failures. dbt writes no JSON
        artifacts (the results come back in the answer, the ledger keeps them; writing the
        manifest would cost every window ~0.3 s); its output is in ``target_path/dbt.out``."""
        arguments = [*arguments, "--no-write-json"]
        with self.lock:
            log.info("dbt (worker): %s %s", " ".join(arguments), variables or "")
            answer = self._ask(
                {"command": "invoke", "arguments": arguments, "target_path": str(target_path), "variables": variables}
            )
            if answer is None or "error" in answer:
                message = self._lost() if answer is None else answer["error"]
                result = DbtResult(2, target_path, target_path / "dbt.out")
                result.results = [{"unique_id": WORKER_NODE, "status": "error", "message": message}]
                return result
            return DbtResult.from_json(answer)

    def kill(self) -> None:
        """Stop dbt at once, from any thread (Ctrl-C): a window waiting for its answer gets it now."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()

    def close(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                if self.pending:  # still parsing for a window that will not come: no need to finish
                    self.process.kill()
                self.process.stdin.close()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None


class DbtWorkers:
    """One worker per parallel lane of a run; a lane takes one for a window and gives it back."""

    def __init__(self, connection: db.ConnectionSettings, log_dir: Path, count: int) -> None:
        self.workers = [DbtWorker(connection, log_dir / f"worker_{lane}") for lane in range(count)]
        self.idle: queue.SimpleQueue[DbtWorker] = queue.SimpleQueue()
        for worker in self.workers:
            self.idle.put(worker)

    def start_parsing(self) -> None:
        for worker in self.workers:
            worker.start_parse()

    @property
    def first(self) -> DbtWorker:
        return self.workers[0]

    @contextlib.contextmanager
    def lane(self) -> Iterator[DbtWorker]:
        worker = self.idle.get()
        try:
            yield worker
        finally:
            self.idle.put(worker)

    def kill(self) -> None:
        for worker in self.workers:
            worker.kill()

    def __enter__(self) -> DbtWorkers:
        return self

    def __exit__(self, *exc_info) -> None:
        for worker in self.workers:
            worker.close()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)


def serve(parse_dir: Path) -> None:
    """The worker's loop: read a request, answer it, until stdin closes."""
    from weatherinsight.ops.dbt.session import DbtSession

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else is printed goes to worker.out, never into the answers
    session = DbtSession(parse_dir)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["command"] == "parse":
                session.manifest()
                answer = {"seconds": session.parse_seconds}
            else:
                target = Path(request["target_path"])
                answer = session.invoke(request["arguments"], target, request.get("variables")).to_json()
        except Exception as error:  # noqa: BLE001 - the parent turns it into a failed window
            answer = {"error": (str(error).strip().splitlines() or [type(error).__name__])[0]}
        answers.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    _die_with_parent()
    try:
        serve(Path(sys.argv[1]))
    except KeyboardInterrupt:  # Ctrl-C while idle: the parent is stopping too
        sys.exit(130)
