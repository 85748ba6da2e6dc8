#!/usr/bin/env bash
# Many idle TCP connections to one broker: starts it (our broker from an `mquictt` binary, or
# `mosquitto`) on a free loopback port, opens CLIENTS connections with `mquictt bench idle` from
# SOURCES (127.0.0.1-127.0.0.N) at RATE per second, holds them for HOLD seconds, and prints
# every 5 s the broker's resident memory, its open file descriptors and the established
# connections on its port; at the end the bench's summary and the RSS growth per connection.
#
#   scripts/idle-connections.sh BROKER [CLIENTS]
#
# e.g. scripts/idle-connections.sh target/release/mquictt 100000
# Environment: SOURCES, how many 127.0.0.x source addresses (10: each has about 28,000
# ephemeral ports, and the kernel's search for a free one slows down once half of them are
# taken); RATE (3000); HOLD, seconds after the last connection (30).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
broker=$1
clients=${2:-100000}
sources=${SOURCES:-10} rate=${RATE:-3000} hold=${HOLD:-30}
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
[ "$broker" = mosquitto ] || check_entries "broker=$broker"
export EXTRA_LIMITS="max_connections = $((clients + 1000))
max_sessions = $((clients + 1000))"

rss_kib() {
    awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}
sample() {
    printf '%s  rss %7d KiB  descriptors %6d  established %6d\n' "$(date +%T)" \
        "$(rss_kib "$broker_pid")" "$(find "/proc/$broker_pid/fd" -mindepth 1 | wc -l)" \
        "$(ss -Htn state established "( sport = :$port )" | wc -l)"
}

port=$(free_port)
start_broker "$broker" "$port"
echo "broker pid $broker_pid on port $port; open-file limit $(ulimit -Hn)"
before=$(rss_kib "$broker_pid")
connecting=$(python3 -c "import math; print(math.ceil($clients / $rate))")
"$bench" bench idle -u "mqtt://127.0.0.1:$port" -c "$clients" --source "127.0.0.1-127.0.0.$sources" \
    --connect-rate "$rate" -d "$((connecting + hold))s" --no-progress >"$work/idle.log" 2>&1 &
bench_pid=$!
peak=0
while kill -0 "$bench_pid" 2>/dev/null; do
    sleep 5
    kill -0 "$bench_pid" 2>/dev/null || break
    line=$(sample)
    echo "$line"
    established=$(awk '{print $NF}' <<<"$line")
    if [ "$established" -ge "$peak" ]; then
        peak=$established
        held_rss=$(rss_kib "$broker_pid")
    fi
done
wait "$bench_pid" || true
cat "$work/idle.log"
python3 -c "print(f'broker RSS {$before} KiB before, {$held_rss} KiB with {$peak} connections held: {($held_rss - $before) / max($peak, 1):.2f} KiB per connection')"
if [ "$broker" != mosquitto ]; then
    grep -v 'accept failed' "$work/broker.log" | tail -3 || true
    echo "accept failures (out of descriptors, retried): $(grep -c 'accept failed' "$work/broker.log" || true)"
fi
