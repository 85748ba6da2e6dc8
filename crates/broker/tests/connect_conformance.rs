//! Conformance of connection set-up and tear-down against a broker on an ephemeral loopback
//! port: CONNECT rules per protocol version, client identifiers, takeover, limits, timeouts
//! and graceful shutdown. Test names carry the spec's conformance ids.

mod common;

use std::time::Duration;

use common::client::{connect_packet, will, TestClient};
use common::{wait_until, TestBroker};
use mquictt_broker::BrokerConfig;
use mquictt_protocol::{
    Disconnect, MqttString, Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

#[tokio::test]
async fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    let broker = TestBroker::start().await;
    let mut client = TestClient::open(broker.addr, V311).await;
    client.send(&Packet::PingReq).await;
    assert_eq!(
        client.until_closed().await,
        Vec::new(),
        "closed without an answer"
    );
    // Other clients are still served.
    TestClient::connect(broker.addr, V311, "still-fine", true).await;
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_0_2_second_connect_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let (mut v5, _) = TestClient::connect(broker.addr, V5, "twice-5", true).await;
    v5.send(&Packet::Connect(Box::new(connect_packet(
        V5, "twice-5", true,
    ))))
    .await;
    assert_eq!(
        v5.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::ProtocolError
        ))]
    );
    let (mut v3, _) = TestClient::connect(broker.addr, V311, "twice-3", true).await;
    v3.send(&Packet::Connect(Box::new(connect_packet(
        V311, "twice-3", true,
    ))))
    .await;
    assert_eq!(v3.until_closed().await, Vec::new(), "3.1.1 just closes");
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_2_2_unsupported_protocol_level_gets_return_code_1() {
    let broker = TestBroker::start().await;
    let mut client = TestClient::open(broker.addr, V311).await;
    // CONNECT, protocol "MQTT" level 6, clean session, keep alive 60, client id "x".
    client
        .send_raw(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'x',
        ])
        .await;
    match client.recv().await {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::UnsupportedProtocolVersion);
            assert!(!ack.session_present);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(client.until_closed().await, Vec::new());
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_3_8_empty_client_id_with_clean_session_0_is_rejected() {
    let broker = TestBroker::start().await;
    let (mut client, ack) =
        TestClient::connect_with(broker.addr, connect_packet(V311, "", false)).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    assert_eq!(client.until_closed().await, Vec::new());
    // With clean session 1 the broker assigns one [MQTT-3.1.3-6].
    let (_, ack) = TestClient::connect_with(broker.addr, connect_packet(V311, "", true)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_2_2_16_empty_client_id_gets_an_assigned_identifier() {
    let broker = TestBroker::start().await;
    let (_, ack) = TestClient::connect_with(broker.addr, connect_packet(V5, "", true)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    let assigned = ack
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    assert!(!assigned.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_connect_with_protocol_name_mqisdp_is_accepted() {
    let broker = TestBroker::start().await;
    let (mut client, ack) =
        TestClient::connect(broker.addr, ProtocolVersion::V3_1, "old-device", true).await;
    assert!(!ack.session_present);
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_2_2_connack_announces_the_broker_limits() {
    let config = BrokerConfig {
        receive_maximum: 10,
        max_packet_size: 4096,
        topic_alias_maximum: 5,
        server_keep_alive: Some(Duration::from_secs(20)),
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (_, ack) = TestClient::connect(broker.addr, V5, "limits", true).await;
    assert_eq!(ack.properties.receive_maximum, Some(10));
    assert_eq!(ack.properties.maximum_packet_size, Some(4096));
    assert_eq!(ack.properties.topic_alias_maximum, Some(5));
    assert_eq!(ack.properties.server_keep_alive, Some(20));
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_4_3_takeover_sends_disconnect_0x8e_to_the_old_connection() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "same-id", false);
    connect.properties.session_expiry_interval = Some(60);
    let (mut old, _) = TestClient::connect_with(broker.addr, connect.clone()).await;
    let (_new, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert!(
        ack.session_present,
        "the session moved to the new connection"
    );
    assert_eq!(
        old.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::SessionTakenOver
        ))]
    );
    // 3.1.1: the old connection is closed without a packet [MQTT-3.1.4-2].
    let (mut old3, _) = TestClient::connect(broker.addr, V311, "same-id-3", true).await;
    let _new3 = TestClient::connect(broker.addr, V311, "same-id-3", true).await;
    assert_eq!(old3.until_closed().await, Vec::new());
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_2_2_bad_authentication_method_is_refused_with_0x8c() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "enhanced", true);
    connect.properties.authentication_method = Some(MqttString::new("SCRAM-SHA-1").unwrap());
    let (_, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BadAuthenticationMethod);
    broker.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_server_busy() {
    let config = BrokerConfig {
        max_connections: 1,
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let (first, _) = TestClient::connect(broker.addr, V5, "first", true).await;
    let (_, ack) = TestClient::connect_with(broker.addr, connect_packet(V5, "second", true)).await;
    assert_eq!(ack.reason_code, ReasonCode::ServerBusy);
    let (_, ack) = TestClient::connect_with(broker.addr, connect_packet(V311, "third", true)).await;
    assert_eq!(
        ack.reason_code,
        ReasonCode::ServerUnavailable,
        "3.1.1 return code 3"
    );
    drop(first);
    let b = broker.broker.clone();
    wait_until("the slot is free", move || {
        b.sys_snapshot().clients_connected == 0
    })
    .await;
    TestClient::connect(broker.addr, V5, "fourth", true).await;
    broker.stop().await;
}

#[tokio::test]
async fn connect_timeout_closes_connections_that_never_send_connect() {
    let config = BrokerConfig {
        connect_timeout: Duration::from_millis(200),
        ..BrokerConfig::default()
    };
    let broker = TestBroker::with_config(config).await;
    let mut silent = TestClient::open(broker.addr, V5).await;
    let started = std::time::Instant::now();
    assert_eq!(silent.until_closed().await, Vec::new());
    assert!(started.elapsed() < Duration::from_secs(3));
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_timeout_after_one_and_a_half_times() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "sleepy", true);
    connect.keep_alive = 1;
    let (mut client, _) = TestClient::connect_with(broker.addr, connect).await;
    let started = std::time::Instant::now();
    assert_eq!(
        client.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::KeepAliveTimeout
        ))]
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
    broker.stop().await;
}

#[tokio::test]
async fn keep_alive_zero_never_times_out() {
    let broker = TestBroker::start().await;
    let mut connect = connect_packet(V5, "no-keepalive", true);
    connect.keep_alive = 0;
    let (mut client, _) = TestClient::connect_with(broker.addr, connect).await;
    assert_eq!(client.recv_within(Duration::from_millis(1500)).await, None);
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
    broker.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_sends_0x8b_closes_3_1_1_and_publishes_wills() {
    let broker = TestBroker::start().await;
    let (mut v5, _) = TestClient::connect(broker.addr, V5, "five", true).await;
    let mut with_will = connect_packet(V311, "three", true);
    let mut last_words = will("status/three", b"gone", None);
    last_words.retain = true;
    with_will.will = Some(last_words);
    let (mut v3, _) = TestClient::connect_with(broker.addr, with_will).await;
    v5.subscribe("x", SubscriptionOptions::with_qos(QoS::AtMostOnce), 1)
        .await;
    let handle = broker.broker.clone();
    broker.stop().await;
    assert_eq!(
        v5.until_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::ServerShuttingDown
        ))]
    );
    assert_eq!(v3.until_closed().await, Vec::new());
    // The will of the dropped 3.1.1 connection was published (and retained).
    assert_eq!(handle.sys_snapshot().retained, 1);
}

