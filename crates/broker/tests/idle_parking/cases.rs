//! The cases of `idle_parking.rs`, run again by `idle_without_descriptor.rs` with every parked
//! socket held without a file descriptor. The including file defines `config()`, the broker's
//! configuration, and `HELD`, whether parked sockets must be held so.

use std::time::{Duration, Instant};

use crate::common::client::{connect_packet, pid, publish, will, TestClient};
use crate::common::{wait_until, within, TestBroker};
use mquictt_broker::metrics::Metrics;
use mquictt_protocol::{
    Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// How quickly a parked connection must react: far below its keep alive, a little above a
/// scheduler hop.
const PROMPTLY: Duration = Duration::from_millis(500);

/// Waits (up to 5 s) until exactly `n` connections are parked, with their sockets held without
/// a file descriptor if the test binary says so ([`crate::HELD`]).
async fn until_parked(broker: &TestBroker, n: usize) {
    let held = if crate::HELD { n } else { 0 };
    wait_until(&format!("{n} connections are parked"), || {
        broker.broker.parked_connections() == n
            && broker.broker.connections_without_descriptor() == held
    })
    .await;
}

fn connections_current(broker: &TestBroker) -> u64 {
    Metrics::get(&broker.broker.metrics().connections_current)
}

#[tokio::test]
async fn many_idle_clients_park_and_the_gauge_counts_them_all() {
    let broker = TestBroker::with_config(crate::config()).await;
    let mut clients = Vec::new();
    for i in 0..50 {
        let version = if i % 2 == 0 { V5 } else { V311 };
        let (client, _) =
            TestClient::connect(broker.addr, version, &format!("idle-{i}"), true).await;
        clients.push(client);
    }
    until_parked(&broker, 50).await;
    assert_eq!(connections_current(&broker), 50);
    for mut client in clients {
        client
            .send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .await;
        assert_eq!(client.until_closed().await, Vec::new());
    }
    wait_until("every client has left", || {
        connections_current(&broker) == 0
    })
    .await;
    assert_eq!(broker.broker.parked_connections(), 0);
    broker.stop().await;
}

#[tokio::test]
async fn a_parked_subscriber_receives_a_publish_promptly() {
    let broker = TestBroker::with_config(crate::config()).await;
    let (mut subscriber, _) = TestClient::connect(broker.addr, V5, "parked-sub", true).await;
    let granted = subscriber
        .subscribe("news", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
        .await;
    assert_eq!(granted, ReasonCode::GrantedQoS1);
    until_parked(&broker, 1).await;

    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "active-pub", true).await;
    let sent = Instant::now();
    publisher
        .publish(publish("news", b"hello", QoS::AtLeastOnce, 1))
        .await;
    let received = match subscriber.recv_within(PROMPTLY).await {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected the PUBLISH within {PROMPTLY:?}, got {other:?}"),
    };
    assert!(sent.elapsed() < PROMPTLY, "took {:?}", sent.elapsed());
    assert_eq!(&received.payload[..], b"hello");
    // The resumed driver goes on as before: the acknowledgement completes the exchange, and
    // the subscriber parks again once idle.
    subscriber.ack(&received).await;
    until_parked(&broker, 2).await;
    publisher
        .publish(publish("news", b"again", QoS::AtLeastOnce, 2))
        .await;
    let again = within("the second PUBLISH", subscriber.expect_publish()).await;
    assert_eq!(&again.payload[..], b"again");
    broker.stop().await;
}

#[tokio::test]
async fn a_parked_client_publishes_and_pings() {
    let broker = TestBroker::with_config(crate::config()).await;
    let (mut subscriber, _) = TestClient::connect(broker.addr, V311, "sub", true).await;
    subscriber
        .subscribe("t/#", SubscriptionOptions::with_qos(QoS::ExactlyOnce), 1)
        .await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V311, "pub", true).await;
    until_parked(&broker, 2).await;

    publisher.send(&Packet::PingReq).await;
    assert_eq!(
        publisher.recv_within(PROMPTLY).await,
        Some(Packet::PingResp)
    );
    until_parked(&broker, 2).await;
    // QoS 2 from a parked publisher to a parked subscriber: PUBREC, PUBREL, PUBCOMP.
    within(
        "the QoS 2 publish",
        publisher.publish(publish("t/a", b"two", QoS::ExactlyOnce, 7)),
    )
    .await;
    let received = within("delivery", subscriber.expect_publish()).await;
    assert_eq!(&received.payload[..], b"two");
    assert_eq!(received.qos, QoS::ExactlyOnce);
    subscriber.ack(&received).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_parked_client_whose_keep_alive_runs_out_is_closed_and_its_will_published() {
    let broker = TestBroker::with_config(crate::config()).await;
    let (mut watcher, _) = TestClient::connect(broker.addr, V5, "watcher", true).await;
    watcher
        .subscribe("wills/#", SubscriptionOptions::default(), 1)
        .await;
    let mut connect = connect_packet(V5, "sleeper", true);
    // The broker allows one and a half keep alives [MQTT-3.1.2-24]: 3 s, well after the
    // connection parks.
    connect.keep_alive = 2;
    connect.will = Some(will("wills/sleeper", b"gone", None));
    let (mut sleeper, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    until_parked(&broker, 2).await;
    let parked_at = Instant::now();

    let will = within("the will", watcher.expect_publish()).await;
    assert_eq!(will.topic.as_str(), "wills/sleeper");
    assert_eq!(&will.payload[..], b"gone");
    let waited = parked_at.elapsed();
    assert!(waited < Duration::from_secs(3), "will after {waited:?}");
    // 5.0: DISCONNECT 0x8D Keep alive timeout, then the close.
    let closing = within("the close", sleeper.until_closed()).await;
    assert!(
        matches!(
            closing.as_slice(),
            [Packet::Disconnect(d)] if d.reason_code == ReasonCode::KeepAliveTimeout
        ),
        "{closing:?}"
    );
    wait_until("the sleeper is gone", || connections_current(&broker) == 1).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_parked_client_is_taken_over_and_hands_its_session_back() {
    let broker = TestBroker::with_config(crate::config()).await;
    let persistent = |clean_start| {
        let mut connect: Connect = connect_packet(V5, "device", clean_start);
        connect.properties.session_expiry_interval = Some(600);
        connect
    };
    let (mut first, _) = TestClient::connect_with(broker.addr, persistent(true)).await;
    first
        .subscribe("cmd", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
        .await;
    until_parked(&broker, 1).await;

    let started = Instant::now();
    let (mut second, ack) = TestClient::connect_with(broker.addr, persistent(false)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert!(ack.session_present, "the session was handed back");
    assert!(
        started.elapsed() < PROMPTLY,
        "takeover took {:?}",
        started.elapsed()
    );
    let closing = within("the old connection's close", first.until_closed()).await;
    assert!(
        matches!(
            closing.as_slice(),
            [Packet::Disconnect(d)] if d.reason_code == ReasonCode::SessionTakenOver
        ),
        "{closing:?}"
    );
    // The subscription came with the session.
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "ops", true).await;
    publisher
        .publish(publish("cmd", b"reboot", QoS::AtLeastOnce, 1))
        .await;
    let received = within("the command", second.expect_publish()).await;
    assert_eq!(&received.payload[..], b"reboot");
    assert_eq!(received.packet_id, Some(pid(1)));
    assert_eq!(connections_current(&broker), 2);
    broker.stop().await;
}

#[tokio::test]
async fn a_shutdown_closes_parked_clients() {
    let broker = TestBroker::with_config(crate::config()).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let (client, _) = TestClient::connect(broker.addr, V5, &format!("c{i}"), true).await;
        clients.push(client);
    }
    until_parked(&broker, 5).await;
    let started = Instant::now();
    let stopping = tokio::spawn(broker.stop());
    for mut client in clients {
        let closing = within("the close", client.until_closed()).await;
        assert!(
            matches!(
                closing.as_slice(),
                [Packet::Disconnect(d)] if d.reason_code == ReasonCode::ServerShuttingDown
            ),
            "{closing:?}"
        );
    }
    // Every parked connection finished: the shutdown did not wait out its 5 s grace.
    within("the shutdown", stopping).await.expect("stop task");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_parked_subscriber_keeps_its_unacknowledged_messages_and_window() {
    // A window of one message: the second waits in the queue until the first is acknowledged.
    let broker = TestBroker::with_config(mquictt_broker::BrokerConfig {
        v3_inflight: 1,
        ..crate::config()
    })
    .await;
    let (mut subscriber, _) = TestClient::connect(broker.addr, V311, "slow", true).await;
    subscriber
        .subscribe("jobs", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
        .await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V311, "boss", true).await;
    publisher
        .publish(publish("jobs", b"first", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .publish(publish("jobs", b"second", QoS::AtLeastOnce, 2))
        .await;
    let first = within("the first job", subscriber.expect_publish()).await;
    assert_eq!(&first.payload[..], b"first");
    subscriber.expect_nothing().await;
    // Both park with the first message unacknowledged and the second queued behind it.
    until_parked(&broker, 2).await;
    subscriber.ack(&first).await;
    let second = match subscriber.recv_within(PROMPTLY).await {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected the second job within {PROMPTLY:?}, got {other:?}"),
    };
    assert_eq!(&second.payload[..], b"second");
    broker.stop().await;
}

/// The `mquictt broker` path: connections come from a transport listener and are spawned with
/// `Broker::spawn_accepted`; a plain TCP one is unboxed from the listener's byte stream and
/// parks like one from `serve_tcp`.
#[tokio::test]
async fn connections_from_a_transport_listener_park_too() {
    use std::sync::Arc;

    use mquictt_broker::{AllowAll, Broker, MemoryStorage, QuicServing};
    use mquictt_transport::{ListenUrl, Listener, ServerTlsSettings, TransportKind};

    let broker = Broker::new(
        crate::config(),
        Arc::new(MemoryStorage::new()),
        Arc::new(AllowAll),
    )
    .expect("broker starts inside the test runtime");
    let url = ListenUrl::new(TransportKind::Tcp, "127.0.0.1:0".parse().unwrap());
    let mut listener = Listener::bind(&url, &ServerTlsSettings::default())
        .await
        .expect("bind loopback");
    let addr = listener.local_addr();
    let serving = broker.clone();
    let accepting = tokio::spawn(async move {
        while let Ok(accepted) = listener.accept().await {
            drop(serving.spawn_accepted(accepted, None, &QuicServing::default()));
        }
    });
    let mut clients = Vec::new();
    for i in 0..3 {
        let (client, _) = TestClient::connect(addr, V5, &format!("listened-{i}"), true).await;
        clients.push(client);
    }
    let held = if crate::HELD { 3 } else { 0 };
    wait_until("3 connections are parked", || {
        broker.parked_connections() == 3 && broker.connections_without_descriptor() == held
    })
    .await;
    for mut client in clients {
        client
            .send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .await;
        assert_eq!(client.until_closed().await, Vec::new());
    }
    wait_until("every client has left", || broker.parked_connections() == 0).await;
    accepting.abort();
}
