"""Shared fixtures: a real PostgreSQL (embedded unless PGHOST is set) with a fresh database per
test, a local HTTP mirror of DWD's server on 127.0.0.1 built from the committed real files, and dbt
run as cheaply as the test allows.

The suite runs in two pytest-xdist workers (``make test``). Each worker names its databases and
folders after itself (:func:`worker_name`), and every test of a worker gets the same database name
(``wi_test_gw0``): dbt's parse of the project depends on the database the profile names, so one
name per worker lets dbt reuse its parse from test to test. dbt commands whose subject is not the
dbt CLI run in a dbt worker process that keeps the project parsed (:func:`run_dbt`)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from weatherinsight import db
from weatherinsight.dwd.listing import make_client
from weatherinsight.dwd.settings import HOURLY_PATH
from weatherinsight.ops.dbt import keep_parse_state, warm_parse_env
from weatherinsight.ops.dbt.session import RUNTIME_VARS
from weatherinsight.ops.dbt.worker import DbtWorker

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MIRROR = REPO / "sample_data" / "dwd_mirror"
DELIVERIES = REPO / "tests" / "fixtures" / "dwd_deliveries"
VENV_BIN = Path(sys.executable).parent


class _MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder, misbehaving on request: paths in ``failing`` always answer HTTP 500;
    ``faults`` queues, per path, what its next requests get instead of the file (see Mirror.inject)."""

    failing: set[str] = set()
    faults: dict[str, list] = {}
    request_times: list[tuple[str, float]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.request_times.append((self.path, time.monotonic()))
        queued = self.faults.get(self.path)
        fault = ("status", 500, None) if self.path in self.failing else (queued.pop(0) if queued else None)
        if fault is None:
            super().do_GET()
        elif fault[0] == "status":  # ("status", code, retry_after or None)
            self.send_response(fault[1])
            if fault[2] is not None:
                self.send_header("Retry-After", str(fault[2]))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault[0] == "hang":  # ("hang", seconds): silent past the client's timeout, then hang up
            time.sleep(fault[1])
        elif fault[0] == "cut":  # the whole length announced, half the body sent, connection closed
            source = self.send_head()
            if source is not None:
                with source:
                    body = source.read()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
        elif fault[0] == "before":  # ("before", function): run it (publish another version…), then serve
            fault[1]()
            super().do_GET()
        elif fault[0] == "instead":  # ("instead", function): run it (kill the client…), serve nothing
            fault[1]()
        elif fault[0] == "after":  # ("after", function): serve the file, then run it (kill the client…)
            super().do_GET()
            self.wfile.flush()
            fault[1]()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence the access log
        pass


@dataclass
class Mirror:
    """A local DWD mirror: a folder laid out like opendata.dwd.de, served on 127.0.0.1."""

    root: Path
    base_url: str
    failing: set[str] = field(default_factory=set)
    faults: dict[str, list] = field(default_factory=dict)
    request_times: list[tuple[str, float]] = field(default_factory=list)

    @property
    def hourly(self) -> Path:
        return self.root / HOURLY_PATH

    def replace(self, relative: str, source: Path) -> None:
        """Publish another version of a file (as DWD does when it republishes an archive)."""
        target = self.hourly / relative
        shutil.copyfile(source, target)
        stamp = target.stat().st_mtime + 3600  # a new Last-Modified, as on the real server
        os.utime(target, (stamp, stamp))

    def fail(self, relative: str) -> None:
        self.failing.add("/" + HOURLY_PATH + relative)

    def inject(self, relative: str, *faults: tuple) -> None:
        """Answer the next requests for ``relative`` with ``faults`` in turn, then serve it normally:
        ``("status", 500, None)``, ``("status", 429, 1)`` (Retry-After 1 s), ``("hang", 3)``,
        ``("cut",)``, or a function run ``("before", f)``, ``("instead", f)`` or ``("after", f)`` of
        serving it."""
        self.faults.setdefault("/" + HOURLY_PATH + relative, []).extend(faults)

    def downloads(self, suffix: str = ".zip") -> list[str]:
        return [path for path, _ in self.request_times if path.endswith(suffix)]

    def times_of(self, relative: str) -> list[float]:
        """When the server received each request for ``relative`` (monotonic seconds)."""
        return [at for path, at in self.request_times if path == "/" + HOURLY_PATH + relative]


def archive_hours(path: Path) -> dict[str, tuple[float, ...]]:
    """An archive's product file read independently of the loader: MESS_DATUM -> the other fields
    (quality level and measures) as numbers."""
    with zipfile.ZipFile(path) as archive:
        name = next(name for name in archive.namelist() if name.startswith("produkt_"))
        lines = archive.read(name).decode("latin-1").splitlines()[1:]
    fields = [[field.strip() for field in line.split(";")] for line in lines if line.strip()]
    return {row[1]: tuple(float(value) for value in row[2:-1]) for row in fields}


def republish(mirror: Mirror, archive: str, mess_datum: str, value: str, tmp: Path, field: int = 3) -> None:
    """DWD republishes ``archive`` (a path under the hourly folder) with one field of one hour
    changed: a new delivery, with a new modification time."""
    source = mirror.hourly / archive
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.startswith("produkt"):
                lines = data.decode("latin-1").split("\n")
                hits = [i for i, line in enumerate(lines) if f";{mess_datum};" in line]
                assert len(hits) == 1
                fields = lines[hits[0]].split(";")
                fields[field] = value.rjust(len(fields[field]))
                lines[hits[0]] = ";".join(fields)
                data = "\n".join(lines).encode("latin-1")
            info = zipfile.ZipInfo(info.filename, date_time=datetime.now().timetuple()[:6])
            new.writestr(info, data)
    replacement = tmp / f"republished-{Path(archive).name}"
    replacement.write_bytes(buffer.getvalue())
    mirror.replace(archive, replacement)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with serve_mirror(tmp_path / "mirror") as served:
        yield served


@contextlib.contextmanager
def serve_mirror(root: Path) -> Iterator[Mirror]:
    """A copy of the sample mirror in ``root``, served on 127.0.0.1 while the context lasts."""
    shutil.copytree(SAMPLE_MIRROR, root)
    failing: set[str] = set()
    faults: dict[str, list] = {}
    times: list[tuple[str, float]] = []
    handler = type("Handler", (_MirrorHandler,), {"failing": failing, "faults": faults, "request_times": times})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}/", failing, faults, times)
    finally:
        server.shutdown()
        server.server_close()


