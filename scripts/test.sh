#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh machine: installs the third-party MQTT
# clients the interoperability tests drive, then format, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# mosquitto_pub/mosquitto_sub (and the mosquitto broker, for side-by-side benchmarks).
if ! command -v mosquitto_sub >/dev/null || ! command -v mosquitto >/dev/null; then
    echo "== installing mosquitto and mosquitto-clients (Debian)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

# A TrueType font for the lab's charts.
if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    echo "== installing fonts-dejavu-core (Debian)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
fi

# paho-mqtt, the Python client used by the MQTT 5 interoperability tests.
if ! python3 -c 'import paho.mqtt' 2>/dev/null; then
    echo "== installing paho-mqtt (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'paho-mqtt>=2,<3'
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== feature matrix: each transport alone, and the client-only mquictt"
# Checked, not built, to stay fast; warnings are errors because an import used only by a
# transport that is left out shows up only here.
for features in "" tls ws quic cert-gen; do
    cargo clippy -q -p mquictt-transport --locked --no-default-features --features "$features" -- -D warnings
done
for features in "" tls ws quic; do
    cargo clippy -q -p mquictt-client --locked --no-default-features --features "$features" -- -D warnings
    cargo clippy -q -p mquictt --locked --no-default-features --features "$features" -- -D warnings
done
# The device build of docs/benchmarks.md ("Footprint"): QUIC only, no TLS 1.2, no debug logs.
cargo clippy -q -p mquictt --locked --no-default-features --features quic,max-log-info -- -D warnings
# A transport left out of the build is refused by name; only such a build runs those tests.
cargo test -q -p mquictt-transport --locked --no-default-features --lib
client_tree=$(cargo tree -p mquictt --locked --no-default-features -e normal)
if grep -q mquictt-broker <<<"$client_tree"; then
    echo "the client-only mquictt depends on mquictt-broker" >&2
    exit 1
fi

echo "== conformance table"
python3 scripts/check-conformance.py

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked
fi
