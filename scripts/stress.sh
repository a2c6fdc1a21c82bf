#!/usr/bin/env bash
# The loaders' concurrency and kill tests, ROUNDS times in a row (default 10) on a busy machine: a
# process spinning on every core beside them, as on a shared machine running other builds. Races a
# quiet run hides (two loads setting up one pipeline folder, a resumed load storing a chunk twice)
# show up here. Stops at the first failing round; `make test` keeps one such run (busy_machine).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
selection="sigkill_during or sigkill_as or ctrl_c_during or at_once and loads or sigkilled_load or committed_before"
hogs=()
for _ in $(seq "$(nproc)"); do
    .venv/bin/python -c "while True: pass" &
    hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
started=$(date +%s)
log=$(mktemp)
for round in $(seq "$rounds"); do
    echo "== round $round of $rounds ($(nproc) cores busy beside it)"
    if ! .venv/bin/pytest -q --no-header -p no:cacheprovider tests/python/test_faults.py \
        tests/python/test_openmeteo.py -k "$selection" >"$log" 2>&1; then
        tail -40 "$log"
        echo "round $round failed (the whole output: $log)"
        exit 1
    fi
    tail -1 "$log"
done
echo "$rounds rounds passed in $(( $(date +%s) - started )) s"
