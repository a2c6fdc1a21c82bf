#!/usr/bin/env bash
# The demo on Spark: the committed DWD mirror loaded by dlt into a local lake of parquet files
# (.lake/), the same dbt project built by Spark over it (--target spark, Spark's warehouse in
# .spark/), a quarterly mart printed, and each quarterly mart checked against the PostgreSQL
# demo's, row for row. Needs Java 17+ and the spark extra (`make demo-spark` installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started=$(date +%s)

# the PostgreSQL demo warehouse is what the Spark marts are checked against
if ! $BIN/weatherinsight show quarterly_temperature_features --limit 1 >/dev/null 2>&1; then
    echo "== the PostgreSQL demo first (the reference for the check)"
    bash scripts/demo.sh
fi

# the committed mirror on 127.0.0.1:$port while this script runs
source scripts/sample_mirror.sh

echo "== loading the DWD mirror on http://127.0.0.1:$port/ into the lake (.lake/) with dlt"
$BIN/weatherinsight load dwd --destination lake --base-url "http://127.0.0.1:$port/"

echo "== dbt build --target spark (Spark local[2]; the first start takes ~20 s)"
$BIN/weatherinsight dbt build --target spark --quiet

echo "== marts.quarterly_temperature_features on Spark (newest quarters)"
$BIN/weatherinsight lake show quarterly_temperature_features --limit 8 \
    --columns station_id,year,quarter,observation_count,expected_hours,coverage_ratio,temperature_c_mean,temperature_c_min,temperature_c_max,temperature_c_stddev

echo "== each quarterly mart on Spark against PostgreSQL's"
$BIN/weatherinsight lake compare

echo "demo-spark done in $(( $(date +%s) - started )) s; a window on Spark: $BIN/weatherinsight dbt build --target spark --select marts --vars '{start_date: 2021-01-01, end_date: 2021-04-01}'"
