//! `mquictt pub` and `mquictt sub` against the real broker over every transport: every
//! subscriber transport receives what was published over every publisher transport, and the
//! commands interoperate with mosquitto_pub over TCP and TLS.

mod common;

use std::process::Command;

use common::{assert_success, mquictt, require_tool, BrokerProcess};

const LISTENERS: [&str; 5] = [
    "tcp://127.0.0.1:0",
    "ws://127.0.0.1:0/mqtt",
    "tls://127.0.0.1:0",
    "wss://127.0.0.1:0/mqtt",
    "quic://127.0.0.1:0",
];

/// The URL a client uses for the n-th listener of the broker.
fn client_url(broker: &BrokerProcess, n: usize) -> String {
    let port = broker.port(n);
    match n {
        0 => format!("mqtt://127.0.0.1:{port}"),
        1 => format!("ws://127.0.0.1:{port}/mqtt"),
        2 => format!("mqtts://127.0.0.1:{port}"),
        3 => format!("wss://127.0.0.1:{port}/mqtt"),
        _ => format!("quic://127.0.0.1:{port}"),
    }
}

fn ca_file(broker: &BrokerProcess) -> String {
    broker
        .data_dir
        .path()
        .join("certs/ca.pem")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_transport_pair_delivers() {
    let broker = BrokerProcess::start(&LISTENERS, &[]);
    let ca = ca_file(&broker);
    let cwd = broker.data_dir.path();
    let names = ["tcp", "ws", "tls", "wss", "quic"];
    // Retained messages are delivered on subscribe, so each subscriber sees every publisher's
    // message without racing the publishers.
    for (n, name) in names.iter().enumerate() {
        let url = client_url(&broker, n);
        let topic = format!("pairs/{name}");
        let output = mquictt(
            &[
                "pub", "--url", &url, "--cafile", &ca, "-t", &topic, "-m", name, "-q", "1", "-r",
            ],
            cwd,
        );
        assert_success(&output, &format!("pub over {name}"));
    }
    for (n, name) in names.iter().enumerate() {
        let url = client_url(&broker, n);
        let output = mquictt(
            &[
                "sub", "--url", &url, "--cafile", &ca, "-t", "pairs/#", "-q", "1", "-C", "5", "-v",
            ],
            cwd,
        );
        assert_success(&output, &format!("sub over {name}"));
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        let mut expected: Vec<String> = names.iter().map(|p| format!("pairs/{p} {p}")).collect();
        expected.sort();
        assert_eq!(lines, expected, "subscriber over {name}");
    }
}

#[test]
fn mosquitto_pub_over_tcp_and_tls_reaches_mquictt_sub_over_quic() {
    require_tool("mosquitto_pub", "apt-get install mosquitto-clients");
    let broker = BrokerProcess::start(
        &[
            "tcp://127.0.0.1:0",
            "tls://127.0.0.1:0",
            "quic://127.0.0.1:0",
        ],
        &[],
    );
    let ca = ca_file(&broker);
    for (port, tls) in [(broker.port(0), false), (broker.port(1), true)] {
        let topic = if tls { "sensors/tls" } else { "sensors/tcp" };
        let mut command = Command::new("mosquitto_pub");
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-m",
            "1",
            "-r",
        ]);
        if tls {
            command.args(["--cafile", &ca]);
        }
        let status = command.status().expect("run mosquitto_pub");
        assert!(status.success(), "mosquitto_pub (tls: {tls}) failed");
    }
    let url = format!("quic://127.0.0.1:{}", broker.port(2));
    let output = mquictt(
        &[
            "sub",
            "--url",
            &url,
            "--cafile",
            &ca,
            "-t",
            "sensors/#",
            "-C",
            "2",
            "-v",
        ],
        broker.data_dir.path(),
    );
    assert_success(&output, "mquictt sub over QUIC");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["sensors/tcp 1", "sensors/tls 1"]);
}

