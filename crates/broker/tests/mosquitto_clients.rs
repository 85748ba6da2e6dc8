//! Interoperability with a real third-party client: Mosquitto's `mosquitto_pub` and
//! `mosquitto_sub` (Debian package `mosquitto-clients`) against the broker on an ephemeral
//! loopback port, with MQTT 3.1.1 and 5.0.

mod common;

use std::process::Stdio;

use common::{require_tool, wait_until, within, TestBroker};
use tokio::process::{Child, Command};

fn tools() {
    require_tool("mosquitto_pub", "mosquitto-clients");
    require_tool("mosquitto_sub", "mosquitto-clients");
}

fn sub(broker: &TestBroker, args: &[&str]) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_sub starts")
}

async fn publish(broker: &TestBroker, args: &[&str]) {
    let output = within(
        "mosquitto_pub",
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(args)
            .output(),
    )
    .await
    .expect("mosquitto_pub runs");
    assert!(
        output.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn lines(child: Child) -> Vec<String> {
    let output = within("mosquitto_sub output", child.wait_with_output())
        .await
        .expect("mosquitto_sub runs");
    assert!(
        output.status.success(),
        "mosquitto_sub failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_for_subscriptions(broker: &TestBroker, count: u64) {
    let b = broker.broker.clone();
    wait_until("the subscriptions are in place", move || {
        b.sys_snapshot().subscriptions >= count
    })
    .await;
}

#[tokio::test]
async fn mosquitto_v311_qos1_round_trip_through_a_wildcard() {
    tools();
    let broker = TestBroker::start().await;
    let receiver = sub(
        &broker,
        &[
            "-V",
            "311",
            "-t",
            "sensors/+/temp",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%t %q %p",
        ],
    );
    wait_for_subscriptions(&broker, 1).await;
    publish(
        &broker,
        &[
            "-V",
            "311",
            "-t",
            "sensors/k1/temp",
            "-q",
            "1",
            "-m",
            "21.5",
        ],
    )
    .await;
    assert_eq!(lines(receiver).await, ["sensors/k1/temp 1 21.5"]);
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_v5_qos2_passes_properties_through_unchanged() {
    tools();
    let broker = TestBroker::start().await;
    let receiver = sub(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "rpc/req",
            "-q",
            "2",
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%q|%P|%C|%R|%p",
        ],
    );
    wait_for_subscriptions(&broker, 1).await;
    publish(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "rpc/req",
            "-q",
            "2",
            "-m",
            "ping",
            "-D",
            "publish",
            "user-property",
            "trace",
            "42",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "rpc/resp",
        ],
    )
    .await;
    assert_eq!(
        lines(receiver).await,
        ["2|trace:42|text/plain|rpc/resp|ping"]
    );
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_retained_message_is_delivered_on_subscribe_and_deleted_by_empty_payload() {
    tools();
    let broker = TestBroker::start().await;
    publish(
        &broker,
        &["-V", "5", "-t", "state/door", "-q", "1", "-r", "-m", "open"],
    )
    .await;
    for version in ["311", "5"] {
        let receiver = sub(
            &broker,
            &[
                "-V", version, "-t", "state/#", "-C", "1", "-W", "10", "-F", "%r %t %p",
            ],
        );
        assert_eq!(lines(receiver).await, ["1 state/door open"], "-V {version}");
    }
    publish(&broker, &["-V", "311", "-t", "state/door", "-r", "-n"]).await;
    let b = broker.broker.clone();
    wait_until("the retained message is gone", move || {
        b.sys_snapshot().retained == 0
    })
    .await;
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_will_is_published_when_the_connection_is_lost() {
    tools();
    let broker = TestBroker::start().await;
    let watcher = sub(
        &broker,
        &["-V", "5", "-t", "status/dev1", "-C", "1", "-W", "10"],
    );
    let mut doomed = sub(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "cmd/dev1",
            "--will-topic",
            "status/dev1",
            "--will-payload",
            "offline",
        ],
    );
    wait_for_subscriptions(&broker, 2).await;
    // SIGKILL: the socket closes without DISCONNECT, so the will must go out (3.1.2.5).
    doomed.kill().await.expect("kill mosquitto_sub");
    assert_eq!(lines(watcher).await, ["offline"]);
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_v5_shared_subscription_spreads_messages_over_the_group() {
    tools();
    let broker = TestBroker::start().await;
    let first = sub(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "$share/workers/jobs",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    let second = sub(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "$share/workers/jobs",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    wait_for_subscriptions(&broker, 2).await;
    publish(
        &broker,
        &["-V", "5", "-t", "jobs", "-q", "1", "-m", "job-a"],
    )
    .await;
    publish(
        &broker,
        &["-V", "5", "-t", "jobs", "-q", "1", "-m", "job-b"],
    )
    .await;
    let mut got = lines(first).await;
    got.extend(lines(second).await);
    got.sort();
    assert_eq!(got, ["job-a", "job-b"], "each member gets one job");
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_persistent_session_receives_messages_queued_while_offline() {
    tools();
    let broker = TestBroker::start().await;
    for (version, id) in [("311", "persist-311"), ("5", "persist-5")] {
        // -c: no clean start; -x: session expiry (5.0 only); -E: exit once subscribed.
        let mut first = vec![
            "-V", version, "-c", "-i", id, "-q", "1", "-t", "inbox", "-E",
        ];
        if version == "5" {
            first.extend(["-x", "300"]);
        }
        let created = sub(&broker, &first);
        assert!(lines(created).await.is_empty());
        publish(
            &broker,
            &[
                "-V",
                version,
                "-t",
                "inbox",
                "-q",
                "1",
                "-m",
                "while-offline",
            ],
        )
        .await;
        let mut second = vec![
            "-V", version, "-c", "-i", id, "-q", "1", "-t", "inbox", "-C", "1", "-W", "10",
        ];
        if version == "5" {
            second.extend(["-x", "300"]);
        }
        assert_eq!(
            lines(sub(&broker, &second)).await,
            ["while-offline"],
            "-V {version}"
        );
    }
    broker.stop().await;
}
