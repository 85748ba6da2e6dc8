//! Resource exhaustion: a flood of clients asking for sessions that never expire and then
//! vanishing stays within the session cap and is gone after the expiry cap; a stalled
//! subscriber under a fast publisher keeps broker memory bounded, its drops are counted, and
//! a healthy subscriber of the same topic is unaffected.

mod security_support;

use std::time::{Duration, Instant};

use mquictt_broker::BrokerConfig;
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use security_support::{connect_packet, metric, publish, wait_until, Peer, SecureBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expiry_flood_stays_within_the_caps() {
    const CAP: usize = 300;
    const FLOOD: usize = 400;
    let served = SecureBroker::start(BrokerConfig {
        max_session_expiry: Duration::from_secs(2),
        max_sessions: CAP,
        connection_rate: None,
        ..BrokerConfig::default()
    })
    .await;
    // A well-behaved client, connected before the flood, holds one of the sessions.
    let mut publisher = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
    publisher.connect("publisher").await;
    let mut refused = 0;
    for i in 0..FLOOD {
        let mut peer = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
        let mut connect = connect_packet(ProtocolVersion::V5, &format!("flood-{i}"));
        connect.clean_start = false;
        // "never expire"
        connect.properties.session_expiry_interval = Some(u32::MAX);
        let ack = peer.connect_with(connect).await;
        match ack.reason_code {
            ReasonCode::Success => {
                // The capped value is returned in CONNACK (3.2.2.3.2).
                assert_eq!(ack.properties.session_expiry_interval, Some(2));
                assert_eq!(
                    peer.subscribe(&format!("flood/{i}/#"), QoS::AtLeastOnce, 1)
                        .await,
                    ReasonCode::GrantedQoS1
                );
            }
            ReasonCode::QuotaExceeded => refused += 1,
            other => panic!("unexpected CONNACK {other:?}"),
        }
        assert!(metric(&served.broker, |m| &m.sessions) <= CAP as u64);
        // The client vanishes without DISCONNECT.
        drop(peer);
    }
    assert_eq!(refused, FLOOD - (CAP - 1));
    assert_eq!(
        metric(&served.broker, |m| &m.limit_refusals),
        refused as u64
    );
    // Messages for the vanished sessions are queued (within each session's queue limit) and
    // the well-behaved client is served as usual.
    assert_eq!(
        publisher
            .publish_qos1("flood/1/x", b"kept until expiry", 1)
            .await,
        ReasonCode::Success
    );
    // Two seconds after they left, every flooded session is gone.
    wait_until(
        "the flooded sessions expire",
        Duration::from_secs(6),
        || metric(&served.broker, |m| &m.sessions) == 1,
    )
    .await;
    assert_eq!(metric(&served.broker, |m| &m.subscriptions), 0);
    // With room again, a new persistent client gets in.
    let mut late = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
    let mut connect = connect_packet(ProtocolVersion::V5, "late");
    connect.properties.session_expiry_interval = Some(u32::MAX);
    assert_eq!(
        late.connect_with(connect).await.reason_code,
        ReasonCode::Success
    );
}

/// Resident memory of this process, in bytes (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_keeps_memory_bounded_and_drops_are_counted() {
    const MESSAGES: usize = 20_000;
    const PAYLOAD: usize = 4 * 1024;
    const QUEUE: usize = 100;
    let served = SecureBroker::start(BrokerConfig {
        max_queued_messages: QUEUE,
        publish_rate: None,
        // Long enough that the stalled client is still connected when the flood ends.
        write_timeout: Duration::from_secs(60),
        ..BrokerConfig::default()
    })
    .await;
    // The stalled subscriber never reads again after SUBACK.
    let mut stalled = Peer::tcp(served.tcp, ProtocolVersion::V3_1_1).await;
    stalled.connect("stalled").await;
    assert_eq!(
        stalled.subscribe("flood", QoS::AtMostOnce, 1).await,
        ReasonCode::GRANTED_QOS_0
    );
    let mut healthy = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
    healthy.connect("healthy").await;
    assert_eq!(
        healthy.subscribe("flood", QoS::AtLeastOnce, 1).await,
        ReasonCode::GrantedQoS1
    );
    let reader = tokio::spawn(async move {
        let mut received = 0usize;
        loop {
            let p = healthy.expect_publish().await;
            received += 1;
            if &p.payload[..] == b"end" {
                // Hand the connection back so it stays open until the end of the test.
                return (received, healthy);
            }
        }
    });
    let before = resident_bytes();
    let mut publisher = Peer::tcp(served.tcp, ProtocolVersion::V5).await;
    publisher.connect("publisher").await;
    let payload = vec![0x5A; PAYLOAD];
    let started = Instant::now();
    for _ in 0..MESSAGES {
        publisher
            .send(&Packet::Publish(publish(
                "flood",
                &payload,
                QoS::AtMostOnce,
                0,
            )))
            .await;
    }
    assert_eq!(
        publisher.publish_qos1("flood", b"end", 1).await,
        ReasonCode::Success
    );
    let publish_time = started.elapsed();
    let (received, _healthy) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the healthy subscriber gets the end marker")
        .expect("reader task");
    let growth = resident_bytes().saturating_sub(before);
    let flooded = (MESSAGES * PAYLOAD) as u64;
    // The flood is 80 MiB; what the broker may hold for the stalled client is its queue
    // (100 x 4 KiB) plus one write batch: a few MiB with allocator slack.
    assert!(
        growth < 32 * 1024 * 1024,
        "memory grew by {} MiB for a {} MiB flood",
        growth >> 20,
        flooded >> 20
    );
    let dropped = metric(&served.broker, |m| &m.messages_dropped);
    // Everything beyond the queue and what the kernel buffers for the socket was dropped.
    assert!(
        dropped >= (MESSAGES / 2) as u64,
        "only {dropped} drops counted, publishing took {publish_time:?}"
    );
    assert_eq!(
        metric(&served.broker, |m| &m.queue_qos0_dropped_messages_limit),
        dropped,
        "every drop was a QoS 0 copy at the message limit"
    );
    assert!(received > 0);
    // The stalled client is still connected: it was slowed, not served at others' expense.
    assert_eq!(metric(&served.broker, |m| &m.connections_current), 3);
}

