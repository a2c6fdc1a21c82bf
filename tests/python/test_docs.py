"""Keep the docs honest: every command has help text with an example and appears in the docs (the
README and the topic pages under docs/); the CLI reference is what the commands print; the
procedures of the pages run as written."""

from __future__ import annotations

import re

import click
import pytest
import yaml

from weatherinsight.cli import cli
from weatherinsight.openmeteo.standin import StandIn

from conftest import REPO


def all_commands(group: click.Group, prefix: str = "weatherinsight") -> list[tuple[str, click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):  # the top group imports its commands when asked
        command = group.get_command(context, name)
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


COMMANDS = all_commands(cli)
#: the topic pages a newcomer is sent to from the README (the CLI reference is generated, not written)
PAGES = sorted(path for path in (REPO / "docs").glob("*.md") if path.name != "cli.md")


def docs_text() -> str:
    """The README and every topic page, as one text."""
    return "\n".join(path.read_text(encoding="utf-8") for path in [REPO / "README.md", *PAGES])


@pytest.mark.quick
@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 20, f"{path} lacks help text"
    assert "Example" in command.help and "weatherinsight " in command.help.split("Example", 1)[1], (
        f"{path}'s --help has no example"
    )


@pytest.mark.quick
@pytest.mark.parametrize("path", [path for path, command in COMMANDS if not isinstance(command, click.Group)])
def test_every_command_is_in_the_docs(path: str) -> None:
    assert path in docs_text()


@pytest.mark.quick
def test_the_readme_is_short_and_leads_to_every_page() -> None:
    """A newcomer reads the README in five minutes: what it is, the two commands, the everyday
    commands, and a link to each topic page and to the CLI reference."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for page in [*PAGES, REPO / "docs" / "cli.md"]:
        assert f"](docs/{page.name})" in readme, f"the README does not lead to docs/{page.name}"


@pytest.mark.quick
def test_the_cli_reference_is_what_the_commands_print() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "cli_reference.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.quick
def test_readme_starts_with_the_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in first_block.strip().splitlines()] == [["make", "demo"], ["make", "test"]]


def makefile_targets() -> set[str]:
    return set(re.findall(r"(?m)^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text()))


@pytest.mark.quick
def test_the_workflow_runs_what_make_runs() -> None:
    """Every `make` target the GitHub workflow calls exists, its test job runs `make test` (the full
    suite, as `.ci/run` does), and every phony target a developer is told about is in the Makefile."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    called = {target for text in runs for target in re.findall(r"\bmake(?: -\S+)* ([a-z][a-z0-9-]*)", text)}
    assert called and called <= makefile_targets(), called - makefile_targets()
    assert any(step.get("run") == "make test" for step in workflow["jobs"]["test"]["steps"])
    assert "make test" in (REPO / ".ci" / "run").read_text()
    phony = set(re.search(r"(?m)^\.PHONY: (.*)$", (REPO / "Makefile").read_text()).group(1).split())
    assert phony <= makefile_targets(), phony - makefile_targets()
    readme_targets = set(re.findall(r"(?m)^make ([a-z][a-z0-9-]*)", docs_text()))
    assert readme_targets <= makefile_targets(), readme_targets - makefile_targets()


def procedure_commands(heading: str) -> list[str]:
    """The commands of the first bash block under ``heading`` (a line of the README or a page)."""
    text = docs_text()
    assert f"\n{heading}\n" in text, f"no section {heading!r} in the docs"
    block = text.split(f"\n{heading}\n", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command = line.split("  #", 1)[0].strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def run_as_written(commands: list[str], env: dict[str, str], cwd, dbt_worker=None, target=None) -> None:
    """Run documented commands one after another with the venv's executables; each must succeed. With
    ``dbt_worker``, `dbt …` lines run in that dbt worker (the same dbt and arguments, on the project
    parsed once, their artifacts in ``target``): the subject is what the procedure does, and the
    dbt CLI itself is tested elsewhere."""
    import shlex
    import subprocess

    from conftest import VENV_BIN, run_in_worker

    for index, command in enumerate(commands):
        arguments = shlex.split(command)
        if dbt_worker is not None and arguments[0] == "dbt":
            result = run_in_worker(dbt_worker, *arguments[1:], target_path=target / str(index))
            assert result.returncode == 0, (command, result.stdout[-3000:])
            continue
        result = subprocess.run(
            [str(VENV_BIN / arguments[0]), *arguments[1:]],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])


def test_readme_procedures_run_as_written_on_the_demo_data(mirror, database, tmp_path) -> None:

    from conftest import cli_env, dbt_worker, query

    env = cli_env(
        database,
        SOURCES__DWD_HOURLY__BASE_URL=mirror.base_url,
        WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"),
        DBT_TARGET_PATH=str(tmp_path / "target"),
        DBT_LOG_PATH=str(tmp_path / "logs"),
    )
    commands = procedure_commands("## Backfill and reprocessing with dbt directly")
    assert len(commands) == 10
    run_as_written(commands, env, cwd=REPO, dbt_worker=dbt_worker(database), target=tmp_path / "target")
    quarters = query(database, "select count(*) from marts.quarterly_pressure_features where year in (2018, 2019)")
    assert quarters[0][0] == 7  # Hamburg's pressure archive covers 2018-03 .. 2019-09
    assert query(database, "select count(*) from marts.quarterly_wind_features where year = 2021")[0][0] == 3


def test_readme_backfill_operations_run_as_written_on_the_demo_data(mirror, database, tmp_path) -> None:
    """Every legacy procedure of the README as the one command that does it, in order, as written."""

    from conftest import cli_env, query, run_cli

    env = cli_env(
        database,
        SOURCES__DWD_HOURLY__BASE_URL=mirror.base_url,
        WEATHERINSIGHT_PIPELINES_DIR=str(tmp_path / "pipelines"),
        WEATHERINSIGHT_HOME=str(REPO),
        COLUMNS="200",
    )
    commands = procedure_commands("## Backfill operations")
    assert len(commands) == 15
    # as after `make demo`: dataset_versions built before any backfill made the ledger (a stand-in)
    assert run_cli("dbt", "run", "--select", "dataset_versions", env=env).returncode == 0
    with StandIn() as standin:  # the Open-Meteo commands fetch from the local stand-in
        env["WEATHERINSIGHT_OPENMETEO_BASE_URL"] = standin.base_url
        run_as_written(commands, env, cwd=tmp_path)  # `--html coverage.html` lands there, not in the checkout
    runs = query(database, "select run_id, command, status from ops.backfill_runs order by run_id")
    assert [status for _, _, status in runs] == [
        "succeeded", "succeeded", "succeeded", "rolled back", "succeeded", "succeeded"
    ]  # fmt: skip
    assert query(database, "select count(*) from marts.quarterly_air_quality_features where year = 2023") == [(2,)]
    assert query(database, "select count(*) from marts.quarterly_pressure_features where year in (2018, 2019)") == [
        (7,)
    ]
    assert '<table class="coverage">' in (tmp_path / "coverage.html").read_text(encoding="utf-8")
    # the demo's `dbt build` made ops.dataset_versions before the ledger existed; the first backfill
    # made it again over the ledger: a version per product-quarter published, the forced one twice
    versions = query(
        database,
        "select product, year, quarter, version, status, is_latest from ops.dataset_versions"
        " where product = 'wind' and year = 2020 and quarter = 3 order by version",
    )
    assert [row[3:] for row in versions] == [(1, "succeeded", True), (2, "rolled back", False)]