#: the pytest-xdist worker running this process ("gw0", "gw1"; "main" when run without xdist)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
#: per-worker folders of the suite (logs, dbt workers' output)
WORK = REPO / "target" / "tests" / WORKER


def worker_name(name: str) -> str:
    """``name`` made this worker's own: two workers never share a database of that name."""
    return f"{name}_{WORKER}"


@pytest.fixture(scope="session")
def server() -> db.ConnectionSettings:
    """The PostgreSQL server under test (started once, left running like `weatherinsight db up`;
    two workers starting it at once take turns)."""
    WORK.mkdir(parents=True, exist_ok=True)
    with (REPO / "target" / "tests" / ".server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return db.resolve(start=True)


@pytest.fixture
def database(server: db.ConnectionSettings) -> Iterator[db.ConnectionSettings]:
    """A fresh, empty database for one test, dropped afterwards. Every test of a worker gets the same
    name (``wi_test_gw0``), so dbt reuses its parse of the project from test to test."""
    connection = server.with_database(worker_name("wi_test"))
    db.drop_database(connection)
    db.ensure_database(connection)
    try:
        yield connection
    finally:
        db.drop_database(connection)


@pytest.fixture
def pipelines_dir(tmp_path: Path) -> str:
    return str(tmp_path / "pipelines")


@pytest.fixture
def http_session():
    """Quick retries so fault tests do not wait for production backoff."""
    return make_client(max_attempts=2, backoff_factor=0.05)


def query(connection: db.ConnectionSettings, sql: str, params: tuple = ()) -> list[tuple]:
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchall()
    finally:
        conn.close()


def execute(connection: db.ConnectionSettings, statement: str) -> int:
    """Run one statement in its own transaction; the rows it affected."""
    conn = db.connect(connection)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.rowcount
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_database(server: db.ConnectionSettings, name: str) -> Iterator[db.ConnectionSettings]:
    """A database made empty for a module's expensive fixture (``name`` made the worker's own),
    dropped when the context ends."""
    database = server.with_database(worker_name(name))
    db.drop_database(database)
    db.ensure_database(database)
    try:
        yield database
    finally:
        db.drop_database(database)


def clone_database(template: db.ConnectionSettings, name: str) -> db.ConnectionSettings:
    """A copy of ``template`` named ``name`` (CREATE DATABASE … TEMPLATE: seconds, however much it
    holds), replacing any database of that name; sessions still on the template are ended first."""
    conn = db.connect(template, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
            cursor.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (template.database,)
            )
            cursor.execute(f'create database "{name}" template "{template.database}"')
    finally:
        conn.close()
    return template.with_database(name)


def cli_env(connection: db.ConnectionSettings, **extra: str) -> dict[str, str]:
    """The environment of a command run as a user runs it against ``connection``, its output piped
    (no terminal size: tables as wide as they need); session settings such as PGTZ pass through (CI
    runs the suite once with PGTZ=Europe/Berlin). Its log goes to the worker's own folder."""
    env = {key: value for key, value in os.environ.items() if key not in (*db.ENV_VARS, "COLUMNS", "LINES")}
    env.update(connection.env())
    env["WEATHERINSIGHT_LOG_DIR"] = str(WORK / "logs")
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "weatherinsight"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


# ---- dbt, as cheaply as the test allows ---------------------------------------------------------

#: dbt commands a dbt worker runs on its parsed project; others (parse, docs, ls…) run as the CLI
IN_PROCESS = ("build", "run", "test", "seed", "snapshot", "compile", "run-operation")
_workers: dict[str, DbtWorker] = {}


def dbt_worker(connection: db.ConnectionSettings, env: dict[str, str] | None = None) -> DbtWorker:
    """This session's dbt worker for ``connection``'s database and the extra environment ``env``
    (PGTZ, PGOPTIONS: dbt's sessions read it when they connect), started on first use."""
    key = f"{connection.host}:{connection.port}:{connection.database}" + "".join(
        f"-{name}" for name in sorted(env or {})
    )
    if key not in _workers or _workers[key].env != (env or {}):
        if key in _workers:
            _workers[key].close()
        folder = connection.database + "".join(f"-{name}" for name in sorted(env or {}))
        _workers[key] = DbtWorker(connection, WORK / "dbt_workers" / folder, env=env)
    return _workers[key]


@pytest.fixture(scope="session", autouse=True)
def _close_dbt_workers() -> Iterator[None]:
    yield
    for worker in _workers.values():
        worker.close()


def _in_process(arguments: tuple[str, ...]) -> tuple[list[str], dict | None] | None:
    """(arguments, vars) for a dbt worker, or None when the command must run as the dbt CLI."""
    if not arguments or arguments[0] not in IN_PROCESS:
        return None
    rest, variables = list(arguments), None
    if "--vars" in rest:
        at = rest.index("--vars")
        variables = yaml.safe_load(rest[at + 1])
        del rest[at : at + 2]
        if not isinstance(variables, dict) or set(variables) - RUNTIME_VARS:
            return None  # a var that changes how the project parses
        # YAML reads 2021-01-01 as a date; the worker takes JSON, and dbt the ISO text alike
        variables = {key: value.isoformat() if isinstance(value, date) else value for key, value in variables.items()}
    return rest, variables


def run_in_worker(worker: DbtWorker, *args: str, target_path: Path) -> subprocess.CompletedProcess:
    """``dbt <args>`` in ``worker`` (build, run, test, seed, snapshot, compile, run-operation; vars
    only those read when SQL compiles), its console output as ``stdout``, as the CLI prints it."""
    in_process = _in_process(args)
    assert in_process is not None, f"not a command for a dbt worker: {args}"
    arguments, variables = in_process
    result = worker.run(arguments, target_path, variables)
    output = result.log_path.read_text(errors="replace") if result.log_path.is_file() else ""
    if result.returncode == 2 and not output:
        output = result.first_error_line()
    return subprocess.CompletedProcess(["dbt", *args], result.returncode, output, "")


def run_dbt(
    connection: db.ConnectionSettings,
    *args: str,
    target_path: Path,
    env: dict[str, str] | None = None,
    cli: bool = False,
) -> subprocess.CompletedProcess:
    """Run real dbt in the project against ``connection``, its console output as ``stdout``.

    build, run, test, seed, snapshot, compile and run-operation go to the session's dbt worker for
    the database and ``env`` (variables such as PGTZ or PGOPTIONS for dbt's sessions): the project
    parsed once, as backfills and `weatherinsight dbt` run windows. With ``cli`` (the subject is
    the dbt command itself) or another command, the `dbt` CLI runs, starting from the database's
    kept parse (as every dbt process of the package does)."""
    if not cli and _in_process(args) is not None:
        return run_in_worker(dbt_worker(connection, env), *args, target_path=target_path)
    warm = warm_parse_env(connection.database)
    env = cli_env(connection, DBT_SEND_ANONYMOUS_USAGE_STATS="false", **warm, **(env or {}))
    completed = subprocess.run(
        [str(VENV_BIN / "dbt"), *args, "--target-path", str(target_path), "--log-path", str(target_path / "logs")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    keep_parse_state(connection.database, target_path)
    return completed


#: session settings that make PostgreSQL plan parallel scans and aggregates even on small tables
PARALLEL_PLANS = (
    "-c parallel_setup_cost=0 -c parallel_tuple_cost=0 -c min_parallel_table_scan_size=0"
    " -c min_parallel_index_scan_size=0 -c max_parallel_workers_per_gather=2"
)


def table_checksum(
    connection: db.ConnectionSettings, table: str, exclude: tuple[str, ...] = (), where: str | None = None
) -> tuple[int, str]:
    """Row count and an order-independent md5 over the rows of ``table`` (minus ``exclude`` columns,
    only rows matching ``where`` if given)."""
    schema, name = table.split(".")
    columns = [
        row[0]
        for row in query(
            connection,
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position",
            (schema, name),
        )
        if row[0] not in exclude
    ]
    assert columns, f"{table} has no columns"
    row_text = "concat_ws('|', " + ", ".join(f'"{column}"::text' for column in columns) + ")"
    sql = f"select count(*), coalesce(md5(string_agg({row_text}, ',' order by {row_text})), '') from {table}" + (
        f" where {where}" if where else ""
    )
    count, digest = query(connection, sql)[0]
    return count, digest


def load_ok(mirror: Mirror, connection: db.ConnectionSettings, pipelines_dir: Path, *arguments: str) -> str:
    """`weatherinsight load dwd` from the mirror, as a user runs it; fails the test unless it succeeds."""
    env = cli_env(connection, WEATHERINSIGHT_PIPELINES_DIR=str(pipelines_dir))
    result = run_cli("load", "dwd", "--base-url", mirror.base_url, *arguments, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def dbt_ok(
    connection: db.ConnectionSettings,
    target_path: Path,
    *arguments: str,
    env: dict[str, str] | None = None,
    cli: bool = False,
) -> str:
    """A real dbt command against ``connection`` (see :func:`run_dbt`); fails the test unless it succeeds."""
    result = run_dbt(connection, *arguments, target_path=target_path, env=env, cli=cli)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


# ---- a busy machine -----------------------------------------------------------------------------


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Every core kept busy beside the test (a process spinning per core), as on a shared machine
    running other builds: races a quiet run hides show up here (the suite runs its concurrency and
    kill tests of loads this way once)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


# ---- two workers -------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Tests sharing a module's expensive fixture (a warehouse built once for the module) run on
    one xdist worker (``--dist loadgroup``), so it is built once; the others go wherever a worker
    is free. Fixtures that tests use together (an API served from the module's warehouse and the
    warehouse itself) are one group, named after the module and the group's first fixture."""
    shared = {}
    for item in items:
        shared[item] = sorted(
            f"{item.module.__name__}:{name}"
            for name, definitions in item._fixtureinfo.name2fixturedefs.items()
            if definitions[-1].scope == "module"
        )
    joined: dict[str, str] = {}

    def root(name: str) -> str:
        while joined.get(name, name) != name:
            name = joined[name]
        return name

    for names in shared.values():
        for name in names[1:]:
            first, other = root(names[0]), root(name)
            joined[max(first, other)] = min(first, other)
    for item, names in shared.items():
        if names:
            item.add_marker(pytest.mark.xdist_group(root(names[0])))


def pytest_collection_finish(session) -> None:
    """Fail at once, not with a module's warehouse built twice over, when xdist no longer groups
    tests (pytest 9.2's node ids did that silently: pyproject.toml pins below it)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist ignores the xdist_group of {len(lost)} tests (e.g. {lost[0]})")


# ---- the fault suite's record (README, Reliability: scripts/reliability_table.py renders it) ----

RELIABILITY = REPO / "logs" / "reliability.json"
_faults_seen: list[dict] = []


@dataclass
class FaultRecord:
    """What one fault test saw: the fault, how many times it was injected, rows compared with a clean
    run (raw rows for a load, published mart rows for a backfill) and how many of them were lost or
    duplicated, whether the marts came out byte-identical, how it recovered."""

    fault: str
    trials: int
    rows_checked: int
    rows_lost: int
    rows_duplicated: int
    marts_identical: bool
    recovery: str
    compared: str = "raw"  # which rows were compared: "raw" (the loaded rows) or "mart" (published rows)


@pytest.fixture
def reliability(request) -> Callable[[FaultRecord], None]:
    """Report a fault test's outcome; call it last, once the test's assertions held."""

    def record(outcome: FaultRecord) -> None:
        # the test's place in the collection orders the record, whichever worker ran it
        place = request.session.items.index(request.node)
        _faults_seen.append({"test": request.node.name, **outcome.__dict__, "_place": place})

    return record


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """(xdist, in the controller) a worker's fault records join the controller's."""
    _faults_seen.extend(json.loads(getattr(node, "workeroutput", {}).get("faults", "[]")))


def pytest_sessionfinish(session, exitstatus) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its records go to the controller
        workeroutput["faults"] = json.dumps(_faults_seen)
        return
    config = session.config
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not (
        config.option.keyword or config.option.markexpr
    )
    if _faults_seen and whole_suite:  # a part of the suite (a module, -k, the stress rounds) leaves the record alone
        records = [
            {key: value for key, value in record.items() if key != "_place"}
            for record in sorted(_faults_seen, key=lambda record: record["_place"])
        ]
        RELIABILITY.parent.mkdir(exist_ok=True)
        RELIABILITY.write_text(json.dumps(records, indent=1) + "\n")