/// A publisher's acknowledgement may wait for the turn of the subscriber its message woke
/// (`router/answer_turn.rs`): over real sockets, every PUBACK still comes back while the only
/// subscriber reads nothing and the broker's write to it cannot finish. (That such a
/// subscriber is not waited for at all, rather than until the publisher's next timer, is
/// checked by the unit tests of `answer_turn.rs`: here it only shows as time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_is_acknowledged_while_its_only_subscriber_has_stopped_reading() {
    const MESSAGES: u16 = 400;
    const PAYLOAD: usize = 64 * 1024;
    let served = SecureBroker::start(BrokerConfig {
        publish_rate: None,
        // Far longer than the test may take: an acknowledgement that waited for the stalled
        // subscriber's write would wait this long, and `publish_qos1` gives up after 5 s.
        write_timeout: Duration::from_secs(120),
        ..BrokerConfig::default()
    })
    .await;
    let mut stalled = Peer::tcp(served.tcp, ProtocolVersion::V3_1_1).await;
    stalled.connect("stalled").await;
    assert_eq!(
        stalled.subscribe("lone", QoS::AtMostOnce, 1).await,
        ReasonCode::GRANTED_QOS_0
    );
    let mut publisher = Peer::tcp(served.tcp, ProtocolVersion::V3_1_1).await;
    publisher.connect("publisher").await;
    let payload = vec![0xA5; PAYLOAD];
    // One at a time, each a batch of its own: the case where the acknowledgement may wait.
    for id in 1..=MESSAGES {
        assert_eq!(
            publisher.publish_qos1("lone", &payload, id).await,
            ReasonCode::Success,
            "message {id}"
        );
    }
    // 25 MiB cannot fit the stalled client's socket buffers: the broker's write to it stopped
    // (what did not fit its queue either was dropped), and the publisher was answered anyway.
    assert!(metric(&served.broker, |m| &m.messages_dropped) > 0);
}
