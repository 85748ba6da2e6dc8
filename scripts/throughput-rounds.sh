#!/usr/bin/env bash
# Single-stream throughput of builds of our broker side by side, in rounds alternating between
# them: each round starts each build's broker afresh (a TCP and a QUIC listener, messages in
# memory, rate limits lifted) and runs one publisher/subscriber pair at full speed over TCP,
# over QUIC with the loopback datagram ceiling on both ends, over QUIC without it, and, when
# asked (MODES), over TLS: encrypted like QUIC, where plain TCP is not. Prints
# the messages delivered per second and the broker's CPU time per message of every run, and
# the medians over the rounds. For the QUIC single-stream goal (QUIC / TCP of one build) and
# for comparing two builds (CPU per message moves less with the machine's load than msg/s).
#
#   scripts/throughput-rounds.sh ROUNDS LABEL=PATH[ BROKER-OPTION...]...
#
# e.g. scripts/throughput-rounds.sh 3 before=/tmp/mquictt-before after=target/release/mquictt
#      scripts/throughput-rounds.sh 3 two=target/release/mquictt "one=target/release/mquictt --threads 1"
# Words after PATH are passed to `mquictt broker`. A QUIC run also shows which of the
# listener's threads the pair's two connections landed on, in the order they arrived ("on
# threads 0,1"): with both on one thread a pair runs faster (docs/quic.md, *Threads*); "-"
# when the broker serves QUIC on its worker threads or does not log it.
# Environment: QOS (0), SIZE payload bytes (1024), DURATION (4s),
# MODES (tcp quic-ceiling quic; tls also known).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
rounds=$1
shift
# shellcheck source=broker-run.sh
. scripts/broker-run.sh
qos=${QOS:-0} size=${SIZE:-1024} duration=${DURATION:-4s} modes=${MODES:-tcp quic-ceiling quic}
check_entries "$@"
ceiling=6500

"$bench" cert ca --out "$work" >/dev/null
"$bench" cert server --ca "$work" --name 127.0.0.1 --out "$work" >/dev/null

free_udp_port() {
    python3 -c 'import socket; s = socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for round in $(seq "$rounds"); do
    for entry in "$@"; do
        label=${entry%%=*}
        tcp_port=$(free_port) tls_port=$(free_port) quic_port=$(free_udp_port)
        printf 'storage = "memory"\n[limits]\npublish_rate = 0\nconnection_rate = 0\n[[listener]]\nurl = "tcp://127.0.0.1:%s"\n[[listener]]\nurl = "quic://127.0.0.1:%s"\ncert = "%s/server.pem"\nkey = "%s/server.key"\nquic_max_udp_payload = %s\n[[listener]]\nurl = "tls://127.0.0.1:%s"\ncert = "%s/server.pem"\nkey = "%s/server.key"\n' \
            "$tcp_port" "$quic_port" "$work" "$work" "$ceiling" "$tls_port" "$work" "$work" >"$work/broker.toml"
        # Connection placement is logged at debug level by the transport crate only.
        launch_mquictt "${entry#*=} --log info,mquictt_transport=debug"
        wait_for_port "$tcp_port"
        line="round $round $label:"
        for mode in $modes; do
            case $mode in
                tcp) target=(-u "mqtt://127.0.0.1:$tcp_port") ;;
                quic-ceiling) target=(-u "quic://127.0.0.1:$quic_port" --cafile "$work/ca.pem" --quic-max-udp-payload "$ceiling") ;;
                quic) target=(-u "quic://127.0.0.1:$quic_port" --cafile "$work/ca.pem") ;;
                tls) target=(-u "mqtts://127.0.0.1:$tls_port" --cafile "$work/ca.pem") ;;
                *) echo "unknown mode $mode (tcp, quic-ceiling, quic, tls)" >&2; exit 2 ;;
            esac
            logged=$(wc -l <"$work/broker.log")
            before=$(cpu_ticks_total "$broker_pid")
            out=$("$bench" bench p2p "${target[@]}" -c 1 -q "$qos" -s "$size" -d "$duration" \
                --mqtt-version 3.1.1 --no-progress 2>&1)
            after=$(cpu_ticks_total "$broker_pid")
            received=$(awk '/received/ {print $2; exit}' <<<"$out")
            rate=$(grep -oE '= [0-9]+ msg/s' <<<"$out" | head -1 | tr -dc 0-9)
            us=$(us_per_message "$before" "$after" "$received" 2)
            line="$line  $mode $rate msg/s $us us/msg"
            if [[ $mode == quic* ]]; then
                # Nothing logged (QUIC on the worker threads, an older build) is no error.
                threads=$(tail -n +"$((logged + 1))" "$work/broker.log" |
                    grep -o 'QUIC connection arrived.*thread=[0-9]*' |
                    grep -o '[0-9]*$' | paste -sd, -) || true
                line="$line (on threads ${threads:--})"
            fi
            echo "$round $label $mode $rate $us" >>"$work/results"
        done
        stop_broker
        echo "$line"
    done
done

python3 - "$work/results" <<'EOF'
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    _, label, mode, rate, us = line.split()
    runs[(label, mode)].append((int(rate), float(us)))
print("median over the rounds:")
for (label, mode), values in runs.items():
    rate = statistics.median(v[0] for v in values)
    us = statistics.median(v[1] for v in values)
    print(f"  {label:12} {mode:13} {rate:>9.0f} msg/s  {us:5.2f} us broker CPU per message")
labels = dict.fromkeys(label for label, _ in runs)
for label in labels:
    tcp = runs.get((label, "tcp"))
    for mode in ("quic-ceiling", "quic", "tls"):
        quic = runs.get((label, mode))
        if tcp and quic:
            ratios = [q[0] / t[0] for q, t in zip(quic, tcp) if t[0]]
            print(f"  {label}: {mode} / tcp {statistics.median(ratios):.2f}x "
                  f"(per round {', '.join(f'{r:.2f}' for r in ratios)})")
EOF
