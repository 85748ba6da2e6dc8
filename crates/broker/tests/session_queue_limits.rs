//! The bounds of a session's queue over real sockets: the oldest QoS 0 copies make room
//! first, then a new QoS 0 copy is dropped and a new QoS 1/2 copy refused; an MQTT 5
//! publisher hears 0x97 Quota exceeded only when no matching subscriber could take its
//! message; the byte limit works like the message limit; every drop is counted by reason;
//! and what storage holds is exactly what the queue holds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::client::{connect_packet, publish, TestClient};
use common::{wait_until, TestBroker};
use mquictt_broker::{AllowAll, BrokerConfig, MemoryStorage, Metrics, Storage};
use mquictt_protocol::{
    Connect, Packet, ProtocolVersion, PubAck, Publish, QoS, ReasonCode, SubscriptionOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn persistent(client_id: &str, expiry: u32) -> Connect {
    let mut connect = connect_packet(V5, client_id, false);
    connect.properties.session_expiry_interval = Some(expiry);
    connect
}

/// Sends a QoS 1 PUBLISH and returns the PUBACK reason code.
async fn puback(client: &mut TestClient, publish: Publish) -> ReasonCode {
    client.send(&Packet::Publish(publish)).await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => ack.reason_code,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// A broker on `config` without its publish rate limit, a subscriber "slow" to `q` whose
/// window holds one message (behind it everything queues), and a publisher "pub".
async fn slow_subscriber_and_publisher(
    config: BrokerConfig,
) -> (TestBroker, TestClient, TestClient) {
    let broker = TestBroker::with_config(BrokerConfig {
        publish_rate: None,
        ..config
    })
    .await;
    let mut connect = connect_packet(V5, "slow", true);
    connect.properties.receive_maximum = Some(1);
    let (mut slow, _) = TestClient::connect_with(broker.addr, connect).await;
    slow.subscribe("q", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
        .await;
    let (publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    (broker, slow, publisher)
}

fn counter(broker: &TestBroker, pick: impl Fn(&Metrics) -> &std::sync::atomic::AtomicU64) -> u64 {
    Metrics::get(pick(broker.broker.metrics()))
}

#[tokio::test]
async fn a_full_queue_drops_oldest_qos0_then_new_qos0_then_refuses_qos1() {
    let (broker, mut slow, mut publisher) = slow_subscriber_and_publisher(BrokerConfig {
        max_queued_messages: 3,
        ..BrokerConfig::default()
    })
    .await;
    let qos1 = |payload, id| publish("q", payload, QoS::AtLeastOnce, id);
    let qos0 = |payload| publish("q", payload, QoS::AtMostOnce, 0);

    assert_eq!(
        puback(&mut publisher, qos1(b"m1", 1)).await,
        ReasonCode::Success
    );
    let first = slow.expect_publish().await;
    assert_eq!(&first.payload[..], b"m1");
    // Queue: m2 waits for the window, QoS 0 copies wait behind it (order is kept).
    assert_eq!(
        puback(&mut publisher, qos1(b"m2", 2)).await,
        ReasonCode::Success
    );
    publisher.send(&Packet::Publish(qos0(b"z1"))).await;
    publisher.send(&Packet::Publish(qos0(b"z2"))).await;
    // Full at 3: z1, then z2, make room.
    assert_eq!(
        puback(&mut publisher, qos1(b"m3", 3)).await,
        ReasonCode::Success
    );
    assert_eq!(
        puback(&mut publisher, qos1(b"m4", 4)).await,
        ReasonCode::Success
    );
    // No QoS 0 copy left: a new QoS 0 copy is dropped, a new QoS 1 copy refused.
    publisher.send(&Packet::Publish(qos0(b"z3"))).await;
    assert_eq!(
        puback(&mut publisher, qos1(b"m5", 5)).await,
        ReasonCode::QuotaExceeded,
        "its only subscriber could not queue it"
    );

    slow.send(&Packet::PubAck(PubAck::success(
        first.packet_id.expect("QoS 1 has an identifier"),
    )))
    .await;
    let mut got = Vec::new();
    while let Some(Packet::Publish(p)) = slow.recv_within(Duration::from_millis(300)).await {
        slow.ack(&p).await;
        got.push(p.payload);
    }
    assert_eq!(got, ["m2", "m3", "m4"]);
    assert_eq!(
        counter(&broker, |m| &m.queue_qos0_dropped_messages_limit),
        3
    );
    assert_eq!(counter(&broker, |m| &m.queue_refused_messages_limit), 1);
    assert_eq!(counter(&broker, |m| &m.publishes_refused_queues_full), 1);
    assert_eq!(counter(&broker, |m| &m.messages_dropped), 4);
    let text = broker.broker.metrics().render_prometheus();
    assert!(text.contains("mquictt_queue_refused_messages_limit_total 1\n"));
    broker.stop().await;
}

#[tokio::test]
async fn the_byte_limit_refuses_and_storage_holds_what_the_queue_holds() {
    let storage = Arc::new(MemoryStorage::new());
    let broker = TestBroker::with_parts(
        BrokerConfig {
            max_queued_bytes: 100,
            ..BrokerConfig::default()
        },
        storage.clone(),
        Arc::new(AllowAll),
    )
    .await;
    for id in ["a", "b"] {
        let (mut device, _) = TestClient::connect_with(broker.addr, persistent(id, 300)).await;
        device
            .subscribe("q", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
            .await;
        device
            .send(&Packet::Disconnect(mquictt_protocol::Disconnect::new(
                ReasonCode::Success,
            )))
            .await;
        device.until_closed().await;
    }
    // "b" comes back online and keeps up: its queue never fills.
    let (mut keeping_up, _) = TestClient::connect_with(broker.addr, persistent("b", 300)).await;
    let (mut publisher, _) = TestClient::connect(broker.addr, V5, "pub", true).await;
    static LARGE: [u8; 150] = [b'L'; 150];
    static SMALL: [u8; 40] = [b's'; 40];
    // A copy larger than the limit fits an empty queue.
    assert_eq!(
        puback(&mut publisher, publish("q", &LARGE, QoS::AtLeastOnce, 1)).await,
        ReasonCode::Success
    );
    // Refused for "a" (bytes), queued for "b": the publisher hears success.
    assert_eq!(
        puback(&mut publisher, publish("q", &SMALL, QoS::AtLeastOnce, 2)).await,
        ReasonCode::Success
    );
    for _ in 0..2 {
        let p = keeping_up.expect_publish().await;
        keeping_up.ack(&p).await;
    }
    assert_eq!(counter(&broker, |m| &m.queue_refused_bytes_limit), 1);
    assert_eq!(counter(&broker, |m| &m.publishes_refused_queues_full), 0);
    // Storage agrees with memory: "a" holds the large copy only, "b" nothing.
    wait_until("b's acknowledgements are stored", || {
        let state = storage.load().expect("memory storage loads");
        state.sessions.get("b").is_some_and(|s| s.queued.is_empty())
    })
    .await;
    let state = storage.load().expect("memory storage loads");
    let queued_for_a: Vec<usize> = state.sessions["a"]
        .queued
        .values()
        .map(|q| q.outgoing.message.payload.len())
        .collect();
    assert_eq!(queued_for_a, [150]);
    let (mut a, _) = TestClient::connect_with(broker.addr, persistent("a", 300)).await;
    let p = a.expect_publish().await;
    assert_eq!(p.payload.len(), 150);
    a.ack(&p).await;
    assert!(a.recv_within(Duration::from_millis(300)).await.is_none());
    broker.stop().await;
}

#[tokio::test]
async fn a_long_queue_is_written_in_parts_without_another_wake() {
    const COPIES: u32 = 400;
    let (broker, mut slow, mut publisher) =
        slow_subscriber_and_publisher(BrokerConfig::default()).await;
    let qos1 = |payload, id| publish("q", payload, QoS::AtLeastOnce, id);
    assert_eq!(
        puback(&mut publisher, qos1(b"m1", 1)).await,
        ReasonCode::Success
    );
    let first = slow.expect_publish().await;
    // m2 waits for the window, and 400 KiB of QoS 0 copies behind it: several writes' worth.
    assert_eq!(
        puback(&mut publisher, qos1(b"m2", 2)).await,
        ReasonCode::Success
    );
    let copy = |i: u32| {
        let mut payload = vec![b'.'; 1024];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        payload
    };
    for i in 0..COPIES {
        let mut packet = publish("q", b"", QoS::AtMostOnce, 0);
        packet.payload = copy(i).into();
        publisher.send(&Packet::Publish(packet)).await;
    }
    // Acknowledged once everything before it on this connection was routed.
    assert_eq!(
        puback(&mut publisher, qos1(b"m3", 3)).await,
        ReasonCode::Success
    );
    // The window opens once, and nothing else happens: the whole queue must still come.
    slow.ack(&first).await;
    assert_eq!(&slow.expect_publish().await.payload[..], b"m2");
    for i in 0..COPIES {
        let received = slow.expect_publish().await;
        assert_eq!(received.qos, QoS::AtMostOnce);
        assert_eq!(&received.payload[..], &copy(i)[..], "copy {i}");
    }
    broker.stop().await;
}

/// Publishes that arrive together are routed in batches under one acquisition of the
/// router's lock; a back-pressure pause that begins in the middle of a batch holds back the
/// rest of it, as it holds back what is still unread. Routed at once, the last of them would
/// find the queue full and be refused.
#[tokio::test]
async fn a_pause_within_a_batch_of_publishes_holds_back_the_rest_of_it() {
    const MESSAGES: u16 = 16;
    let (broker, mut slow, mut publisher) = slow_subscriber_and_publisher(BrokerConfig {
        // Congested at 4 queued messages (half), drained at 2; refusing from 8.
        max_queued_messages: 8,
        ..BrokerConfig::default()
    })
    .await;
    // One write, so that the broker decodes them together.
    let mut burst = bytes::BytesMut::new();
    for id in 1..=MESSAGES {
        let mut message = publish("q", b"", QoS::AtLeastOnce, id);
        message.payload = format!("m{id}").into_bytes().into();
        Packet::Publish(message)
            .encode(V5, &mut burst)
            .expect("test packet encodes");
    }
    publisher.send_raw(&burst).await;
    // The subscriber takes one message at a time (its window is 1), and so drains the queue.
    let mut got = Vec::new();
    while got.len() < usize::from(MESSAGES) {
        let message = slow.expect_publish().await;
        slow.ack(&message).await;
        got.push(String::from_utf8(message.payload.to_vec()).expect("text payload"));
    }
    let sent: Vec<String> = (1..=MESSAGES).map(|id| format!("m{id}")).collect();
    assert_eq!(got, sent, "every message, in order");
    for id in 1..=MESSAGES {
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => {
                assert_eq!(ack.packet_id.get(), id, "acknowledged in order");
                assert_eq!(ack.reason_code, ReasonCode::Success, "m{id}");
            }
            other => panic!("expected PUBACK {id}, got {other:?}"),
        }
    }
    assert_eq!(counter(&broker, |m| &m.queue_refused_messages_limit), 0);
    broker.stop().await;
}
