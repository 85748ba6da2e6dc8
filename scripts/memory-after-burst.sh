#!/usr/bin/env bash
# The broker's memory after a burst, in rounds alternating between builds: subscribers that
# stay connected while one publisher sends 64 B messages at full speed for 3 s; each round
# starts a fresh broker per entry and prints its RSS before, its peak while publishing, and its
# RSS once it has been idle for a while (with its CPU ticks over the last 3 s, which should be
# 0 or 1: a broker still delivering is not idle yet). At the end, the median of each.
#
#   scripts/memory-after-burst.sh ROUNDS LABEL=PATH[ BROKER-OPTION...]...
#
# e.g. scripts/memory-after-burst.sh 3 before=/tmp/mquictt-before after=target/release/mquictt
# Environment: SUBSCRIBERS (100), QUEUED per subscriber, `max_queued_messages` (10000), IDLE,
# seconds after publishing ends (9).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
rounds=$1
shift
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
subscribers=${SUBSCRIBERS:-100} idle=${IDLE:-9}
export EXTRA_LIMITS="max_queued_messages = ${QUEUED:-10000}"
[ "$idle" -ge 4 ] || { echo "IDLE must be at least 4 (seconds)" >&2; exit 2; }

rss_kib() {
    awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}
for round in $(seq "$rounds"); do
    for entry in "$@"; do
        label=${entry%%=*}
        port=$(free_port)
        start_broker "${entry#*=}" "$port"
        before=$(rss_kib "$broker_pid")
        "$bench" bench sub -u "mqtt://127.0.0.1:$port" -c "$subscribers" -t bench/burst \
            -d "$((idle + 7))s" --drain 1s --no-progress >"$work/sub.log" 2>&1 &
        subscribers_pid=$!
        sleep 2
        "$bench" bench pub -u "mqtt://127.0.0.1:$port" -c 1 -t bench/burst -s 64 -d 3s \
            --no-progress >"$work/pub.log" 2>&1 &
        publisher_pid=$!
        peak=$before
        while kill -0 "$publisher_pid" 2>/dev/null; do
            now=$(rss_kib "$broker_pid")
            [ "$now" -gt "$peak" ] && peak=$now
            sleep 0.1
        done
        wait "$publisher_pid"
        sleep "$((idle - 3))"
        ticks0=$(cpu_ticks_total "$broker_pid")
        sleep 3
        ticks=$(($(cpu_ticks_total "$broker_pid") - ticks0))
        after=$(rss_kib "$broker_pid")
        wait "$subscribers_pid" || true
        stop_broker
        delivered=$(grep -E '^ +received' "$work/sub.log" | tr -s ' ' || true)
        echo "round $round $label: RSS before $((before / 1024)) MiB, peak $((peak / 1024)) MiB," \
            "${idle} s after $((after / 1024)) MiB (CPU ticks in the last 3 s: $ticks);$delivered"
        echo "$label $before $peak $after" >>"$work/results"
    done
done

python3 - "$work/results" <<'PY'
import statistics
import sys
from collections import defaultdict

figures = defaultdict(lambda: ([], [], []))
for line in open(sys.argv[1]):
    label, *kib = line.split()
    for series, value in zip(figures[label], kib):
        series.append(int(value) / 1024)
print("median over the rounds (MiB):")
for label, (before, peak, after) in figures.items():
    print(f"  {label:12s} before {statistics.median(before):.1f}  peak {statistics.median(peak):.1f}"
          f"  idle after {statistics.median(after):.1f}  ({len(after)} rounds)")
PY
