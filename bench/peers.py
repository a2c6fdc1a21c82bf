"""Peers measured in the same run as our own figures, each in its own virtualenv under bench/.peers/
(installed from PyPI on first use, so they never touch the project's environment).

- SQLMesh: an INCREMENTAL_BY_TIME_RANGE model over the same raw table, with the same delivery
  precedence as our hourly fact; we time `sqlmesh plan --restate-model … --start … --end …` of the
  same quarter our windowed build replaces (wall time of each tool's command, start-up included).
- wetterdienst: its public API fetches from opendata.dwd.de with the host written into its URLs, so
  it cannot be pointed at a mirror; its DWD parser, however, takes file contents, and we drive it
  offline on the very archives our loader read (unpack + parse to a DataFrame), beside our parser.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

from weatherinsight import db

PEERS = Path(__file__).resolve().parent / ".peers"
REQUIREMENTS = {"sqlmesh": "sqlmesh[postgres]==0.236.*", "wetterdienst": "wetterdienst==0.170.*"}


def peer_python(name: str) -> Path:
    """The peer's virtualenv interpreter, creating and installing it when missing."""
    folder = PEERS / name
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    if not stamp.is_file() or stamp.read_text() != REQUIREMENTS[name]:
        print(f"installing {REQUIREMENTS[name]} into {folder} (first use)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        # pip's output goes to the exception on failure, not over the benchmark's tables
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENTS[name]],
            check=True,
            capture_output=True,
            text=True,
        )
        stamp.write_text(REQUIREMENTS[name])
    return python


def _failed(error: BaseException) -> dict:
    text = str(error)
    if isinstance(error, subprocess.CalledProcessError) and error.stderr:
        text = f"{text}\n{error.stderr}"
    lines = text.strip().splitlines() or [type(error).__name__]
    return {"error": lines[-1][:300], "summary": f"could not be measured: {lines[-1][:120]}"}


# ---- SQLMesh ------------------------------------------------------------------------------------

SQLMESH_MODEL = """
MODEL (
  name sqlmesh_bench.fct_hourly_air_temperature,
  -- 92 daily intervals per batch: a year is restated in four quarter-sized batches, a quarter in one
  kind INCREMENTAL_BY_TIME_RANGE (time_column observed_at, batch_size 92),
  start '2011-01-01',
  cron '@daily',
  grain (station_id, observed_at)
);

-- the same delivery precedence as the dbt model (macros/deliveries.sql), over the same raw tables
SELECT station_id, observed_at, temperature_c, relative_humidity_pct, quality_level, release, source_file
FROM (
  SELECT
    raw.station_id,
    raw.observed_at,
    raw.tt_tu AS temperature_c,
    raw.rf_tu AS relative_humidity_pct,
    raw.quality_level,
    deliveries.release,
    deliveries.source_file,
    ROW_NUMBER() OVER (
      PARTITION BY raw.station_id, raw.observed_at
      ORDER BY raw.quality_level DESC NULLS LAST, CASE deliveries.release WHEN 'historical' THEN 2 ELSE 1 END DESC,
        deliveries.file_created_at DESC NULLS LAST, deliveries.file_last_modified DESC NULLS LAST,
        CAST(raw._dlt_load_id AS NUMERIC) DESC, deliveries.source_file DESC, raw.source_row_number DESC
    ) AS precedence_rank
  FROM raw_dwd.air_temperature AS raw
  INNER JOIN raw_dwd.deliveries AS deliveries ON raw.delivery_id = deliveries.delivery_id
  WHERE raw.observed_at BETWEEN @start_ts AND @end_ts
) AS ranked
WHERE precedence_rank = 1
"""