#[derive(Debug)]
struct OnlyAlice;

impl mquictt_broker::Authenticator for OnlyAlice {
    fn authenticate(
        &self,
        request: &mquictt_broker::auth::ConnectRequest<'_>,
    ) -> mquictt_broker::auth::AuthResult {
        match (request.username, request.password.map(|p| &p[..])) {
            (Some("alice"), Some(b"secret")) => Ok(()),
            _ => Err(ReasonCode::BadUserNameOrPassword),
        }
    }

    fn authorize_subscribe(
        &self,
        _client: &mquictt_broker::auth::Principal<'_>,
        filter: &mquictt_protocol::TopicFilter,
    ) -> bool {
        !filter.as_str().starts_with("private")
    }
}

#[tokio::test]
async fn authenticator_refusal_is_connack_0x86_or_return_code_4() {
    let broker = TestBroker::with_parts(
        BrokerConfig::default(),
        std::sync::Arc::new(mquictt_broker::MemoryStorage::new()),
        std::sync::Arc::new(OnlyAlice),
    )
    .await;
    for version in [V5, V311] {
        let (mut client, ack) =
            TestClient::connect_with(broker.addr, connect_packet(version, "mallory", true)).await;
        assert_eq!(
            ack.reason_code,
            ReasonCode::BadUserNameOrPassword,
            "{version}"
        );
        assert_eq!(client.until_closed().await, Vec::new());
    }
    let mut alice = connect_packet(V5, "alice", true);
    alice.username = Some(MqttString::new("alice").unwrap());
    alice.password = Some(bytes::Bytes::from_static(b"secret"));
    let (mut client, ack) = TestClient::connect_with(broker.addr, alice).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(
        client
            .subscribe("private/x", SubscriptionOptions::default(), 1)
            .await,
        ReasonCode::NotAuthorized
    );
    broker.stop().await;
}

#[tokio::test]
async fn mqtt_3_1_4_1_malformed_connect_gets_connack_0x81_in_5_0_and_a_close_in_3_1_1() {
    let broker = TestBroker::start().await;
    // CONNECT with the reserved flag bit set [MQTT-3.1.2-3]: level 5, flags 0x03, no properties.
    let mut v5 = TestClient::open(broker.addr, V5).await;
    v5.send_raw(&[
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'x',
    ])
    .await;
    match v5.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::MalformedPacket),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(v5.until_closed().await, Vec::new());
    let mut v3 = TestClient::open(broker.addr, V311).await;
    v3.send_raw(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'x',
    ])
    .await;
    assert_eq!(v3.until_closed().await, Vec::new());
    broker.stop().await;
}
