//! Conformance of message delivery: QoS 0/1/2 in both directions, acknowledgement reason
//! codes, message expiry, topic aliases, flow control (Receive Maximum) and Maximum Packet
//! Size, properties passed through, and malformed input. Test names carry conformance ids.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::client::{connect_packet, pid, publish, TestClient};
use common::TestBroker;
use mquictt_protocol::{
    Disconnect, MqttString, Packet, ProtocolVersion, PubAck, QoS, ReasonCode, SubscriptionOptions,
    TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions::with_qos(q)
}

#[tokio::test]
async fn qos_0_1_2_round_trip_in_both_directions_for_both_versions() {
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let (mut sub, _) = TestClient::connect(broker.addr, version, "sub", true).await;
        let (mut publisher, _) = TestClient::connect(broker.addr, version, "pub", true).await;
        assert_eq!(
            sub.subscribe("q/+", qos(QoS::ExactlyOnce), 1).await,
            ReasonCode::GrantedQoS2
        );
        for (n, level) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            publisher
                .publish(publish("q/x", b"data", level, n as u16 + 1))
                .await;
            let got = sub.expect_publish().await;
            assert_eq!(got.qos, level, "{version}");
            assert_eq!(&got.payload[..], b"data");
            assert_eq!(got.topic.as_str(), "q/x");
            assert!(!got.dup && !got.retain);
            sub.ack(&got).await;
        }
        sub.expect_nothing().await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_8_4_8_delivery_qos_is_the_lower_of_publish_and_subscription() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe("t", qos(QoS::AtLeastOnce), 1).await;
    publisher
        .publish(publish("t", b"a", QoS::ExactlyOnce, 1))
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.ack(&got).await;
    publisher
        .publish(publish("t", b"b", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(sub.expect_publish().await.qos, QoS::AtMostOnce);
    broker.stop().await;
}

#[tokio::test]
async fn puback_says_no_matching_subscribers_in_5_0() {
    let broker = TestBroker::start().await;
    let (mut client, _) = TestClient::connect(broker.addr, V5, "lonely", true).await;
    client
        .send(&Packet::Publish(publish(
            "nobody/listens",
            b"x",
            QoS::AtLeastOnce,
            9,
        )))
        .await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => {
            assert_eq!(ack.packet_id, pid(9));
            assert_eq!(ack.reason_code, ReasonCode::NoMatchingSubscribers);
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
    broker.stop().await;
}

#[tokio::test]
async fn payload_announced_as_utf8_but_not_is_refused_with_0x99() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe("t", qos(QoS::AtLeastOnce), 1).await;
    let mut bad = publish("t", b"", QoS::AtLeastOnce, 3);
    bad.payload = Bytes::from_static(&[0xff, 0xfe]);
    bad.properties.payload_format_indicator = Some(true);
    publisher.send(&Packet::Publish(bad)).await;
    match publisher.recv().await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::PayloadFormatInvalid),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_2_4_properties_are_passed_through_unchanged() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe("req", qos(QoS::AtLeastOnce), 1).await;
    let s = |t: &str| MqttString::new(t).unwrap();
    let mut message = publish("req", b"{}", QoS::AtLeastOnce, 1);
    message.properties.payload_format_indicator = Some(true);
    message.properties.content_type = Some(s("application/json"));
    message.properties.response_topic = Some(s("resp/1"));
    message.properties.correlation_data = Some(Bytes::from_static(b"\x01\x02"));
    message.properties.user_properties = vec![(s("b"), s("2")), (s("a"), s("1")), (s("b"), s("3"))];
    publisher.publish(message.clone()).await;
    let got = sub.expect_publish().await;
    assert_eq!(got.properties.payload_format_indicator, Some(true));
    assert_eq!(got.properties.content_type, message.properties.content_type);
    assert_eq!(
        got.properties.response_topic,
        message.properties.response_topic
    );
    assert_eq!(
        got.properties.correlation_data,
        message.properties.correlation_data
    );
    // "The Server MUST maintain the order of User Properties" [MQTT-3.3.2-18].
    assert_eq!(
        got.properties.user_properties,
        message.properties.user_properties
    );
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_2_6_message_expiry_is_decremented_by_the_waiting_time() {
    let broker = TestBroker::start().await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut retained = publish("exp/a", b"v", QoS::AtLeastOnce, 1);
    retained.retain = true;
    retained.properties.message_expiry_interval = Some(10);
    publisher.publish(retained).await;
    let mut short = publish("exp/b", b"v", QoS::AtLeastOnce, 2);
    short.retain = true;
    short.properties.message_expiry_interval = Some(1);
    publisher.publish(short).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    sub.subscribe("exp/+", qos(QoS::AtLeastOnce), 1).await;
    let got = sub.expect_publish().await;
    // The one-second message expired while waiting [MQTT-3.3.2-5]; the other lost a second.
    assert_eq!(got.topic.as_str(), "exp/a");
    assert_eq!(got.properties.message_expiry_interval, Some(9));
    sub.ack(&got).await;
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_2_topic_alias_from_the_client_is_resolved() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let (mut publisher, ack) = TestClient::connect(broker.addr, V5, "pub", true).await;
    assert!(ack.properties.topic_alias_maximum.unwrap_or(0) >= 1);
    sub.subscribe("long/topic/name", qos(QoS::AtMostOnce), 1)
        .await;
    let mut first = publish("long/topic/name", b"1", QoS::AtMostOnce, 0);
    first.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(first)).await;
    let mut second = publish("x", b"2", QoS::AtMostOnce, 0);
    second.topic = TopicName::empty();
    second.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(second)).await;
    for payload in [b"1", b"2"] {
        let got = sub.expect_publish().await;
        assert_eq!(got.topic.as_str(), "long/topic/name");
        assert_eq!(&got.payload[..], payload);
        assert_eq!(got.properties.topic_alias, None, "aliases are per hop");
    }
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_2_9_topic_alias_above_the_maximum_is_disconnect_0x94() {
    let broker = TestBroker::start().await;
    let (mut publisher, ack) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let maximum = ack.properties.topic_alias_maximum.unwrap_or(0);
    let mut message = publish("t", b"x", QoS::AtMostOnce, 0);
    message.properties.topic_alias = Some(maximum + 1);
    publisher.send(&Packet::Publish(message)).await;
    assert_eq!(
        publisher.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::TopicAliasInvalid
        ))]
    );
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_4_9_broker_respects_the_client_receive_maximum() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "slow", true);
    connect.properties.receive_maximum = Some(1);
    let (mut sub, _) = TestClient::connect_with(broker.addr, connect).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe("flow", qos(QoS::AtLeastOnce), 1).await;
    for n in 1..=3u16 {
        publisher
            .publish(publish("flow", b"m", QoS::AtLeastOnce, n))
            .await;
    }
    for _ in 0..3 {
        let got = sub.expect_publish().await;
        // Only one unacknowledged PUBLISH at a time.
        sub.expect_nothing().await;
        sub.send(&Packet::PubAck(PubAck::success(got.packet_id.unwrap())))
            .await;
    }
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_messages_above_the_client_maximum_packet_size_are_dropped() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "tiny", true);
    connect.properties.maximum_packet_size = Some(64);
    let (mut sub, _) = TestClient::connect_with(broker.addr, connect).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe("size", qos(QoS::AtMostOnce), 1).await;
    let mut big = publish("size", b"", QoS::AtMostOnce, 0);
    big.payload = Bytes::from(vec![b'x'; 200]);
    publisher.send(&Packet::Publish(big)).await;
    publisher
        .send(&Packet::Publish(publish(
            "size",
            b"small",
            QoS::AtMostOnce,
            0,
        )))
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(
        &got.payload[..],
        b"small",
        "the oversized message was skipped"
    );
    broker.stop().await;
}

