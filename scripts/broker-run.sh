# Sourced by the measurement scripts: the load generator's path, a work directory removed on
# exit with the broker under test stopped, a free loopback port, each broker's config, and
# starting and stopping the broker under test, and its CPU time.

bench=${CARGO_TARGET_DIR:-target}/release/mquictt
[ -x "$bench" ] || { echo "build first: cargo build --release" >&2; exit 1; }

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

# Waits until something accepts connections on 127.0.0.1:$1 (at most 20 s).
wait_for_port() {
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return
        sleep 0.2
    done
}

# Mosquitto's config of `mquictt bench compare`, listening on 127.0.0.1:$1, to $work/mosquitto.conf.
mosquitto_config() {
    printf 'allow_anonymous true\npersistence false\nset_tcp_nodelay true\nlistener %s 127.0.0.1\nmax_connections -1\n' \
        "$1" >"$work/mosquitto.conf"
    [ "$(id -u)" -eq 0 ] && echo "user root" >>"$work/mosquitto.conf"
}

# Our broker's config with the rate limits lifted, listening on 127.0.0.1:$1, to $work/broker.toml;
# $EXTRA_LIMITS, if set, is added to its `[limits]` table.
mquictt_config() {
    printf '[[listener]]\nurl = "tcp://127.0.0.1:%s"\n[limits]\npublish_rate = 0\nconnection_rate = 0\n%s\n' \
        "$1" "${EXTRA_LIMITS:-}" >"$work/broker.toml"
}

# Starts `mquictt broker` with the config already in $work/broker.toml and a fresh data
# directory: $1 is the path of an `mquictt` binary followed by options for `mquictt broker`, as
# one word ("target/release/mquictt --threads 1"), under the command in the remaining arguments
# if any (valgrind, say); sets broker_pid.
launch_mquictt() {
    local command
    read -r -a command <<<"$1"
    shift
    rm -rf "$work/data"
    "$@" "${command[0]}" broker --data-dir "$work/data" --config "$work/broker.toml" "${command[@]:1}" \
        >"$work/broker.log" 2>&1 &
    broker_pid=$!
}

# Starts BROKER ($1: `mosquitto`, or an `mquictt` binary with options as `launch_mquictt` takes
# it) on 127.0.0.1:$2 with the config above, under the command in the remaining arguments if
# any; sets broker_pid and waits until it accepts connections.
start_broker() {
    local broker=$1 port=$2
    shift 2
    if [ "$broker" = mosquitto ]; then
        mosquitto_config "$port"
        "$@" mosquitto -c "$work/mosquitto.conf" >"$work/broker.log" 2>&1 &
        broker_pid=$!
    else
        mquictt_config "$port"
        launch_mquictt "$broker" "$@"
    fi
    wait_for_port "$port"
}

# Stops the broker `start_broker` started.
stop_broker() {
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
}

# The CPU time process $1 has used, in clock ticks (hundredths of a second): user and system.
cpu_ticks() {
    awk '{print $14 " " $15}' "/proc/$1/stat"
}

# The same, user and system together.
cpu_ticks_total() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# Exits when an entry (LABEL=PATH[ BROKER-OPTION...]) names no executable mquictt binary.
check_entries() {
    local entry binary
    for entry in "$@"; do
        binary=${entry#*=}
        binary=${binary%% *}
        [ -x "$binary" ] || { echo "no mquictt binary at $binary (entries are LABEL=PATH)" >&2; exit 2; }
    done
}

# Microseconds of CPU per message, rounded to $4 digits, from the clock ticks before ($1) and
# after ($2) and the messages received ($3): ticks * 10,000 / messages.
us_per_message() {
    python3 -c "print(round(($2 - $1) * 10000 / max($3, 1), $4))"
}
