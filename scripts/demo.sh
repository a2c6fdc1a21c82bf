#!/usr/bin/env bash
# The demo: start the embedded PostgreSQL, serve the committed DWD mirror on 127.0.0.1, load it
# with dlt, build the dbt project and print a quarterly mart. Safe to run again: the second run
# loads 0 rows and leaves the marts identical.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started=$(date +%s)

$BIN/weatherinsight db up
eval "$($BIN/weatherinsight db env)"

# the committed mirror on 127.0.0.1:$port while this script runs
source scripts/sample_mirror.sh

echo "== loading the DWD mirror on http://127.0.0.1:$port/ with dlt"
$BIN/weatherinsight load dwd --base-url "http://127.0.0.1:$port/"

echo "== loading Open-Meteo weather and air quality for the locations of seeds/locations.csv (2022)"
echo "   from a local stand-in of the APIs (generated values in the real answers' shape)"
standin_port=$(free_port)
$BIN/weatherinsight standin openmeteo --port "$standin_port" 2>/dev/null &
standin_pid=$!
trap 'kill $mirror_pid $standin_pid 2>/dev/null || true' EXIT
wait_for "http://127.0.0.1:$standin_port/v1/archive?latitude=0&longitude=0&hourly=temperature_2m&start_date=2022-01-01&end_date=2022-01-01"
$BIN/weatherinsight load openmeteo --api weather,air-quality --start 2022-01-01 --end 2023-01-01 \
    --base-url "http://127.0.0.1:$standin_port"

echo "== dbt build"
$BIN/dbt build --quiet

echo "== 2021 precipitation reprocessed window by window (audit, publish, ledger): weatherinsight backfill"
$BIN/weatherinsight backfill run --no-load --force --products precipitation --start 2021-01-01 --end 2022-01-01

echo "== marts.quarterly_temperature_features (newest quarters)"
$BIN/weatherinsight show quarterly_temperature_features --limit 8 \
    --columns station_id,year,quarter,observation_count,expected_hours,coverage_ratio,temperature_c_mean,temperature_c_min,temperature_c_max,temperature_c_stddev,relative_humidity_pct_mean

echo "== marts.quarterly_air_quality_features (Hamburg-Fuhlsbüttel, location 2)"
$BIN/weatherinsight show quarterly_air_quality_features --location 2 --limit 4 \
    --columns location_id,year,quarter,observation_count,coverage_ratio,pm2_5_ugm3_mean,pm2_5_ugm3_p95,pm2_5_hours_above_who,no2_ugm3_mean,european_aqi_max

echo "demo done in $(( $(date +%s) - started )) s; explore with: eval \"\$($BIN/weatherinsight db env)\" && $BIN/dbt docs generate && $BIN/dbt docs serve"
echo "serve it: $BIN/weatherinsight serve --port 8000 (then curl 'http://127.0.0.1:8000/api/v1/features/temperature?year=2021&quarter=1&limit=5');"
echo "watch it: $BIN/weatherinsight status --html status.html"