#[test]
fn mosquitto_sub_receives_from_mquictt_pub_over_quic() {
    require_tool("mosquitto_sub", "apt-get install mosquitto-clients");
    let broker = BrokerProcess::start(&["tcp://127.0.0.1:0", "quic://127.0.0.1:0"], &[]);
    let ca = ca_file(&broker);
    let url = format!("quic://127.0.0.1:{}", broker.port(1));
    let output = mquictt(
        &[
            "pub",
            "--url",
            &url,
            "--cafile",
            &ca,
            "-t",
            "q/x",
            "-m",
            "over-quic",
            "-q",
            "2",
            "-r",
        ],
        broker.data_dir.path(),
    );
    assert_success(&output, "mquictt pub over QUIC");
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port(0).to_string()])
        .args(["-t", "q/#", "-C", "1", "-W", "20", "-v"])
        .output()
        .expect("run mosquitto_sub");
    assert!(sub.status.success(), "mosquitto_sub failed: {sub:?}");
    assert_eq!(String::from_utf8_lossy(&sub.stdout).trim(), "q/x over-quic");
}

#[test]
fn quic_datagram_settings_of_broker_and_clients_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "[[listener]]\nurl = \"quic://127.0.0.1:0\"\nquic_max_udp_payload = 6500\n\
         quic_socket_buffer = 1048576\n",
    )
    .unwrap();
    let broker = BrokerProcess::start_with(&["--config", config.to_str().unwrap()], 1);
    let ca = ca_file(&broker);
    let url = format!("quic://127.0.0.1:{}", broker.port(0));
    let datagrams = [
        "--quic-max-udp-payload",
        "6500",
        "--quic-socket-buffer",
        "1048576",
    ];
    // A message larger than an Ethernet datagram, retained so the subscriber needs no race.
    let message = "x".repeat(20_000);
    let mut args = vec![
        "pub", "--url", &url, "--cafile", &ca, "-t", "big", "-m", &message, "-q", "1", "-r",
    ];
    args.extend(datagrams);
    assert_success(&mquictt(&args, dir.path()), "pub with datagram flags");
    let mut args = vec![
        "sub", "--url", &url, "--cafile", &ca, "-t", "big", "-q", "1", "-C", "1",
    ];
    args.extend(datagrams);
    let output = mquictt(&args, dir.path());
    assert_success(&output, "sub with datagram flags");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), message);
}

#[test]
fn out_of_range_quic_datagram_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        ("--quic-max-udp-payload", "1000", "1200..=65527"),
        ("--quic-socket-buffer", "0", "65536..=268435456"),
    ] {
        let output = mquictt(
            &[
                "pub",
                "--url",
                "quic://127.0.0.1:1",
                "-t",
                "a",
                "-m",
                "b",
                flag,
                value,
            ],
            dir.path(),
        );
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(expected),
            "{stderr}"
        );
    }
}

#[test]
fn unreachable_broker_error_says_what_to_do() {
    // Port 1 on loopback is never an MQTT broker.
    let dir = tempfile::tempdir().unwrap();
    let output = mquictt(
        &["pub", "--url", "mqtt://127.0.0.1:1", "-t", "a", "-m", "b"],
        dir.path(),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[test]
fn paho_over_tls_and_wss_reaches_mquictt_sub_over_quic() {
    common::require_paho();
    let broker = BrokerProcess::start(
        &[
            "tls://127.0.0.1:0",
            "wss://127.0.0.1:0/mqtt",
            "quic://127.0.0.1:0",
        ],
        &[],
    );
    let ca = ca_file(&broker);
    for (n, transport, topic) in [(0, "tcp", "paho/tls"), (1, "websockets", "paho/wss")] {
        let script = format!(
            r#"
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-{transport}",
                transport="{transport}", protocol=mqtt.MQTTv5)
c.tls_set(ca_certs={ca:?})
if "{transport}" == "websockets":
    c.ws_set_options(path="/mqtt")
c.connect("127.0.0.1", {port})
c.loop_start()
info = c.publish("{topic}", b"secure", qos=1, retain=True)
info.wait_for_publish(timeout=20)
assert info.is_published()
c.disconnect()
c.loop_stop()
"#,
            port = broker.port(n),
        );
        let status = Command::new("python3")
            .args(["-c", &script])
            .status()
            .expect("run python3");
        assert!(status.success(), "paho over {transport} with TLS failed");
    }
    let url = format!("quic://127.0.0.1:{}", broker.port(2));
    let output = mquictt(
        &[
            "sub", "--url", &url, "--cafile", &ca, "-t", "paho/#", "-C", "2", "-v",
        ],
        broker.data_dir.path(),
    );
    assert_success(&output, "mquictt sub over QUIC");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["paho/tls secure", "paho/wss secure"]);
}
