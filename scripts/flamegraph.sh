#!/usr/bin/env bash
# A flame graph of one broker's CPU time, user space and kernel, while `mquictt bench p2p`
# runs against it at a fixed rate (10 pairs, 1,000 msg/s each, QoS 0, 64 B, MQTT 3.1.1), and a
# summary of where the time went: the system calls the kernel's time was spent in, and user
# space split into our code, Tokio, the allocator and the rest.
#
#   scripts/flamegraph.sh BROKER OUT.svg
#
# BROKER is a path to an `mquictt` binary or `mosquitto`. Needs perf (Debian: `apt-get install
# linux-perf`) and inferno (`cargo install inferno`). Environment: RATE per publisher (1000),
# QOS (0), RECORD seconds of recording (3), taken after the first second of the run.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
broker=$1 svg=$2
for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (see the comment at the top)" >&2; exit 1; }
done
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
rate=${RATE:-1000} qos=${QOS:-0} seconds=${RECORD:-3}

port=$(free_port)
start_broker "$broker" "$port"
"$bench" bench p2p -u "mqtt://127.0.0.1:$port" -c 10 -r "$rate" -q "$qos" -s 64 -d "$((seconds + 2))s" \
    --drain 1s --mqtt-version 3.1.1 --no-progress >"$work/bench.out" 2>&1 &
load=$!
sleep 1
# DWARF unwinding: release builds keep no frame pointers.
perf record -q -F 2999 --call-graph dwarf,16384 -o "$work/perf.data" -p "$broker_pid" -- sleep "$seconds" 2>/dev/null
wait "$load"
grep -E '^ +latency' "$work/bench.out" || true
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
[ -n "${KEEP_FOLDED:-}" ] && cp "$work/folded" "$KEEP_FOLDED"
inferno-flamegraph --minwidth 0.5 --title "$(basename "$broker"), 10 pairs x $rate msg/s, QoS $qos" \
    <"$work/folded" >"$svg"
echo "flame graph: $svg"

python3 - "$work/folded" <<'EOF'
import collections
import re
import sys

total = 0
shares = collections.Counter()
kernel_entry = re.compile(r"(entry_SYSCALL_64|asm_|ret_from_fork|common_interrupt|sysvec_)")
# The frame that names the system call; which one is there depends on the kernel's inlining.
SYSCALL = re.compile(r"^(?:__x64_sys_|__do_sys_|ksys_)(\w+)$")
# Mosquitto writes and reads where we send and receive: one row each.
SAME = {"write": "sendto, write", "sendto": "sendto, write", "read": "recvfrom, read", "recvfrom": "recvfrom, read"}
for line in open(sys.argv[1]):
    stack, count = line.rsplit(" ", 1)
    count = int(count)
    total += count
    frames = stack.split(";")
    entry = next((i for i, f in enumerate(frames) if kernel_entry.match(f)), None)
    if entry is not None:
        call = next((m.group(1) for f in frames[entry:] if (m := SYSCALL.match(f))), None)
        what = "kernel: " + (SAME.get(call, call) if call else "interrupts, returning to user space")
    else:
        leaf = frames[-1]
        if re.search(r"malloc|free|_int_", leaf):
            what = "user: allocator"
        elif re.search(r"mem(cpy|move|cmp|set)", leaf):
            what = "user: memcpy, memcmp"
        elif "tokio" in leaf or "mio::" in leaf:
            what = "user: Tokio, mio"
        elif "mquictt" in leaf:
            what = "user: mquictt"
        else:
            what = "user: the rest (std, libc, other crates; all of Mosquitto)"
    shares[what] += count
# perf's software clock counts nanoseconds of CPU time.
print(f"the broker's CPU time over the recording: {total / 1e9:.2f} s, of which:")
for what, count in shares.most_common(12):
    print(f"  {100 * count / total:5.1f} %  {what}")
EOF
