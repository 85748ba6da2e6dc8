//! The router's back-pressure, driven directly: a subscriber's queue crossing its high-water
//! mark (in messages or in bytes) pauses the publisher, draining it to the low-water mark ends
//! the pause, and a subscriber that made no progress for the bound, or the publisher's own
//! queue, pauses nobody.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mquictt_protocol::{QoS, SubscriptionOptions, TopicFilter, TopicName};

use super::backpressure::PAUSE_BOUND;
use super::*;
use crate::message::Message;
use crate::{AllowAll, MemoryStorage};

/// Queue limit 8: high-water mark 4, low-water mark 2.
fn router() -> Router {
    router_with(BrokerConfig {
        max_queued_messages: 8,
        ..BrokerConfig::default()
    })
}

fn router_with(config: BrokerConfig) -> Router {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let journal = Journal::new(Arc::new(MemoryStorage::new()), None, metrics.clone()).unwrap();
    Router::new(config, Arc::new(journal), Arc::new(AllowAll), metrics)
}

/// Attaches `client` with a QoS 0 subscription to `topic`; returns its connection.
fn subscriber(router: &mut Router, client: &ClientId, topic: &str, now: Instant) -> ConnectionId {
    let attachment = router.attach(
        client,
        true,
        Duration::ZERO,
        None,
        Arc::new(ConnectionSignal::default()),
        now,
    );
    let codes = router.subscribe(
        client,
        None,
        vec![SubscribeRequest {
            filter: TopicFilter::new(topic).unwrap(),
            options: SubscriptionOptions::default(),
        }],
        None,
        now,
    );
    assert!(!codes[0].is_error());
    attachment.connection
}

fn message(publisher: &ClientId) -> Arc<Message> {
    let mut message = Message::new(
        TopicName::new("t").unwrap(),
        Bytes::from_static(b"m"),
        QoS::AtMostOnce,
        false,
    );
    message.publisher = Some(publisher.clone());
    Arc::new(message)
}

#[tokio::test]
async fn a_congested_subscriber_pauses_its_publisher_until_it_drains() {
    let now = Instant::now();
    let mut router = router();
    let sub: ClientId = Arc::from("sub");
    let publisher: ClientId = Arc::from("pub");
    let connection = subscriber(&mut router, &sub, "t", now);
    for _ in 0..3 {
        assert!(router
            .publish(message(&publisher), now, None)
            .pause
            .is_none());
    }
    let mut pause = router
        .publish(message(&publisher), now, None)
        .pause
        .expect("the fourth message reaches the high-water mark");
    assert_eq!(pause.until, now + PAUSE_BOUND);
    // Down to 3: still above the low-water mark, the publisher stays paused.
    assert_eq!(taken(&mut router, &sub, connection, now), 1);
    let waiting = tokio::time::timeout(Duration::from_millis(50), pause.drained()).await;
    assert!(waiting.is_err(), "woken before the queue drained");
    // Down to 2: the congestion ends and the publisher may read again.
    assert_eq!(taken(&mut router, &sub, connection, now), 1);
    tokio::time::timeout(Duration::from_secs(5), pause.drained())
        .await
        .expect("woken once the queue drained");
}

#[test]
fn a_subscriber_that_stays_congested_stops_pausing_publishers() {
    let now = Instant::now();
    let mut router = router();
    let sub: ClientId = Arc::from("sub");
    let publisher: ClientId = Arc::from("pub");
    subscriber(&mut router, &sub, "t", now);
    for _ in 0..3 {
        router.publish(message(&publisher), now, None);
    }
    assert!(router
        .publish(message(&publisher), now, None)
        .pause
        .is_some());
    let later = now + PAUSE_BOUND;
    for _ in 0..10 {
        assert!(router
            .publish(message(&publisher), later, None)
            .pause
            .is_none());
    }
    // Beyond the queue limit messages are dropped as before.
    assert_eq!(Metrics::get(&router.metrics.messages_dropped), 6);
}

#[test]
fn a_slow_subscriber_that_makes_progress_keeps_pausing_publishers() {
    let now = Instant::now();
    let mut router = router();
    let sub: ClientId = Arc::from("sub");
    let publisher: ClientId = Arc::from("pub");
    let connection = subscriber(&mut router, &sub, "t", now);
    for _ in 0..4 {
        router.publish(message(&publisher), now, None);
    }
    let later = now + PAUSE_BOUND;
    assert_eq!(taken(&mut router, &sub, connection, later), 1);
    let pause = router.publish(message(&publisher), later, None).pause;
    assert_eq!(pause.map(|p| p.until), Some(later + PAUSE_BOUND));
}

#[test]
fn a_client_is_not_paused_by_its_own_queue() {
    let now = Instant::now();
    let mut router = router();
    let client: ClientId = Arc::from("echo");
    subscriber(&mut router, &client, "t", now);
    for _ in 0..8 {
        assert!(router.publish(message(&client), now, None).pause.is_none());
    }
}

#[tokio::test]
async fn a_queue_of_few_large_messages_pauses_its_publisher_too() {
    let now = Instant::now();
    // 8 messages or 1,000 bytes: the byte marks are 500 and 250.
    let mut router = router_with(BrokerConfig {
        max_queued_messages: 8,
        max_queued_bytes: 1_000,
        ..BrokerConfig::default()
    });
    let sub: ClientId = Arc::from("sub");
    let publisher: ClientId = Arc::from("pub");
    let connection = subscriber(&mut router, &sub, "t", now);
    let large = || {
        let mut message = Message::new(
            TopicName::new("t").unwrap(),
            Bytes::from(vec![0u8; 400]),
            QoS::AtMostOnce,
            false,
        );
        message.publisher = Some(publisher.clone());
        Arc::new(message)
    };
    assert!(router.publish(large(), now, None).pause.is_none());
    let mut pause = router
        .publish(large(), now, None)
        .pause
        .expect("two messages are past half the bytes, though far below half the count");
    // One left, 401 bytes: above a quarter of the bytes, the publisher stays paused.
    assert_eq!(taken(&mut router, &sub, connection, now), 1);
    let waiting = tokio::time::timeout(Duration::from_millis(50), pause.drained()).await;
    assert!(waiting.is_err(), "woken before the queue drained");
    assert_eq!(taken(&mut router, &sub, connection, now), 1);
    tokio::time::timeout(Duration::from_secs(5), pause.drained())
        .await
        .expect("woken once the queue drained");
}

/// How many messages `take_queued` hands over one at a time to `sub`'s connection.
fn taken(router: &mut Router, sub: &ClientId, connection: ConnectionId, now: Instant) -> usize {
    let mut taken = Vec::new();
    router.take_queued(sub, connection, 0, 1, now, &mut taken);
    taken.len()
}
