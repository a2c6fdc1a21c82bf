"""``weatherinsight serve``: the read-only HTTP API (:mod:`weatherinsight.api`) on uvicorn."""

from __future__ import annotations

import os
import socket

import click

from weatherinsight import db
from weatherinsight.cli.common import user_errors


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--pool-size", type=click.IntRange(1, 100), default=8, show_default=True, help="Database connections at most."
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Server processes (uvicorn workers)."
)
@click.option(
    "--statement-timeout",
    type=click.FloatRange(0.1, 3600),
    default=30,
    show_default=True,
    help="Seconds a query may run; a request whose query runs longer is answered 503.",
)
@user_errors()
def serve_command(host: str, port: int, pool_size: int, workers: int, statement_timeout: float) -> None:
    """Serve the published marts, stations, coverage, runs and dataset versions as JSON over HTTP.

    Reads through the read-only role `weatherinsight_api` (created and granted SELECT on the marts,
    the reference data and the ledger here). OpenAPI docs at /docs. Ctrl-C stops it.

    \b
    Example:
      weatherinsight serve --port 8000 &
      curl 'http://127.0.0.1:8000/api/v1/features/temperature?year=2023&quarter=1&limit=5'
    """
    import uvicorn

    from weatherinsight import api

    connection = db.resolve(start=True)
    timeout_ms = int(statement_timeout * 1000)
    api.ensure_reader_role(connection)
    db.connect(api.reader(connection, timeout_ms)).close()  # the role can log in: fail here, not on the first request
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from error
    click.echo(f"serving {connection.describe()} on http://{host}:{port} (docs: /docs; Ctrl-C stops)", err=True)
    if workers == 1:
        uvicorn.run(api.create_app(connection, pool_size, timeout_ms), host=host, port=port, log_level="warning")
    else:
        # each worker process builds its own app (and pool) from the environment
        db.apply_env(connection)
        os.environ[api.TIMEOUT_ENV] = str(timeout_ms)
        uvicorn.run(
            "weatherinsight.api:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning"
        )
