"""`make bench-serve`: the API's latency under concurrent clients, and a backup and restore of the
warehouse, measured on the warehouse the environment points at (after `make demo`: the demo's).

Starts `weatherinsight serve` on a free port, warms it up, then has N clients (threads with their
own HTTP session) each send requests back to back for a mix of endpoints; prints latency
percentiles per endpoint and overall, requests/s, and the dump's size and the backup and restore
times (the restore goes into a scratch database, dropped afterwards). Writes JSON to bench/results/.

Usage: python bench/serve.py [--clients 20] [--requests 50] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from weatherinsight import db
from weatherinsight.ops.backup import backup, restore

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = {
    "features (a quarter)": "/api/v1/features/temperature?year=2021&quarter=1&limit=100",
    "features (a page of all)": "/api/v1/features/precipitation?limit=100&offset=0",
    "stations": "/api/v1/stations?limit=100",
    "runs": "/api/v1/runs?limit=20",
    "dataset versions": "/api/v1/dataset-versions?limit=100",
    "health": "/health",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def bench_api(clients: int, per_client: int) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "weatherinsight"), "serve", "--port", str(port)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise SystemExit("the API did not come up in 30 s")
        for path in ENDPOINTS.values():  # warm the pool and the caches
            requests.get(base + path, timeout=30).raise_for_status()
        timings: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
        failures: list[str] = []
        lock = threading.Lock()
        names = list(ENDPOINTS)

        def client(number: int) -> None:
            session = requests.Session()
            for i in range(per_client):
                name = names[(number + i) % len(names)]
                started = time.perf_counter()
                response = session.get(base + ENDPOINTS[name], timeout=60)
                took = (time.perf_counter() - started) * 1000
                with lock:
                    timings[name].append(took)
                    if response.status_code != 200:
                        failures.append(f"{name}: {response.status_code}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    everything = [value for values in timings.values() for value in values]
    summary = {
        name: {
            "requests": len(values),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
        }
        for name, values in {**timings, "all": everything}.items()
    }
    return {
        "clients": clients,
        "requests": len(everything),
        "failed": len(failures),
        "requests_per_second": round(len(everything) / wall, 1),
        "endpoints": summary,
    }


def bench_backup(connection: db.ConnectionSettings) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        dump, size, dump_seconds = backup(connection, Path(folder) / "bench.dump")
        scratch = "wi_bench_restore"
        db.drop_database(connection.with_database(scratch))
        try:
            _, _, restore_seconds = restore(connection, dump, into=scratch)
        finally:
            db.drop_database(connection.with_database(scratch))
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute("select pg_database_size(current_database())")
            database_bytes = cursor.fetchone()[0]
    finally:
        conn.close()
    return {
        "database_mb": round(database_bytes / 1e6, 1),
        "dump_mb": round(size / 1e6, 1),
        "backup_seconds": round(dump_seconds, 1),
        "restore_seconds": round(restore_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    arguments = parser.parse_args()
    connection = db.resolve(start=True)
    results = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "warehouse": connection.describe(),
        "api": bench_api(arguments.clients, arguments.requests),
        "backup": bench_backup(connection),
    }
    console = Console()
    table = Table(
        title=f"API latency, {arguments.clients} concurrent clients "
        f"({results['api']['requests']} requests, {results['api']['requests_per_second']} requests/s, "
        f"{results['api']['failed']} failed)"
    )
    for column in ("endpoint", "requests", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, figures in results["api"]["endpoints"].items():
        table.add_row(name, str(figures["requests"]), *(f"{figures[k]:,.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")))
    console.print(table)
    figures = results["backup"]
    console.print(
        f"backup: database {figures['database_mb']:,} MB -> dump {figures['dump_mb']:,} MB in "
        f"{figures['backup_seconds']} s; restore into a new database {figures['restore_seconds']} s"
    )
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"serve-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
