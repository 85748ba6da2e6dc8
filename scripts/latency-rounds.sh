#!/usr/bin/env bash
# Latency at a fixed rate, in rounds alternating between brokers: each round starts a fresh
# broker per entry, runs `mquictt bench p2p` against it, and records the broker's CPU time; at
# the end, the median p50, p99 and p99.9 of each entry over the rounds. For comparing two builds
# of our broker with each other and with Mosquitto on the same machine in one run.
#
#   scripts/latency-rounds.sh ROUNDS ENTRY...
#
# ENTRY is `mosquitto` or LABEL=PATH to an `mquictt` binary, optionally followed by options for
# `mquictt broker` in the same word, e.g.
#   scripts/latency-rounds.sh 6 before=/tmp/mquictt-before after=target/release/mquictt mosquitto
#   scripts/latency-rounds.sh 6 two=target/release/mquictt "one=target/release/mquictt --threads 1"
# Environment: RATE per publisher (1000), QOS (0), CLIENTS pairs (10), DURATION (5s).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
rounds=$1
shift
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
rate=${RATE:-1000} qos=${QOS:-0} clients=${CLIENTS:-10} duration=${DURATION:-5s}

for round in $(seq "$rounds"); do
    for entry in "$@"; do
        port=$(free_port)
        if [ "$entry" = mosquitto ]; then
            label=mosquitto
            start_broker mosquitto "$port"
        else
            label=${entry%%=*}
            start_broker "${entry#*=}" "$port"
        fi
        read -r user0 sys0 <<<"$(cpu_ticks "$broker_pid")"
        line=$("$bench" bench p2p -u "mqtt://127.0.0.1:$port" -c "$clients" -r "$rate" -q "$qos" -s 64 \
            -d "$duration" --drain 1s --mqtt-version 3.1.1 --no-progress 2>&1 | grep -E '^ +latency' | tr -s ' ')
        read -r user1 sys1 <<<"$(cpu_ticks "$broker_pid")"
        stop_broker
        echo "round $round $label: CPU ticks user $((user1 - user0)) system $((sys1 - sys0));$line"
        echo "$round $label$line" >>"$work/results"
    done
done

python3 - "$work/results" <<'EOF'
import re
import statistics
import sys
from collections import defaultdict

UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}
figures = defaultdict(lambda: defaultdict(list))
p99_by_round = defaultdict(dict)
for line in open(sys.argv[1]):
    round_number, label = line.split()[:2]
    for name in ("p50", "p99", "p99.9"):
        found = re.search(r"\b" + re.escape(name) + r" ([\d.]+) (us|ms|s)\b", line)
        if found:
            value = float(found[1]) * UNITS[found[2]]
            figures[label][name].append(value)
            if name == "p99":
                p99_by_round[round_number][label] = value
print("median over the rounds:")
for label, by_name in figures.items():
    cells = "  ".join(f"{name} {statistics.median(values):.0f} us" for name, values in by_name.items())
    print(f"  {label:12s} {cells}  ({len(by_name['p50'])} rounds)")
# Medians alone hide how often the ranking flips between rounds.
if "mosquitto" in figures:
    for label in figures:
        if label == "mosquitto":
            continue
        pairs = [r for r in p99_by_round.values() if label in r and "mosquitto" in r]
        at_or_below = sum(1 for r in pairs if r[label] <= r["mosquitto"])
        print(f"  {label}: p99 at or below Mosquitto's in {at_or_below} of {len(pairs)} rounds")
EOF
