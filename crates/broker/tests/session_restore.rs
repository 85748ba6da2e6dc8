//! Start-up from stored state over real sockets: a session whose stored expiry deadline
//! passed while the broker was down is purged with its queue, and its pending will is
//! published then ("until the Will Delay Interval has passed or the Session ends, whichever
//! happens first", 3.1.3.2.2); a session whose deadline lies ahead is kept.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::client::{connect_packet, TestClient};
use common::TestBroker;
use mquictt_broker::message::Message;
use mquictt_broker::registry::PendingWill;
use mquictt_broker::session::{Outgoing, WillSpec};
use mquictt_broker::storage::Change;
use mquictt_broker::{AllowAll, BrokerConfig, MemoryStorage, Storage, Subscription};
use mquictt_protocol::{Packet, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter, TopicName};

fn session(client: &str, expires_at: Instant) -> Vec<Change> {
    vec![
        Change::Session {
            client_id: client.into(),
            expiry: Duration::from_secs(60),
            expires_at: Some(expires_at),
        },
        Change::Subscription {
            client_id: client.into(),
            subscription: Subscription {
                filter: TopicFilter::new("#").unwrap(),
                options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                identifier: None,
            },
        },
        Change::Queued {
            client_id: client.into(),
            seq: 0,
            outgoing: Outgoing {
                message: Arc::new(Message::new(
                    TopicName::new("data").unwrap(),
                    Bytes::from_static(b"queued"),
                    QoS::AtLeastOnce,
                    false,
                )),
                qos: QoS::AtLeastOnce,
                retain: false,
                subscription_identifiers: Box::default(),
                shared: None,
            },
        },
    ]
}

#[tokio::test]
async fn a_session_that_expired_while_down_is_purged_and_its_will_sent() {
    let storage = Arc::new(MemoryStorage::new());
    let now = Instant::now();
    let mut changes = session("gone", now - Duration::from_secs(1));
    changes.push(Change::Will {
        client_id: "gone".into(),
        will: Box::new(PendingWill {
            will: WillSpec {
                message: Message::new(
                    TopicName::new("will/gone").unwrap(),
                    Bytes::from_static(b"bye"),
                    QoS::AtLeastOnce,
                    false,
                ),
                delay: Duration::from_secs(600),
                expiry: None,
            },
            publish_at: now + Duration::from_secs(600),
        }),
    });
    changes.extend(session("kept", now + Duration::from_secs(3600)));
    storage.commit(&changes).unwrap();

    let broker =
        TestBroker::with_parts(BrokerConfig::default(), storage.clone(), Arc::new(AllowAll)).await;
    let state = storage.load().unwrap();
    assert!(!state.sessions.contains_key("gone"), "purged from storage");

    let mut connect = connect_packet(ProtocolVersion::V5, "kept", false);
    connect.properties.session_expiry_interval = Some(60);
    let (mut kept, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert!(ack.session_present);
    let mut payloads = Vec::new();
    while let Some(Packet::Publish(p)) = kept.recv_within(Duration::from_millis(500)).await {
        kept.ack(&p).await;
        payloads.push(p.payload);
    }
    // Its own queued message, then the will of the session that ended.
    assert_eq!(payloads, ["queued", "bye"]);

    let mut connect = connect_packet(ProtocolVersion::V5, "gone", false);
    connect.properties.session_expiry_interval = Some(60);
    let (_, ack) = TestClient::connect_with(broker.addr, connect).await;
    assert!(!ack.session_present);
    broker.stop().await;
}
