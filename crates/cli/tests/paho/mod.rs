//! Runs the paho-mqtt scenarios of this directory (`run.py` and the modules it loads) against
//! a real `mquictt broker` process, over MQTT/TCP and MQTT/WebSocket, and fails the test with
//! the scenario's own explanation when the broker misbehaves.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{require_paho, wait_with_timeout, BrokerProcess};

/// Longest a scenario may run. The slowest one waits out a 2 s will delay on each transport;
/// everything else answers in well under a second on loopback.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// A broker listening on MQTT/TCP (listener 0) and MQTT/WebSocket at `/mqtt` (listener 1).
pub fn start_broker() -> BrokerProcess {
    require_paho();
    BrokerProcess::start(&["tcp://127.0.0.1:0", "ws://127.0.0.1:0/mqtt"], &[])
}

/// A broker like [`start_broker`] whose configuration file holds `config_toml`; the file's
/// directory is returned with it and must live as long as the broker.
pub fn start_broker_with_config(config_toml: &str) -> (BrokerProcess, tempfile::TempDir) {
    require_paho();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, config_toml).expect("write the config file");
    let config = path.to_str().expect("temp paths are UTF-8");
    let broker = BrokerProcess::start(
        &["tcp://127.0.0.1:0", "ws://127.0.0.1:0/mqtt"],
        &["--config", config],
    );
    (broker, dir)
}

/// Plays `scenario` once over TCP and once over WebSocket against `broker`.
pub fn play_over_both_transports(broker: &BrokerProcess, scenario: &str) {
    play(scenario, "tcp", broker.port(0));
    play(scenario, "websockets", broker.port(1));
}

/// Plays `scenario` over `transport` ("tcp" or "websockets") to `port` on loopback.
pub fn play(scenario: &str, transport: &str, port: u16) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/paho/run.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(scenario)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--transport", transport])
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let status = wait_with_timeout(&mut child, SCENARIO_TIMEOUT);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        // The scenario has exited (or was killed), so this read ends.
        let _ = pipe.read_to_string(&mut stderr);
    }
    match status {
        Some(status) => assert!(
            status.success(),
            "paho scenario {scenario} over {transport} failed ({status}):\n{stderr}"
        ),
        None => panic!(
            "paho scenario {scenario} over {transport} did not finish within \
             {SCENARIO_TIMEOUT:?}:\n{stderr}"
        ),
    }
}
