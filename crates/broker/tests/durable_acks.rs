//! When a QoS 1 PUBACK may go out with durable storage, over real sockets, on a store whose
//! commits the test holds back: not before the message is stored for an offline persistent
//! subscriber, but at once when every persistent subscriber has already acknowledged its copy
//! (the message is then safe without the disk).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::client::{connect_packet, publish, TestClient};
use common::TestBroker;
use mquictt_broker::storage::{Change, StoredState};
use mquictt_broker::{AllowAll, BrokerConfig, MemoryStorage, Storage, StorageError};
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};

/// A durable-looking store whose commits wait while the test sets `held`.
#[derive(Debug, Default)]
struct HeldStorage {
    inner: MemoryStorage,
    held: AtomicBool,
}

impl HeldStorage {
    fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }
}

impl Storage for HeldStorage {
    fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        // Runs on the journal's committer thread, never on the test's runtime.
        while self.held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.inner.commit(changes)
    }
    fn load(&self) -> Result<StoredState, StorageError> {
        self.inner.load()
    }
    fn is_durable(&self) -> bool {
        true
    }
}

async fn persistent(broker: &TestBroker, client_id: &str) -> TestClient {
    let mut connect = connect_packet(ProtocolVersion::V5, client_id, false);
    connect.properties.session_expiry_interval = Some(300);
    let (mut client, _) = TestClient::connect_with(broker.addr, connect).await;
    client
        .subscribe("t", SubscriptionOptions::with_qos(QoS::AtLeastOnce), 1)
        .await;
    client
}

#[tokio::test]
async fn puback_waits_for_the_disk_unless_every_stored_copy_was_acknowledged() {
    let storage = Arc::new(HeldStorage::default());
    let broker =
        TestBroker::with_parts(BrokerConfig::default(), storage.clone(), Arc::new(AllowAll)).await;
    let mut online = persistent(&broker, "online").await;
    let (mut publisher, _) =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "pub", true).await;

    storage.hold(true);
    publisher
        .send(&Packet::Publish(publish("t", b"1", QoS::AtLeastOnce, 1)))
        .await;
    let copy = online.expect_publish().await;
    online.ack(&copy).await;
    match publisher.recv_within(Duration::from_secs(2)).await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::Success),
        other => panic!("PUBACK once the only stored copy was acknowledged, got {other:?}"),
    }

    // A second persistent subscriber that is offline: its copy must reach the disk first.
    storage.hold(false);
    let mut offline = persistent(&broker, "offline").await;
    offline
        .send(&Packet::Disconnect(mquictt_protocol::Disconnect::new(
            ReasonCode::Success,
        )))
        .await;
    offline.until_closed().await;
    storage.hold(true);
    publisher
        .send(&Packet::Publish(publish("t", b"2", QoS::AtLeastOnce, 2)))
        .await;
    let copy = online.expect_publish().await;
    online.ack(&copy).await;
    assert!(
        publisher
            .recv_within(Duration::from_millis(300))
            .await
            .is_none(),
        "no PUBACK while the offline subscriber's copy is not stored"
    );
    storage.hold(false);
    match publisher.recv_within(Duration::from_secs(2)).await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::Success),
        other => panic!("PUBACK after the commit, got {other:?}"),
    }
    let state = storage.load().unwrap();
    assert_eq!(state.sessions["offline"].queued.len(), 1);
    broker.stop().await;
}
