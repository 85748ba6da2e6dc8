//! Conformance of sessions across connections: Session Present, queued messages while
//! offline, redelivery with DUP, exactly-once QoS 2 across reconnects, Clean Start, session
//! expiry, the bounded offline queue, and will messages with their delay. Test names carry the
//! spec's conformance ids.

mod common;

use mquictt_protocol::PropertySet;
use std::time::Duration;

use common::client::{connect_packet, pid, publish, will, TestClient};
use common::TestBroker;
use mquictt_broker::BrokerConfig;
use mquictt_protocol::{
    Connect, Disconnect, Packet, Properties, ProtocolVersion, PubAck, QoS, ReasonCode,
    SubscriptionOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions::with_qos(q)
}

/// A 5.0 CONNECT whose session outlives the connection by `expiry` seconds.
fn persistent(client_id: &str, clean_start: bool, expiry: u32) -> Connect {
    let mut connect = connect_packet(V5, client_id, clean_start);
    connect.properties.session_expiry_interval = Some(expiry);
    connect
}

async fn disconnect_normally(mut client: TestClient) {
    client
        .send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
        .await;
    assert_eq!(client.until_closed().await, Vec::new());
}

#[tokio::test]
async fn mqtt_3_2_2_2_session_present_and_messages_queued_while_offline() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let connect = if version.is_v5() {
            persistent("device", false, 300)
        } else {
            connect_packet(V311, "device", false)
        };
        let (mut device, ack) = TestClient::connect_with(broker.addr, connect.clone()).await;
        assert!(!ack.session_present, "{version}: first connection");
        device.subscribe("cmd", qos(QoS::AtLeastOnce), 1).await;
        disconnect_normally(device).await;
        let (mut publisher, _) = TestClient::connect(broker.addr, version, "pub", true).await;
        publisher
            .publish(publish("cmd", b"while-away", QoS::AtLeastOnce, 1))
            .await;
        publisher
            .publish(publish("cmd", b"qos0-lost", QoS::AtMostOnce, 0))
            .await;
        let (mut device, ack) = TestClient::connect_with(broker.addr, connect).await;
        assert!(ack.session_present, "{version}: [MQTT-3.2.2-2]");
        let got = device.expect_publish().await;
        assert_eq!(&got.payload[..], b"while-away");
        device.ack(&got).await;
        device.expect_nothing().await;
        // Clean up so the next version starts fresh.
        let mut clean = connect_packet(version, "device", true);
        clean.properties.session_expiry_interval = None;
        drop(device);
        TestClient::connect_with(broker.addr, clean).await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacknowledged_messages_are_resent_with_dup_on_resume() {
    let broker = TestBroker::start().await;
    let (mut device, _) = TestClient::connect_with(broker.addr, persistent("dev", true, 300)).await;
    device.subscribe("q1", qos(QoS::AtLeastOnce), 1).await;
    device.subscribe("q2", qos(QoS::ExactlyOnce), 2).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    publisher
        .publish(publish("q1", b"one", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .publish(publish("q2", b"two", QoS::ExactlyOnce, 2))
        .await;
    let first = device.expect_publish().await;
    let second = device.expect_publish().await;
    assert!(!first.dup && !second.dup);
    // Lost without acknowledging either.
    drop(device);
    let (mut device, ack) =
        TestClient::connect_with(broker.addr, persistent("dev", false, 300)).await;
    assert!(ack.session_present);
    let again1 = device.expect_publish().await;
    let again2 = device.expect_publish().await;
    assert!(again1.dup && again2.dup, "[MQTT-3.3.1-1]");
    assert_eq!(again1.packet_id, first.packet_id, "same packet identifier");
    assert_eq!(again2.packet_id, second.packet_id);
    assert_eq!(&again1.payload[..], b"one");
    device.ack(&again1).await;
    device.ack(&again2).await;
    device.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_4_3_3_qos2_from_a_client_is_delivered_exactly_once_across_reconnects() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    sub.subscribe("once", qos(QoS::ExactlyOnce), 1).await;
    let (mut sender, _) =
        TestClient::connect_with(broker.addr, persistent("sender", true, 300)).await;
    let message = publish("once", b"exactly", QoS::ExactlyOnce, 42);
    sender.send(&Packet::Publish(message.clone())).await;
    match sender.recv().await {
        Some(Packet::PubRec(rec)) => assert_eq!(rec.packet_id, pid(42)),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    drop(sender);
    let got = sub.expect_publish().await;
    sub.ack(&got).await;
    // The sender missed the PUBREC: it resumes and re-sends the PUBLISH with DUP.
    let (mut sender, ack) =
        TestClient::connect_with(broker.addr, persistent("sender", false, 300)).await;
    assert!(ack.session_present);
    let mut resent = message;
    resent.dup = true;
    sender.send(&Packet::Publish(resent)).await;
    match sender.recv().await {
        Some(Packet::PubRec(rec)) => assert_eq!(rec.packet_id, pid(42)),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    sender.send(&Packet::PubRel(PubAck::success(pid(42)))).await;
    match sender.recv().await {
        Some(Packet::PubComp(comp)) => assert_eq!(comp.reason_code, ReasonCode::Success),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_2_4_clean_start_discards_the_previous_session() {
    let broker = TestBroker::start().await;
    let (mut device, _) =
        TestClient::connect_with(broker.addr, persistent("dev", false, 300)).await;
    device.subscribe("cmd", qos(QoS::AtLeastOnce), 1).await;
    disconnect_normally(device).await;
    let (mut device, ack) =
        TestClient::connect_with(broker.addr, persistent("dev", true, 300)).await;
    assert!(!ack.session_present);
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    publisher
        .publish(publish("cmd", b"x", QoS::AtLeastOnce, 1))
        .await;
    device.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_2_11_2_session_expires_after_its_interval() {
    let broker = TestBroker::start().await;
    let (device, _) = TestClient::connect_with(broker.addr, persistent("dev", false, 1)).await;
    disconnect_normally(device).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, ack) = TestClient::connect_with(broker.addr, persistent("dev", false, 1)).await;
    assert!(!ack.session_present);
    // A DISCONNECT may shorten the expiry to 0: the session ends at once (3.14.2.2.2).
    let (mut device, _) =
        TestClient::connect_with(broker.addr, persistent("dev2", false, 300)).await;
    device
        .send(&Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::Success,
            properties: Properties::from(PropertySet {
                session_expiry_interval: Some(0),
                ..PropertySet::default()
            }),
        }))
        .await;
    assert_eq!(device.until_closed().await, Vec::new());
    let (_, ack) = TestClient::connect_with(broker.addr, persistent("dev2", false, 300)).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

#[tokio::test]
async fn offline_queue_is_bounded_and_refuses_what_does_not_fit() {
    let config = BrokerConfig {
        max_queued_messages: 2,
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut device, _) =
        TestClient::connect_with(broker.addr, persistent("dev", false, 300)).await;
    device.subscribe("q", qos(QoS::AtLeastOnce), 1).await;
    disconnect_normally(device).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut answers = Vec::new();
    for (n, payload) in [b"1", b"2", b"3"].into_iter().enumerate() {
        let id = n as u16 + 1;
        publisher
            .send(&Packet::Publish(publish(
                "q",
                payload,
                QoS::AtLeastOnce,
                id,
            )))
            .await;
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => answers.push(ack.reason_code),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    assert_eq!(
        answers,
        [
            ReasonCode::Success,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded
        ],
        "the only subscriber's queue was full for the third"
    );
    let (mut device, _) =
        TestClient::connect_with(broker.addr, persistent("dev", false, 300)).await;
    let mut got = Vec::new();
    while let Some(Packet::Publish(p)) = device.recv_within(Duration::from_millis(300)).await {
        device.ack(&p).await;
        got.push(p.payload);
    }
    assert_eq!(got, ["1", "2"], "what was queued first is kept");
    let dropped = mquictt_broker::Metrics::get(&broker.broker.metrics().messages_dropped);
    assert_eq!(dropped, 1);
    broker.stop().await;
}

async fn watch_wills(broker: &TestBroker) -> TestClient {
    let (mut watcher, _) = TestClient::connect(broker.addr, V5, "watcher", true).await;
    watcher.subscribe("will/#", qos(QoS::AtMostOnce), 1).await;
    watcher
}

fn with_will(client_id: &str, delay: Option<u32>, expiry: u32) -> Connect {
    let mut connect = persistent(client_id, true, expiry);
    connect.will = Some(will(&format!("will/{client_id}"), b"gone", delay));
    connect
}

#[tokio::test]
async fn mqtt_3_1_2_10_will_is_not_sent_after_normal_disconnect() {
    let broker = TestBroker::start().await;
    let mut watcher = watch_wills(&broker).await;
    let (client, _) = TestClient::connect_with(broker.addr, with_will("polite", None, 0)).await;
    disconnect_normally(client).await;
    watcher.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_14_will_is_sent_on_disconnect_0x04_and_on_lost_connections() {
    let broker = TestBroker::start().await;
    let mut watcher = watch_wills(&broker).await;
    let (mut client, _) = TestClient::connect_with(broker.addr, with_will("asks", None, 0)).await;
    client
        .send(&Packet::Disconnect(Disconnect::new(
            ReasonCode::DisconnectWithWillMessage,
        )))
        .await;
    assert_eq!(watcher.expect_publish().await.topic.as_str(), "will/asks");
    let (client, _) = TestClient::connect_with(broker.addr, with_will("lost", None, 0)).await;
    drop(client);
    let got = watcher.expect_publish().await;
    assert_eq!(got.topic.as_str(), "will/lost");
    assert_eq!(&got.payload[..], b"gone");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_delayed_will_is_cancelled_by_a_timely_reconnect() {
    let broker = TestBroker::start().await;
    let mut watcher = watch_wills(&broker).await;
    let (client, _) = TestClient::connect_with(broker.addr, with_will("flaky", Some(1), 300)).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_back, ack) = TestClient::connect_with(broker.addr, persistent("flaky", false, 300)).await;
    assert!(ack.session_present);
    assert_eq!(watcher.recv_within(Duration::from_millis(1500)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn delayed_will_is_sent_when_the_delay_passes() {
    let broker = TestBroker::start().await;
    let mut watcher = watch_wills(&broker).await;
    let (client, _) = TestClient::connect_with(broker.addr, with_will("gone", Some(1), 300)).await;
    let dropped_at = std::time::Instant::now();
    drop(client);
    let got = watcher.expect_publish().await;
    assert_eq!(got.topic.as_str(), "will/gone");
    assert!(
        dropped_at.elapsed() >= Duration::from_millis(900),
        "waited for the delay"
    );
    broker.stop().await;
}

#[tokio::test]
async fn will_delay_is_cut_short_when_the_session_ends_first() {
    let broker = TestBroker::start().await;
    let mut watcher = watch_wills(&broker).await;
    // Will delay 60 s, but the session ends with the connection (expiry 0).
    let (client, _) = TestClient::connect_with(broker.addr, with_will("short", Some(60), 0)).await;
    drop(client);
    assert_eq!(watcher.expect_publish().await.topic.as_str(), "will/short");
    broker.stop().await;
}

#[tokio::test]
async fn sessions_and_retained_messages_survive_a_broker_restart_through_storage() {
    let storage: std::sync::Arc<dyn mquictt_broker::Storage> =
        std::sync::Arc::new(mquictt_broker::MemoryStorage::new());
    let auth = std::sync::Arc::new(mquictt_broker::AllowAll);
    let first =
        TestBroker::with_parts(BrokerConfig::default(), storage.clone(), auth.clone()).await;
    let (mut device, _) = TestClient::connect_with(first.addr, persistent("dev", false, 300)).await;
    device.subscribe("cmd", qos(QoS::AtLeastOnce), 1).await;
    disconnect_normally(device).await;
    let (mut publisher, _) = TestClient::connect(first.addr, V5, "pub", true).await;
    publisher
        .publish(publish("cmd", b"queued", QoS::AtLeastOnce, 1))
        .await;
    // QoS 1, so the PUBACK proves the broker stored it before it stops.
    let mut retained = publish("state", b"kept", QoS::AtLeastOnce, 2);
    retained.retain = true;
    publisher.publish(retained).await;
    drop(publisher);
    first.stop().await;

    let second = TestBroker::with_parts(BrokerConfig::default(), storage, auth).await;
    let (mut device, ack) =
        TestClient::connect_with(second.addr, persistent("dev", false, 300)).await;
    assert!(ack.session_present, "the session came back from storage");
    let got = device.expect_publish().await;
    assert_eq!(&got.payload[..], b"queued");
    device.ack(&got).await;
    // The restored subscription is live again.
    let (mut publisher, _) = TestClient::connect(second.addr, V5, "pub2", true).await;
    publisher
        .publish(publish("cmd", b"fresh", QoS::AtLeastOnce, 2))
        .await;
    let got = device.expect_publish().await;
    assert_eq!(&got.payload[..], b"fresh");
    device.ack(&got).await;
    let (mut late, _) = TestClient::connect(second.addr, V5, "late", true).await;
    late.subscribe("state", qos(QoS::AtMostOnce), 1).await;
    assert_eq!(&late.expect_publish().await.payload[..], b"kept");
    second.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_4_9_client_exceeding_the_broker_receive_maximum_gets_0x93() {
    let config = BrokerConfig {
        receive_maximum: 1,
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut client, ack) = TestClient::connect(broker.addr, V5, "eager", true).await;
    assert_eq!(ack.properties.receive_maximum, Some(1));
    // Two QoS 2 publishes without PUBREL: the second exceeds the window.
    client
        .send(&Packet::Publish(publish("t", b"1", QoS::ExactlyOnce, 1)))
        .await;
    client
        .send(&Packet::Publish(publish("t", b"2", QoS::ExactlyOnce, 2)))
        .await;
    let packets = client.until_closed().await;
    assert_eq!(
        packets.last(),
        Some(&Packet::Disconnect(Disconnect::new(
            ReasonCode::ReceiveMaximumExceeded
        )))
    );
    broker.stop().await;
}
