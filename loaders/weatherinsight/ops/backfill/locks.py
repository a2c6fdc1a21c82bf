"""One writer per window: session-level advisory locks on (mart model, quarter) that a backfill holds
while it builds and publishes a window, and the transaction-level writer locks dbt's models take
(the `window_replace` materialization), which a publish and a restore take too."""

from __future__ import annotations

import time
from collections.abc import Sequence

from weatherinsight.ops.backfill.catalogue import MARTS_SCHEMA
from weatherinsight.windows import Window


class WindowBusy(RuntimeError):
    """Another run writes an overlapping window."""


def window_lock_keys(models: Sequence[str], window: Window) -> list[str]:
    """One key per (mart model, quarter) the window writes."""
    return sorted({f"weatherinsight.window:{model}:{quarter}" for model in models for quarter in window.quarters()})


class WindowLocks:
    """Session-level advisory locks on (mart model, quarter): all or none, waiting up to ``wait`` s."""

    def __init__(self, conn, keys: Sequence[str], what: str, wait: float) -> None:
        self.conn, self.keys, self.what, self.wait = conn, list(keys), what, wait

    def __enter__(self) -> WindowLocks:
        deadline = time.monotonic() + self.wait
        while True:
            held = []
            with self.conn.cursor() as cursor:
                for key in self.keys:
                    cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (key,))
                    if not cursor.fetchone()[0]:
                        break
                    held.append(key)
                if len(held) == len(self.keys):
                    return self
                for key in held:
                    cursor.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
            if time.monotonic() >= deadline:
                raise WindowBusy(
                    f"{self.what} is being written by another run; wait for it (see: weatherinsight status) "
                    "or pass --wait SECONDS"
                )
            time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        with self.conn.cursor() as cursor:
            for key in self.keys:
                cursor.execute("select pg_advisory_unlock(hashtext(%s))", (key,))


def writer_lock_name(schema: str, model: str) -> str:
    """What the writer lock of a relation is named; its key is ``hashtext`` of it, as dbt's
    `writer_lock_key` macro computes (tests/python/test_window_parity.py)."""
    return f"weatherinsight.writer:{schema}.{model}"


def writer_locks(cursor, models: Sequence[str]) -> None:
    """The transaction-level locks dbt's models take before writing (the `window_replace` materialization), so
    no plain dbt build interleaves with a publish or a restore."""
    for model in sorted(set(models)):
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s))", (writer_lock_name(MARTS_SCHEMA, model),))
