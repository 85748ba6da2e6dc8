#!/usr/bin/env bash
# Counts the user-space instructions a broker executes per routed message, under valgrind's
# callgrind: 10 publisher/subscriber pairs at 100 msg/s each (QoS 0, 64 B, MQTT 3.1.1) for
# 5 s, counted from the first CONNECT to the end of the drain. Instruction counts do not
# depend on what else the machine is doing, unlike times, so two builds (or a build and
# Mosquitto) compare in one run without rounds.
#
#   scripts/instructions-per-message.sh [BROKER ...]
#
# BROKER is a path to an `mquictt` binary (default target/release/mquictt) or `mosquitto`.
# Needs valgrind (Debian: `apt-get install valgrind`) and Mosquitto for its row. The broker
# runs about fifty times slower under callgrind, which 1,000 messages a second in all allows.
set -euo pipefail
cd "$(dirname "$0")/.."

bench=${CARGO_TARGET_DIR:-target}/release/mquictt
[ -x "$bench" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ $# -gt 0 ] || set -- "$bench"

work=$(mktemp -d)
broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for broker in "$@"; do
    port=$(free_port)
    out="$work/callgrind.out"
    rm -f "$out"*
    if [ "$broker" = mosquitto ]; then
        printf 'allow_anonymous true\npersistence false\nset_tcp_nodelay true\nlistener %s 127.0.0.1\n' \
            "$port" >"$work/mosquitto.conf"
        [ "$(id -u)" -eq 0 ] && echo "user root" >>"$work/mosquitto.conf"
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            mosquitto -c "$work/mosquitto.conf" >"$work/broker.log" 2>&1 &
    else
        printf '[[listener]]\nurl = "tcp://127.0.0.1:%s"\n[limits]\npublish_rate = 0\nconnection_rate = 0\n' \
            "$port" >"$work/broker.toml"
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$broker" broker --data-dir "$work/data" --config "$work/broker.toml" >"$work/broker.log" 2>&1 &
    fi
    broker_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        sleep 0.2
    done
    callgrind_control --zero "$broker_pid" >/dev/null 2>&1
    received=$("$bench" bench p2p -u "mqtt://127.0.0.1:$port" -c 10 -r 100 -q 0 -s 64 -d 5s --drain 1s \
        --mqtt-version 3.1.1 --no-progress 2>&1 | awk '/received/ {print $2}')
    callgrind_control --dump "$broker_pid" >/dev/null 2>&1
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
    total=$(callgrind_annotate "$out".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$broker: $total instructions for $received messages, $((total / received)) per message"
done