#[tokio::test]
async fn packets_above_the_broker_maximum_are_disconnect_0x95() {
    let config = mquictt_broker::BrokerConfig {
        max_packet_size: 128,
        ..mquictt_broker::BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut big = publish("size", b"", QoS::AtMostOnce, 0);
    big.payload = Bytes::from(vec![b'x'; 500]);
    publisher.send(&Packet::Publish(big)).await;
    assert_eq!(
        publisher.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PacketTooLarge
        ))]
    );
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_1_4_malformed_publish_ends_only_that_connection() {
    let broker = TestBroker::start().await;
    let (mut bystander, _) = TestClient::connect(broker.addr, V5, "bystander", true).await;
    bystander.subscribe("ok", qos(QoS::AtMostOnce), 1).await;
    let (mut v5, _) = TestClient::connect(broker.addr, V5, "broken5", true).await;
    // PUBLISH with QoS 3: both QoS bits set [MQTT-3.3.1-4].
    v5.send_raw(&[0x36, 5, 0, 1, b't', 0, 1]).await;
    assert_eq!(
        v5.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::MalformedPacket
        ))]
    );
    let (mut v3, _) = TestClient::connect(broker.addr, V311, "broken3", true).await;
    v3.send_raw(&[0x36, 5, 0, 1, b't', 0, 1]).await;
    assert_eq!(
        v3.until_closed().await,
        Vec::new(),
        "3.1.1 closes without a packet"
    );
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    publisher
        .publish(publish("ok", b"still", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&bystander.expect_publish().await.payload[..], b"still");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_2_12_outbound_topic_aliases_stay_within_the_client_maximum() {
    let config = mquictt_broker::BrokerConfig {
        outbound_topic_aliases: 4,
        ..mquictt_broker::BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let mut connect = connect_packet(V5, "aliased", true);
    connect.properties.topic_alias_maximum = Some(1);
    let (mut sub, _) = TestClient::connect_with(broker.addr, connect).await;
    let (mut plain, _) = TestClient::connect(broker.addr, V5, "plain", true).await;
    sub.subscribe("very/long/topic/#", qos(QoS::AtMostOnce), 1)
        .await;
    plain
        .subscribe("very/long/topic/#", qos(QoS::AtMostOnce), 1)
        .await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    for _ in 0..2 {
        publisher
            .publish(publish("very/long/topic/a", b"x", QoS::AtMostOnce, 0))
            .await;
    }
    let first = sub.expect_publish().await;
    let second = sub.expect_publish().await;
    assert_eq!(first.topic.as_str(), "very/long/topic/a");
    assert_eq!(first.properties.topic_alias, Some(1));
    assert!(second.topic.is_empty(), "the alias stands for the topic");
    assert_eq!(second.properties.topic_alias, Some(1));
    // A client that allows no aliases never gets one [MQTT-3.3.2-12].
    for _ in 0..2 {
        let got = plain.expect_publish().await;
        assert_eq!(got.properties.topic_alias, None);
        assert_eq!(got.topic.as_str(), "very/long/topic/a");
    }
    broker.stop().await;
}

/// Publishes sent together are routed as one batch, and some may be refused on the way; their
/// acknowledgements still go out in the order the publishes came, with their own reasons (the
/// order MQTT-4.6.0-2 asks of a client), and a protocol error ends the connection only after
/// what came before it was answered.
#[tokio::test]
async fn publishes_sent_together_are_answered_in_order() {
    let broker = TestBroker::with_config(mquictt_broker::BrokerConfig {
        max_topic_levels: 3,
        ..mquictt_broker::BrokerConfig::default()
    })
    .await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    sub.subscribe("t/#", qos(QoS::AtLeastOnce), 1).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut not_utf8 = publish("t/c", b"", QoS::AtLeastOnce, 4);
    not_utf8.payload = Bytes::from_static(&[0xff, 0xfe]);
    not_utf8.properties.payload_format_indicator = Some(true);
    let mut with_identifier = publish("t/e", b"m7", QoS::AtLeastOnce, 7);
    with_identifier.properties.subscription_identifiers = vec![1];
    let burst = [
        publish("t/a", b"m1", QoS::AtLeastOnce, 1),
        publish("t/a/b/c", b"m2", QoS::AtLeastOnce, 2),
        publish("t/b", b"m3", QoS::AtLeastOnce, 3),
        not_utf8,
        publish("nobody", b"m5", QoS::AtLeastOnce, 5),
        publish("t/d", b"m6", QoS::AtLeastOnce, 6),
        with_identifier,
    ];
    let mut bytes = bytes::BytesMut::new();
    for message in burst {
        Packet::Publish(message)
            .encode(V5, &mut bytes)
            .expect("test packet encodes");
    }
    publisher.send_raw(&bytes).await;
    let expected = [
        ReasonCode::Success,
        ReasonCode::TopicNameInvalid,
        ReasonCode::Success,
        ReasonCode::PayloadFormatInvalid,
        ReasonCode::NoMatchingSubscribers,
        ReasonCode::Success,
    ];
    for (id, reason) in (1..).zip(expected) {
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => {
                assert_eq!((ack.packet_id, ack.reason_code), (pid(id), reason));
            }
            other => panic!("expected PUBACK {id}, got {other:?}"),
        }
    }
    match publisher.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::ProtocolError),
        other => panic!("expected DISCONNECT 0x82, got {other:?}"),
    }
    for payload in ["m1", "m3", "m6"] {
        let message = sub.expect_publish().await;
        assert_eq!(&message.payload[..], payload.as_bytes());
        sub.ack(&message).await;
    }
    sub.expect_nothing().await;
    broker.stop().await;
}
