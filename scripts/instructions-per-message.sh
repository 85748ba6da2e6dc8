#!/usr/bin/env bash
# Counts the user-space instructions a broker executes per routed message, under valgrind's
# callgrind: 10 publisher/subscriber pairs at 100 msg/s each (64 B, MQTT 3.1.1; QoS 0 unless
# the environment sets QOS) for 5 s, counted from the first CONNECT to the end of the drain. Instruction counts do not
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

# shellcheck source=broker-run.sh
. scripts/broker-run.sh
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ $# -gt 0 ] || set -- "$bench"
qos=${QOS:-0}

for broker in "$@"; do
    port=$(free_port)
    out="$work/callgrind.out"
    rm -f "$out"*
    start_broker "$broker" "$port" valgrind --tool=callgrind --callgrind-out-file="$out"
    callgrind_control --zero "$broker_pid" >/dev/null 2>&1
    received=$("$bench" bench p2p -u "mqtt://127.0.0.1:$port" -c 10 -r 100 -q "$qos" -s 64 -d 5s --drain 1s \
        --mqtt-version 3.1.1 --no-progress 2>&1 | awk '/received/ {print $2}')
    callgrind_control --dump "$broker_pid" >/dev/null 2>&1
    stop_broker
    total=$(callgrind_annotate "$out".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$broker: $total instructions for $received messages, $((total / received)) per message"
done
