"""Loader state belongs to the warehouse: two checkouts on one machine, each with its own server and
a database of the same name, loading the same mirror in turns and at the same time, never read each
other's state -- no file fetched twice into one warehouse, none skipped, no failed load. Both
checkouts share one home folder, as two clones of one user do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from weatherinsight import db

from conftest import REPO, VENV_BIN, Mirror, query

#: --products wind,pressure --stations 1975 on the sample mirror: two archives and two station lists
ARGUMENTS = ("--products", "wind,pressure", "--stations", "1975")
EXPECTED_ROWS = {"wind": 13_200, "pressure": 13_200}
FILES = 4


@dataclass
class Checkout:
    """A clone of the project: its own folder (loader working folders, embedded server) and a
    connection to the warehouse it loads into."""

    root: Path
    home: Path
    connection: db.ConnectionSettings | None = None  # None: its own embedded server

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "WEATHERINSIGHT"))}
        env["HOME"] = str(self.home)
        if self.connection is not None:
            env.update(self.connection.env())
        else:
            env["PGDATABASE"] = TWIN_DATABASE
        return env

    def load(self, base_url: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(VENV_BIN / "weatherinsight"), "load", "dwd", "--base-url", base_url, *ARGUMENTS],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def embedded(self) -> db.ConnectionSettings:
        """This checkout's own embedded server (started like `weatherinsight db up` there)."""
        subprocess.run(
            [str(VENV_BIN / "weatherinsight"), "db", "up"], cwd=self.root, env=self.env(), check=True, timeout=120
        )
        info = subprocess.run(
            [str(VENV_BIN / "weatherinsight"), "db", "env"], cwd=self.root, env=self.env(), check=True,
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        values = dict(re.findall(r"export (\w+)=(\S+)", info))
        return db.ConnectionSettings(
            values["PGHOST"], int(values["PGPORT"]), values["PGUSER"], "embedded", TWIN_DATABASE, True
        )


TWIN_DATABASE = f"wi_twin_{uuid.uuid4().hex[:8]}"


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def fetched(output: str) -> int:
    return int(re.search(r"files fetched: (\d+)", output).group(1))


def raw_rows(connection: db.ConnectionSettings) -> dict[str, int]:
    return {table: query(connection, f"select count(*) from raw_dwd.{table}")[0][0] for table in EXPECTED_ROWS}


def fresh(connection: db.ConnectionSettings) -> None:
    db.drop_database(connection)
    db.ensure_database(connection)


@pytest.fixture
def checkouts(tmp_path: Path, server: db.ConnectionSettings):
    """Two clones sharing one home folder: the first loads into the test server, the second into
    an embedded server of its own; both warehouses' databases have the same name."""
    home = tmp_path / "home"
    home.mkdir()
    clones = []
    for name in ("first", "second"):
        root = tmp_path / name
        (root / ".dlt").mkdir(parents=True)
        shutil.copy(REPO / "dbt_project.yml", root)
        shutil.copy(REPO / ".dlt" / "config.toml", root / ".dlt")
        clones.append(Checkout(root, home))
    first, second = clones
    first.connection = server.with_database(TWIN_DATABASE)
    fresh(first.connection)
    second.connection = second.embedded()
    fresh(second.connection)
    try:
        yield first, second
    finally:
        db.drop_database(first.connection)
        subprocess.run([str(VENV_BIN / "weatherinsight"), "db", "down"], cwd=second.root, env=second.env(), timeout=120)


def test_two_checkouts_load_in_turns_without_reading_each_others_state(checkouts, mirror: Mirror) -> None:
    first, second = checkouts
    assert fetched(finished(first.load(mirror.base_url))) == FILES
    # the second warehouse has never seen these files: all of them are fetched, none skipped
    assert fetched(finished(second.load(mirror.base_url))) == FILES
    # and each one's rerun fetches nothing and duplicates nothing
    assert fetched(finished(first.load(mirror.base_url))) == 0
    assert fetched(finished(second.load(mirror.base_url))) == 0
    assert raw_rows(first.connection) == raw_rows(second.connection) == EXPECTED_ROWS


def test_two_checkouts_load_at_the_same_time(checkouts, mirror: Mirror) -> None:
    first, second = checkouts
    # two warehouses at once
    outputs = [finished(process) for process in (first.load(mirror.base_url), second.load(mirror.base_url))]
    assert [fetched(output) for output in outputs] == [FILES, FILES]
    assert raw_rows(first.connection) == raw_rows(second.connection) == EXPECTED_ROWS
    # one warehouse, dropped and made again, loaded from both checkouts at once: one of them loads
    # every file, the other waits for it and then finds nothing left to fetch
    fresh(first.connection)
    second.connection = first.connection
    outputs = [finished(process) for process in (first.load(mirror.base_url), second.load(mirror.base_url))]
    assert sorted(fetched(output) for output in outputs) == [0, FILES]
    assert raw_rows(first.connection) == EXPECTED_ROWS
