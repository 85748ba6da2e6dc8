#!/usr/bin/env bash
# One `mquictt bench` scenario against builds of our broker side by side, in rounds alternating
# between them: each round starts each build's broker afresh (one TCP listener, messages in
# memory, rate limits lifted) and runs the scenario once. Prints the messages delivered per
# second and the broker's CPU time per message of every run, and the medians over the rounds.
# For changes that matter with many clients (fan-in, fan-out, many pairs), where
# scripts/throughput-rounds.sh runs one pair.
#
#   scripts/scenario-rounds.sh ROUNDS "SCENARIO OPTION..." LABEL=PATH[ BROKER-OPTION...]...
#
# e.g. scripts/scenario-rounds.sh 3 "fanin -c 100 -q 0 -s 64" before=/tmp/mquictt-before after=target/release/mquictt
# The scenario's options are passed to `mquictt bench` after the broker's URL (-u) and
# `--mqtt-version 3.1.1`; DURATION (4s) sets -d. Words after PATH are passed to
# `mquictt broker`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 3 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
rounds=$1 scenario=$2
shift 2
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
check_entries "$@"
read -r -a words <<<"$scenario"

for round in $(seq "$rounds"); do
    for entry in "$@"; do
        label=${entry%%=*}
        port=$(free_port)
        printf 'storage = "memory"\n[limits]\npublish_rate = 0\nconnection_rate = 0\nmax_pending_connections = 100000\n[[listener]]\nurl = "tcp://127.0.0.1:%s"\n' \
            "$port" >"$work/broker.toml"
        launch_mquictt "${entry#*=}"
        wait_for_port "$port"
        before=$(cpu_ticks_total "$broker_pid")
        out=$("$bench" bench "${words[0]}" -u "mqtt://127.0.0.1:$port" -d "${DURATION:-4s}" --mqtt-version 3.1.1 \
            "${words[@]:1}" --no-progress 2>&1) || { echo "$out" >&2; exit 1; }
        after=$(cpu_ticks_total "$broker_pid")
        stop_broker
        received=$(awk '/received/ {print $2; exit}' <<<"$out")
        rate=$(grep -oE '= [0-9]+ msg/s' <<<"$out" | tail -1 | tr -dc 0-9)
        us=$(us_per_message "$before" "$after" "$received" 3)
        echo "round $round $label: $rate msg/s $us us/msg"
        echo "$round $label $rate $us" >>"$work/results"
    done
done

python3 - "$work/results" <<'EOF'
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    _, label, rate, us = line.split()
    runs[label].append((int(rate), float(us)))
print("median over the rounds:")
for label, values in runs.items():
    rate = statistics.median(v[0] for v in values)
    us = statistics.median(v[1] for v in values)
    print(f"  {label:12} {rate:>9.0f} msg/s  {us:6.3f} us broker CPU per message")
EOF
