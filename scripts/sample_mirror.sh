# Sourced by the demos: serve the committed DWD mirror (sample_data/dwd_mirror) on a free port of
# 127.0.0.1 until the script exits; sets $port and $mirror_pid. Needs $BIN (the venv's bin folder).

free_port() {
    $BIN/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait (up to 5 s) until URL answers
wait_for() {
    for _ in $(seq 50); do
        $BIN/python -c "import urllib.request; urllib.request.urlopen('$1')" 2>/dev/null && return 0
        sleep 0.1
    done
}

port=$(free_port)
$BIN/python -m http.server --bind 127.0.0.1 --directory sample_data/dwd_mirror "$port" >/dev/null 2>&1 &
mirror_pid=$!
trap 'kill $mirror_pid 2>/dev/null || true' EXIT
wait_for "http://127.0.0.1:$port/"
