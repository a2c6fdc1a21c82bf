"""``weatherinsight standin``: local stand-ins of the remote sources, for trying things offline."""

from __future__ import annotations

import time

import click


@click.group("standin")
def standin_group() -> None:
    """Serve a local stand-in of a remote source on 127.0.0.1 (for the demo and offline trials).

    Example: weatherinsight standin openmeteo --port 8766
    """


@standin_group.command("openmeteo")
@click.option("--port", type=int, default=8766, show_default=True, help="Port on 127.0.0.1 (0: any free one).")
def standin_openmeteo(port: int) -> None:
    """Answer Open-Meteo's /v1/archive and /v1/air-quality with generated values until stopped.

    Example: weatherinsight standin openmeteo --port 8766 &
             weatherinsight load openmeteo --api weather --base-url http://127.0.0.1:8766
                 --start 2024-01-01 --end 2024-02-01
    """
    from weatherinsight.openmeteo.standin import StandIn

    with StandIn(port=port) as standin:
        click.echo(f"Open-Meteo stand-in on {standin.base_url} (Ctrl-C stops it)", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
