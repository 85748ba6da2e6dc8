//! The `mquictt broker` command as a user meets it: real processes, real sockets, third-party
//! clients (mosquitto_pub/sub from Debian, paho-mqtt from PyPI), config errors and signals.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{require_paho, require_tool, wait_with_timeout, BrokerProcess};

/// Starts `mosquitto_sub` for one message and returns the child.
fn mosquitto_sub(port: u16, version: &str, topic: &str) -> std::process::Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-t", topic, "-C", "1", "-W", "20", "-q", "1", "-v"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mosquitto_sub")
}

fn mosquitto_pub_retained(port: u16, version: &str, topic: &str, message: &str) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-t", topic, "-m", message, "-q", "1", "-r"])
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed: {status}");
}

fn output_of(child: std::process::Child) -> String {
    let output = child.wait_with_output().expect("subscriber output");
    assert!(output.status.success(), "subscriber failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn mosquitto_clients_meet_over_tcp_in_both_protocol_versions() {
    require_tool("mosquitto_sub", "apt-get install mosquitto-clients");
    let broker = BrokerProcess::start(&["tcp://127.0.0.1:0"], &[]);
    for version in ["311", "5"] {
        let topic = format!("cli/{version}/reading");
        // A retained message is delivered on subscribe, so the order of start-up cannot lose it.
        mosquitto_pub_retained(broker.port(0), version, &topic, "21.5");
        let sub = mosquitto_sub(broker.port(0), version, &format!("cli/{version}/+"));
        assert_eq!(output_of(sub), format!("{topic} 21.5"));
    }
}

#[test]
fn paho_over_websocket_reaches_mosquitto_sub_over_tcp() {
    require_tool("mosquitto_sub", "apt-get install mosquitto-clients");
    require_paho();
    let broker = BrokerProcess::start(&["tcp://127.0.0.1:0", "ws://127.0.0.1:0/mqtt"], &[]);
    let script = format!(
        r#"
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ws-pub", transport="websockets",
                protocol=mqtt.MQTTv5)
c.ws_set_options(path="/mqtt")
c.connect("127.0.0.1", {port})
c.loop_start()
info = c.publish("cross/ws", b"from-websocket", qos=1, retain=True)
info.wait_for_publish(timeout=20)
assert info.is_published()
c.disconnect()
c.loop_stop()
"#,
        port = broker.port(1)
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("run python3");
    assert!(status.success(), "paho publisher failed");
    let sub = mosquitto_sub(broker.port(0), "5", "cross/#");
    assert_eq!(output_of(sub), "cross/ws from-websocket");
}

#[test]
fn threads_sets_the_worker_threads_and_refuses_zero() {
    require_tool("mosquitto_sub", "apt-get install mosquitto-clients");
    let broker = BrokerProcess::start(&["tcp://127.0.0.1:0"], &["--threads", "1"]);
    assert_eq!(broker.line_after("worker threads: "), "1");
    // One thread serves publisher and subscriber alike.
    mosquitto_pub_retained(broker.port(0), "5", "threads/one", "on");
    let sub = mosquitto_sub(broker.port(0), "5", "threads/+");
    assert_eq!(output_of(sub), "threads/one on");

    let stderr = run_broker_expecting_failure(&["--threads", "0"]);
    assert!(stderr.contains("--threads"), "{stderr}");
    assert!(stderr.contains("1..=1024"), "{stderr}");
}

#[test]
fn quic_threads_default_to_the_worker_threads_and_can_be_set() {
    let broker = BrokerProcess::start(&["quic://127.0.0.1:0"], &["--threads", "3"]);
    assert!(
        broker
            .line_after("QUIC connections of ")
            .ends_with(": on 3 threads of their own"),
        "one QUIC thread per worker thread by default"
    );
    let broker = BrokerProcess::start(&["quic://127.0.0.1:0"], &["--quic-threads", "1"]);
    assert!(broker
        .line_after("QUIC connections of ")
        .ends_with(": on a thread of their own"));
    let broker = BrokerProcess::start(&["quic://127.0.0.1:0"], &["--quic-threads", "0"]);
    assert!(broker
        .line_after("QUIC connections of ")
        .ends_with(": on the worker threads"));
    // More worker threads than a listener may have: it gets the most it may.
    let broker = BrokerProcess::start(&["quic://127.0.0.1:0"], &["--threads", "300"]);
    assert!(broker
        .line_after("QUIC connections of ")
        .ends_with(": on 256 threads of their own"));
    let stderr = run_broker_expecting_failure(&["--quic-threads", "257"]);
    assert!(stderr.contains("--quic-threads"), "{stderr}");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let broker = BrokerProcess::start(&["tcp://127.0.0.1:0"], &[]);
    let status = broker.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_closed_standard_output_does_not_end_the_broker() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mquictt"))
        .args(["broker", "--listen", "tcp://127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read up to the last line printed at start, then close the pipe, as `| head` would.
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert!(lines.any(|line| line.unwrap().starts_with("worker threads: ")));
    drop(lines);
    // The shutdown prints "shutting down" into the closed pipe.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exited");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
}

fn run_broker_expecting_failure(args: &[&str]) -> String {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mquictt"))
        .arg("broker")
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exited");
    assert!(
        !status.success(),
        "broker started although it should refuse"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    stderr
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "[limits]\nconnect_timout = \"5s\"").unwrap();
    let stderr = run_broker_expecting_failure(&["--config", path.to_str().unwrap()]);
    assert!(stderr.contains("connect_timout"), "{stderr}");
    assert!(stderr.contains("broker.toml"), "{stderr}");

    std::fs::write(&path, "[mqtt]\nmaximum_qos = 7\n").unwrap();
    let stderr = run_broker_expecting_failure(&["--config", path.to_str().unwrap()]);
    assert!(stderr.contains("mqtt.maximum_qos"), "{stderr}");

    std::fs::write(
        &path,
        "[[listener]]\nurl = \"quic://127.0.0.1:0\"\nquic_max_streams = 0\n",
    )
    .unwrap();
    let stderr = run_broker_expecting_failure(&["--config", path.to_str().unwrap()]);
    assert!(stderr.contains("listener.quic_max_streams"), "{stderr}");
    assert!(stderr.contains("broker.toml"), "{stderr}");

    for (line, key) in [
        (
            "quic_max_udp_payload = 1000",
            "listener.quic_max_udp_payload",
        ),
        ("quic_socket_buffer = 0", "listener.quic_socket_buffer"),
        ("quic_threads = 257", "listener.quic_threads"),
    ] {
        std::fs::write(
            &path,
            format!("[[listener]]\nurl = \"quic://127.0.0.1:0\"\n{line}\n"),
        )
        .unwrap();
        let stderr = run_broker_expecting_failure(&["--config", path.to_str().unwrap()]);
        assert!(stderr.contains(key), "{stderr}");
        assert!(stderr.contains("broker.toml"), "{stderr}");
    }
}

#[test]
fn non_loopback_listener_without_authentication_is_refused() {
    let stderr = run_broker_expecting_failure(&["--listen", "tcp://0.0.0.0:0"]);
    assert!(stderr.contains("allow_anonymous"), "{stderr}");
}

#[test]
fn bad_listener_url_says_what_is_expected() {
    let stderr = run_broker_expecting_failure(&["--listen", "gopher://127.0.0.1:1"]);
    assert!(stderr.contains("gopher"), "{stderr}");
    assert!(stderr.contains("tcp://127.0.0.1:1883"), "{stderr}");
}

#[test]
fn prometheus_metrics_are_served_on_the_configured_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "[[listener]]\nurl = \"tcp://127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let broker = BrokerProcess::start_with(&["--config", config.to_str().unwrap()], 1);
    // "metrics on http://127.0.0.1:PORT/metrics"
    let url = broker.line_after("metrics on http://");
    let addr = url.trim_end_matches("/metrics").to_string();
    let scrape = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect to the endpoint");
        write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        response
    };
    let response = scrape("/metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("mquictt_"),
        "no mquictt_ metrics in {response}"
    );
    assert!(scrape("/other").starts_with("HTTP/1.1 404"));
}

/// Starts `mquictt --log LEVEL broker` on an ephemeral TCP port with its standard error in a
/// file, lets one client connect and leave, stops the broker and returns what it logged.
fn broker_log_at(level: &str) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;

    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mquictt"))
        .args([
            "--log",
            level,
            "broker",
            "--listen",
            "tcp://127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start the mquictt binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.strip_prefix("listening on ")?;
            let (_, addr) = rest.split_once(" (")?;
            addr.trim_end_matches(')')
                .parse::<std::net::SocketAddr>()
                .ok()
        })
        .expect("broker printed its listener");
    let mut client = TcpStream::connect(addr).expect("connect");
    // CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client identifier "log-probe".
    let connect = [
        0x10, 21, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 9, b'l', b'o', b'g', b'-', b'p',
        b'r', b'o', b'b', b'e',
    ];
    client.write_all(&connect).expect("send CONNECT");
    let mut connack = [0u8; 4];
    client.read_exact(&mut connack).expect("read CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepting the client");
    client.write_all(&[0xE0, 0]).expect("send DISCONNECT");
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exited");
    std::fs::read_to_string(&log_path).expect("read the log")
}

#[test]
fn log_debug_shows_debug_events_and_log_info_hides_them() {
    let debug = broker_log_at("debug");
    assert!(
        debug.contains("DEBUG")
            && debug.contains("client connected")
            && debug.contains("log-probe"),
        "`--log debug` should log the client's arrival:\n{debug}"
    );
    let info = broker_log_at("info");
    assert!(
        !info.contains("DEBUG"),
        "`--log info` should not log debug events:\n{info}"
    );
}
