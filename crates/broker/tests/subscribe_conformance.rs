//! Conformance of subscriptions: wildcards and `$` topics, overlapping subscriptions and
//! subscription identifiers, No Local, Retain As Published, Retain Handling, UNSUBSCRIBE
//! reason codes, shared subscriptions, and the `$SYS` topics. Test names carry conformance ids.

mod common;

use mquictt_protocol::PropertySet;
use std::time::Duration;

use common::client::{pid, publish, TestClient};
use common::TestBroker;
use mquictt_broker::BrokerConfig;
use mquictt_protocol::{
    Packet, Properties, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
    TopicFilter, Unsubscribe,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions::with_qos(q)
}

fn with_id(id: u32) -> Properties {
    Properties::from(PropertySet {
        subscription_identifiers: vec![id],
        ..PropertySet::default()
    })
}

#[tokio::test]
async fn mqtt_3_3_4_2_overlapping_subscriptions_deliver_once_with_every_identifier() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    sub.subscribe_with("home/+/temp", qos(QoS::AtMostOnce), 1, with_id(7))
        .await;
    sub.subscribe_with("home/#", qos(QoS::AtLeastOnce), 2, with_id(9))
        .await;
    publisher
        .publish(publish("home/kitchen/temp", b"20", QoS::ExactlyOnce, 1))
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(got.qos, QoS::AtLeastOnce, "the highest QoS of the matches");
    let mut ids = got.properties.subscription_identifiers.clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 9], "[MQTT-3.3.4-3]");
    sub.ack(&got).await;
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_4_7_2_1_leading_wildcards_do_not_match_dollar_topics() {
    let config = BrokerConfig {
        sys_interval: Some(Duration::from_millis(100)),
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut everything, _) = TestClient::connect(broker.addr, V311, "all", true).await;
    everything.subscribe("#", qos(QoS::AtMostOnce), 1).await;
    let (mut sys, _) = TestClient::connect(broker.addr, V311, "sys", true).await;
    sys.subscribe("$SYS/broker/uptime", qos(QoS::AtMostOnce), 1)
        .await;
    let got = sys.expect_publish().await;
    assert!(got.payload.ends_with(b" seconds"));
    assert_eq!(got.topic.as_str(), "$SYS/broker/uptime");
    everything.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn sys_topics_are_published_every_interval() {
    let config = BrokerConfig {
        sys_interval: Some(Duration::from_millis(100)),
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut sys, _) = TestClient::connect(broker.addr, V5, "sys", true).await;
    sys.subscribe("$SYS/broker/clients/connected", qos(QoS::AtMostOnce), 1)
        .await;
    // The first copy may be the retained one; the next ones come from the timer.
    for _ in 0..3 {
        let got = sys.expect_publish().await;
        assert_eq!(&got.payload[..], b"1");
    }
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_8_3_3_no_local_does_not_echo_own_messages() {
    let broker = TestBroker::start().await;
    let (mut client, _) = TestClient::connect(broker.addr, V5, "echo", true).await;
    let mut options = qos(QoS::AtMostOnce);
    options.no_local = true;
    client.subscribe("chat", options, 1).await;
    client
        .publish(publish("chat", b"mine", QoS::AtMostOnce, 0))
        .await;
    client.expect_nothing().await;
    let (mut other, _) = TestClient::connect(broker.addr, V5, "other", true).await;
    other
        .publish(publish("chat", b"theirs", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&client.expect_publish().await.payload[..], b"theirs");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_1_12_and_13_retain_as_published() {
    let broker = TestBroker::start().await;
    let (mut keep, _) = TestClient::connect(broker.addr, V5, "keep", true).await;
    let (mut clear, _) = TestClient::connect(broker.addr, V5, "clear", true).await;
    let mut rap = qos(QoS::AtMostOnce);
    rap.retain_as_published = true;
    keep.subscribe("r", rap, 1).await;
    clear.subscribe("r", qos(QoS::AtMostOnce), 1).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut message = publish("r", b"v", QoS::AtMostOnce, 0);
    message.retain = true;
    publisher.publish(message).await;
    assert!(keep.expect_publish().await.retain);
    assert!(!clear.expect_publish().await.retain);
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_1_9_v311_live_messages_have_retain_0_and_retained_ones_retain_1() {
    let broker = TestBroker::start().await;
    let (mut live, _) = TestClient::connect(broker.addr, V311, "live", true).await;
    live.subscribe("state", qos(QoS::AtMostOnce), 1).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V311, "pub", true).await;
    let mut message = publish("state", b"on", QoS::AtMostOnce, 0);
    message.retain = true;
    publisher.publish(message).await;
    assert!(!live.expect_publish().await.retain, "[MQTT-3.3.1-9]");
    let (mut late, _) = TestClient::connect(broker.addr, V311, "late", true).await;
    late.subscribe("state", qos(QoS::AtMostOnce), 1).await;
    assert!(late.expect_publish().await.retain, "[MQTT-3.3.1-8]");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_3_1_10_and_11_retain_handling_1_and_2() {
    let broker = TestBroker::start().await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut message = publish("rh", b"v", QoS::AtMostOnce, 0);
    message.retain = true;
    publisher.publish(message).await;
    let (mut sub, _) = TestClient::connect(broker.addr, V5, "sub", true).await;
    let mut if_new = qos(QoS::AtMostOnce);
    if_new.retain_handling = RetainHandling::SendIfNew;
    sub.subscribe("rh", if_new, 1).await;
    assert!(sub.expect_publish().await.retain, "new subscription: sent");
    sub.subscribe("rh", if_new, 2).await;
    sub.expect_nothing().await;
    let mut never = qos(QoS::AtMostOnce);
    never.retain_handling = RetainHandling::DoNotSend;
    sub.subscribe("rh/#", never, 3).await;
    sub.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_11_3_1_unsuback_has_one_reason_code_per_filter() {
    let broker = TestBroker::start().await;
    let (mut client, _) = TestClient::connect(broker.addr, V5, "c", true).await;
    client.subscribe("a", qos(QoS::AtMostOnce), 1).await;
    client
        .send(&Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(2),
            filters: vec![
                TopicFilter::new("a").unwrap(),
                TopicFilter::new("b").unwrap(),
            ],
            properties: Properties::default(),
        }))
        .await;
    match client.recv().await {
        Some(Packet::UnsubAck(ack)) => {
            assert_eq!(ack.packet_id, pid(2));
            assert_eq!(
                ack.reason_codes,
                vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
            );
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "p", true).await;
    publisher
        .publish(publish("a", b"x", QoS::AtMostOnce, 0))
        .await;
    client.expect_nothing().await;
    broker.stop().await;
}

#[tokio::test]
async fn unsupported_features_are_refused_per_filter() {
    let config = BrokerConfig {
        wildcard_subscription_available: false,
        shared_subscription_available: false,
        maximum_qos: QoS::AtLeastOnce,
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (mut client, ack) = TestClient::connect(broker.addr, V5, "c", true).await;
    assert_eq!(ack.properties.maximum_qos, Some(1));
    assert_eq!(ack.properties.wildcard_subscription_available, Some(false));
    assert_eq!(
        client.subscribe("a/#", qos(QoS::AtMostOnce), 1).await,
        ReasonCode::WildcardSubscriptionsNotSupported
    );
    assert_eq!(
        client
            .subscribe("$share/g/a", qos(QoS::AtMostOnce), 2)
            .await,
        ReasonCode::SharedSubscriptionsNotSupported
    );
    assert_eq!(
        client.subscribe("a", qos(QoS::ExactlyOnce), 3).await,
        ReasonCode::GrantedQoS1,
        "granted below the request"
    );
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_4_8_2_shared_subscription_round_robin_and_no_retained_messages() {
    let broker = TestBroker::start().await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let mut retained = publish("work", b"old", QoS::AtMostOnce, 0);
    retained.retain = true;
    publisher.publish(retained).await;
    let (mut a, _) = TestClient::connect(broker.addr, V5, "a", true).await;
    let (mut b, _) = TestClient::connect(broker.addr, V5, "b", true).await;
    a.subscribe("$share/g/work", qos(QoS::AtLeastOnce), 1).await;
    b.subscribe("$share/g/work", qos(QoS::AtLeastOnce), 1).await;
    a.expect_nothing().await;
    b.expect_nothing().await;
    for n in 1..=4u16 {
        publisher
            .publish(publish("work", b"job", QoS::AtLeastOnce, n))
            .await;
    }
    let mut per_member = [0, 0];
    for (i, member) in [&mut a, &mut b].into_iter().enumerate() {
        while let Some(Packet::Publish(job)) = member.recv_within(Duration::from_millis(300)).await
        {
            member.ack(&job).await;
            per_member[i] += 1;
        }
    }
    assert_eq!(per_member, [2, 2], "round robin over the two members");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_4_8_2_unacknowledged_shared_messages_go_to_another_member() {
    let broker = TestBroker::start().await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    let (mut a, _) = TestClient::connect(broker.addr, V5, "a", true).await;
    a.subscribe("$share/g/job", qos(QoS::AtLeastOnce), 1).await;
    publisher
        .publish(publish("job", b"important", QoS::AtLeastOnce, 1))
        .await;
    let got = a.expect_publish().await;
    assert_eq!(&got.payload[..], b"important");
    let (mut b, _) = TestClient::connect(broker.addr, V5, "b", true).await;
    b.subscribe("$share/g/job", qos(QoS::AtLeastOnce), 1).await;
    // "a" leaves without acknowledging: the message goes to "b".
    drop(a);
    let again = b.expect_publish().await;
    assert_eq!(&again.payload[..], b"important");
    broker.stop().await;
}