def sqlmesh_restatements(connection: db.ConnectionSettings, tmp: Path, windows: dict[str, tuple[date, date]]) -> dict:
    """SQLMesh's initial backfill of the hourly model over ``connection``'s raw table, then a
    restatement of each window (the best of two, after a first that warms its caches: our figures
    are warm too)."""
    try:
        python = peer_python("sqlmesh")
    except (subprocess.CalledProcessError, OSError) as error:
        return _failed(error)
    project = tmp / "sqlmesh_project"
    (project / "models").mkdir(parents=True, exist_ok=True)
    (project / "models" / "fct_hourly_air_temperature.sql").write_text(SQLMESH_MODEL)
    (project / "config.yaml").write_text(
        textwrap.dedent(
            f"""
            gateways:
              local:
                connection:
                  type: postgres
                  host: "{connection.host}"
                  port: {connection.port}
                  user: "{connection.user}"
                  password: "{connection.password}"
                  database: "{connection.database}"
            default_gateway: local
            model_defaults:
              dialect: postgres
            """
        )
    )
    sqlmesh = [str(python.parent / "sqlmesh"), "--paths", str(project)]

    def timed(*arguments: str) -> float:
        started = time.perf_counter()
        result = subprocess.run([*sqlmesh, *arguments], capture_output=True, text=True, cwd=project)
        if result.returncode != 0:
            raise RuntimeError((result.stdout + result.stderr)[-2000:])
        return time.perf_counter() - started

    figures: dict = {}
    try:
        figures["initial_backfill_s"] = round(timed("plan", "--auto-apply", "--no-prompts", "--skip-tests"), 2)
        for name, (start, end) in windows.items():
            restate = ("plan", "--restate-model", "sqlmesh_bench.fct_hourly_air_temperature", "--start",
                       start.isoformat(), "--end", (end - timedelta(days=1)).isoformat(), "--auto-apply",
                       "--no-prompts", "--skip-tests")  # fmt: skip
            timed(*restate)
            figures[f"{name}_s"] = round(min(timed(*restate) for _ in range(2)), 2)
    except (RuntimeError, OSError) as error:
        return _failed(error)
    return figures


# ---- wetterdienst -------------------------------------------------------------------------------

WETTERDIENST_SCRIPT = """
import json, sys, time
from io import BytesIO
from pathlib import Path
from wetterdienst.metadata.period import Period
from wetterdienst.provider.dwd.observation.download import _unpack_climate_observations_data
from wetterdienst.provider.dwd.observation.metadata import DwdObservationMetadata
from wetterdienst.provider.dwd.observation.parser import parse_climate_observations_data
from wetterdienst.util.network import File

dataset = DwdObservationMetadata.hourly.temperature_air
rows = 0
started = time.perf_counter()
for path in map(Path, json.loads(sys.argv[1])):
    period = Period.HISTORICAL if path.name.endswith("_hist.zip") else Period.RECENT
    url = "https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/hourly/air_temperature/"
    file = File(url=url + period.value + "/" + path.name, content=BytesIO(path.read_bytes()), status=200)
    frame = parse_climate_observations_data([_unpack_climate_observations_data(file, dataset)], dataset, period)
    rows += frame.collect().height
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
"""


def wetterdienst_parse(mirror_root: Path, loader: dict) -> dict:
    try:
        python = peer_python("wetterdienst")
    except (subprocess.CalledProcessError, OSError) as error:
        return _failed(error)
    archives = sorted(str(path) for path in mirror_root.rglob("stundenwerte_TU_*.zip"))
    result = subprocess.run(
        [str(python), "-c", WETTERDIENST_SCRIPT, json.dumps(archives)], capture_output=True, text=True
    )
    if result.returncode != 0:
        return _failed(RuntimeError(result.stderr[-2000:]))
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    ours_rate = loader["parsed_rows"] / loader["time_split_s"]["parse (parser only)"]
    theirs_rate = measured["rows"] / measured["seconds"]
    return {
        "rows": measured["rows"],
        "seconds": round(measured["seconds"], 2),
        "rows_per_s": round(theirs_rate),
        "our_parser_rows_per_s": round(ours_rate),
        "ours_over_wetterdienst": round(ours_rate / theirs_rate, 2),
        "summary": f"parser only, same archives: {theirs_rate:,.0f} rows/s vs ours {ours_rate:,.0f} rows/s "
        "(its API cannot use a mirror: the DWD host is written into its URLs)",
    }
