"""The lake: raw tables as parquet files written by dlt's ``filesystem`` destination, read by the
``spark`` dbt target (``profiles.yml``).

A lake is a URL (``file:///…``, ``s3://…``; a plain path means a local folder). Each dataset is a
folder below it (``raw_dwd/``), each table a folder of parquet files named by dlt load id, and
dlt keeps the loader state, its schema versions and completed loads (``_dlt_loads``) there too, so
a lake carries its own state exactly as a warehouse does: the pipeline is named after the lake's
URL, and its state is restored from the lake before every load.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

from weatherinsight import db
from weatherinsight.errors import RequestError
from weatherinsight.windows import Window, split

log = logging.getLogger(__name__)

#: the lake of a checkout when nothing else is configured: ``.lake/`` beside ``.pgdata/``
DEFAULT_FOLDER = ".lake"


class LakeError(RequestError):
    """A lake or Spark set-up the user can fix (a URL that cannot be written, no Java, no extra)."""


def lake_url(configured: str | None = None) -> str:
    """The lake to use: ``configured`` (``--lake-url``), else ``WEATHERINSIGHT_LAKE_URL``, else
    ``.lake/`` in the checkout; a plain path becomes an absolute ``file://`` URL."""
    url = configured or os.environ.get("WEATHERINSIGHT_LAKE_URL") or str(db.project_root() / DEFAULT_FOLDER)
    if "://" not in url:
        return Path(url).expanduser().resolve().as_uri()
    return url.rstrip("/")


def local_folder(url: str) -> Path | None:
    """The folder of a ``file://`` lake, None for a remote one."""
    parsed = urlparse(url)
    return Path(parsed.path) if parsed.scheme == "file" else None


def check_writable(url: str) -> None:
    """Fail with one line, before anything is fetched, when the lake cannot be written."""
    folder = local_folder(url)
    if folder is None:
        scheme = urlparse(url).scheme
        if scheme in ("s3", "s3a") and find_spec("s3fs") is None:
            raise LakeError(f"lake {url}: s3 needs the s3fs package (pip install 's3fs')")
        return  # remote lakes are checked by dlt's first write, which fails with the provider's reason
    probe = folder / ".weatherinsight-write-probe"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise LakeError(f"lake {url} cannot be written ({reason}): give --lake-url a folder you can write") from None


@contextmanager
def load_lock(url: str) -> Iterator[None]:
    """One load at a time per local lake (a file lock in the lake's folder; a second load waits).
    Remote lakes have no lock: run one loader per lake (a scheduler's single job)."""
    folder = local_folder(url)
    if folder is None:
        yield
        return
    with open(folder / ".weatherinsight-load.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another load of %s", url)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_spark() -> None:
    """Fail with one line when the ``spark`` target cannot run here: the extra or Java missing."""
    missing = [name for name in ("pyspark", "dbt.adapters.spark") if find_spec(name) is None]
    if missing:
        raise LakeError("the spark target needs the spark extra (pip install -e '.[spark]', or make demo-spark)")
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else None
    java = str(java) if java and java.exists() else shutil.which("java")
    if java is None:
        raise LakeError(
            "the spark target needs Java 17 or newer: install a JDK (apt-get install openjdk-17-jre-headless)"
        )
    try:
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LakeError(f"the spark target needs Java 17 or newer: {java} does not run ({error})") from None
    major = _java_major(version)
    if major is not None and major < 17:
        raise LakeError(f"the spark target needs Java 17 or newer, {java} is Java {major}")


def _java_major(version_text: str) -> int | None:
    """17 from ``openjdk version "17.0.15"``, 8 from ``"1.8.0_392"``."""
    for line in version_text.splitlines():
        if '"' in line:
            number = line.split('"')[1]
            parts = number.split(".")
            try:
                return int(parts[1]) if parts[0] == "1" else int(parts[0])
            except (ValueError, IndexError):
                return None
    return None


def refuse_spark_target(command: str) -> None:
    """Commands that keep their ledger, locks and audit schemas in PostgreSQL refuse a spark
    ``DBT_TARGET`` with what to run instead (docs/spark.md says why)."""
    if os.environ.get("DBT_TARGET") == "spark":
        raise LakeError(
            f"{command} runs on PostgreSQL; on the spark target rebuild windows with "
            "weatherinsight dbt build --target spark --vars '{start_date: …, end_date: …}' (unset DBT_TARGET)"
        )


def check_window(variables: dict | None, full_refresh: bool = False) -> None:
    """Refuse a window narrower than a partition of the spark target (no whole UTC quarter inside
    it) before Spark starts, as ``macros/spark.sql`` does when dbt runs on its own."""
    if full_refresh or not isinstance(variables, dict):
        return
    try:
        start, end = (date.fromisoformat(str(variables.get(name))) for name in ("start_date", "end_date"))
        window = Window(start, end)
    except ValueError:
        return  # no window (or a malformed one, which dbt reports in its own words)
    if window.end <= window.start:
        return
    if not any(piece.widened("quarter") == piece for piece in split(window.start, window.end, "quarter")):
        widened = window.widened("quarter")
        raise LakeError(
            f"window [{window.start}, {window.end}) is narrower than a partition of the spark target (a UTC quarter):"
            f" give whole quarters, e.g. start_date: {widened.start}, end_date: {widened.end}"
        )


def spark_dir() -> Path:
    """Spark's folder (its warehouse and metastore): ``WEATHERINSIGHT_SPARK_DIR``, else ``.spark/``
    in the checkout."""
    configured = os.environ.get("WEATHERINSIGHT_SPARK_DIR")
    return Path(configured).resolve() if configured else db.project_root() / ".spark"


def spark_env(url: str | None = None, folder: Path | None = None) -> dict[str, str]:
    """The environment the ``spark`` target reads (profiles.yml): the lake and the folder of Spark's
    warehouse and metastore (``folder``, else :func:`spark_dir`), both absolute."""
    return {
        "WEATHERINSIGHT_LAKE_URL": lake_url(url),
        "WEATHERINSIGHT_SPARK_DIR": str((folder or spark_dir()).resolve()),
        "DBT_TARGET": "spark",
        # a local session binds to the loopback interface (and does not warn about the hostname)
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }
