//! The durable store against the in-memory model: whatever sequence of changes is committed,
//! reopening the file loads what `MemoryStorage` holds after the same changes; removing a
//! session touches no other client (not even one whose identifier starts the same); the byte
//! count follows inserts and removes; a damaged file is moved aside or refused as configured.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mquictt_broker::message::{ClientId, Message};
use mquictt_broker::session::Outgoing;
use mquictt_broker::storage::{Change, InFlightStage, StoredState};
use mquictt_broker::{MemoryStorage, Storage, Subscription};
use mquictt_protocol::{PacketId, QoS, SubscriptionOptions, TopicFilter, TopicName};
use mquictt_store::{DurableStorage, OnCorrupt, StoreError, STORE_FILE};

fn message(topic: &str, payload: Vec<u8>, qos: QoS) -> Arc<Message> {
    let mut m = Message::new(
        TopicName::new(topic).unwrap(),
        Bytes::from(payload),
        qos,
        false,
    );
    m.publisher = Some("publisher".into());
    Arc::new(m)
}

fn outgoing(n: u64) -> Outgoing {
    Outgoing {
        message: message("t/x", n.to_be_bytes().to_vec(), QoS::ExactlyOnce),
        qos: if n.is_multiple_of(2) {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        },
        retain: false,
        subscription_identifiers: Box::new([1]),
        shared: None,
    }
}

/// A deterministic mixed sequence of every kind of change over a few clients.
fn changes() -> Vec<Change> {
    let clients: Vec<ClientId> = ["c", "c2", "cc", "other"].map(ClientId::from).to_vec();
    let mut changes = Vec::new();
    for client in &clients {
        changes.push(Change::Session {
            client_id: client.clone(),
            expiry: Duration::from_secs(3600),
            expires_at: None,
        });
        changes.push(Change::Subscription {
            client_id: client.clone(),
            subscription: Subscription {
                filter: TopicFilter::new("t/#").unwrap(),
                options: SubscriptionOptions::with_qos(QoS::ExactlyOnce),
                identifier: Some(1),
            },
        });
    }
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for seq in 0..400u64 {
        let client = clients[(next() % 4) as usize].clone();
        changes.push(Change::Queued {
            client_id: client.clone(),
            seq,
            outgoing: outgoing(seq),
        });
        match next() % 5 {
            0 => changes.push(Change::InFlight {
                client_id: client.clone(),
                seq,
                packet_id: PacketId::new((seq % 60_000 + 1) as u16).unwrap(),
                stage: InFlightStage::Sent,
            }),
            1 => {
                changes.push(Change::InFlight {
                    client_id: client.clone(),
                    seq,
                    packet_id: PacketId::new(7).unwrap(),
                    stage: InFlightStage::Released,
                });
            }
            2 => changes.push(Change::RemoveQueued {
                client_id: client.clone(),
                seq,
            }),
            _ => {}
        }
        if seq.is_multiple_of(17) {
            changes.push(Change::InboundAwaitingRelease {
                client_id: client.clone(),
                packet_id: PacketId::new((seq + 1) as u16).unwrap(),
            });
        }
        if seq.is_multiple_of(34) {
            changes.push(Change::RemoveInbound {
                client_id: client,
                packet_id: PacketId::new((seq + 1) as u16).unwrap(),
            });
        }
        if seq.is_multiple_of(50) {
            changes.push(Change::Retained(message(
                &format!("r/{}", seq % 3),
                vec![1; 10],
                QoS::AtLeastOnce,
            )));
        }
    }
    changes.push(Change::RemoveRetained(TopicName::new("r/1").unwrap()));
    changes.push(Change::RemoveSubscription {
        client_id: "cc".into(),
        filter: TopicFilter::new("t/#").unwrap(),
    });
    changes.push(Change::RemoveSession {
        client_id: "c".into(),
    });
    changes
}

fn open(dir: &Path) -> DurableStorage {
    DurableStorage::open(dir, OnCorrupt::Refuse).unwrap().0
}

#[test]
fn reopened_store_loads_what_the_model_holds() {
    let dir = tempfile::tempdir().unwrap();
    let changes = changes();
    let model = MemoryStorage::new();
    {
        let store = open(dir.path());
        for group in changes.chunks(37) {
            store.commit(group).unwrap();
            model.commit(group).unwrap();
        }
    }
    let loaded = open(dir.path()).load().unwrap();
    let expected: StoredState = model.load().unwrap();
    assert_eq!(loaded, expected);
    assert!(!loaded.sessions.contains_key("c"), "session c was removed");
    for other in ["c2", "cc", "other"] {
        assert!(
            !loaded.sessions[other].queued.is_empty(),
            "removing `c` left {other} alone"
        );
    }
}

#[test]
fn stored_bytes_follow_the_messages_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let c: ClientId = "c".into();
    store
        .commit(&[Change::Session {
            client_id: c.clone(),
            expiry: Duration::from_secs(60),
            expires_at: None,
        }])
        .unwrap();
    assert_eq!(store.stored_bytes(), 0);
    let queued = |seq| Change::Queued {
        client_id: c.clone(),
        seq,
        outgoing: outgoing(seq),
    };
    store.commit(&[queued(1), queued(2)]).unwrap();
    let two = store.stored_bytes();
    assert!(two > 2 * 8, "{two}");
    store
        .commit(&[Change::RemoveQueued {
            client_id: c.clone(),
            seq: 1,
        }])
        .unwrap();
    assert_eq!(store.stored_bytes(), two / 2);
    drop(store);
    let reopened = open(dir.path());
    assert_eq!(reopened.stored_bytes(), two / 2, "counted again at open");
    reopened
        .commit(&[Change::RemoveSession { client_id: c }])
        .unwrap();
    assert_eq!(reopened.stored_bytes(), 0);
}

#[test]
fn a_zero_filled_store_is_moved_aside_and_an_empty_one_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.commit(&changes()).unwrap();
    }
    let file = dir.path().join(STORE_FILE);
    let len = std::fs::metadata(&file).unwrap().len();
    // What a power cut during a careless write can leave behind.
    std::fs::write(&file, vec![0u8; len as usize]).unwrap();

    let refused = DurableStorage::open(dir.path(), OnCorrupt::Refuse).unwrap_err();
    assert!(matches!(refused, StoreError::Corrupt { .. }), "{refused}");
    assert!(refused.to_string().contains("damaged"), "{refused}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        len,
        "left in place"
    );

    let (store, moved) = DurableStorage::open(dir.path(), OnCorrupt::MoveAside).unwrap();
    let moved = moved.expect("the damaged file was moved aside");
    assert!(moved.to.exists(), "{:?}", moved.to);
    assert!(moved
        .to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("mquictt.redb.corrupt-"));
    assert_eq!(store.load().unwrap(), StoredState::default());
}

#[test]
fn a_store_in_use_is_an_error_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let second = DurableStorage::open(dir.path(), OnCorrupt::MoveAside).unwrap_err();
    assert!(matches!(second, StoreError::InUse { .. }), "{second}");
    assert!(dir.path().join(STORE_FILE).exists());
}

#[test]
fn an_offline_sessions_deadline_survives_as_wall_clock_time() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::Instant::now();
    {
        let store = open(dir.path());
        store
            .commit(&[
                Change::Session {
                    client_id: "passed".into(),
                    expiry: Duration::from_secs(1),
                    expires_at: Some(now),
                },
                Change::Session {
                    client_id: "ahead".into(),
                    expiry: Duration::from_secs(3600),
                    expires_at: Some(now + Duration::from_secs(3600)),
                },
                Change::Session {
                    client_id: "online".into(),
                    expiry: Duration::from_secs(60),
                    expires_at: Some(now),
                },
                // Taken again by a connection: no deadline any more.
                Change::Session {
                    client_id: "online".into(),
                    expiry: Duration::from_secs(60),
                    expires_at: None,
                },
            ])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let loaded = open(dir.path()).load().unwrap();
    let after = std::time::Instant::now();
    let passed = loaded.sessions["passed"].expires_at.unwrap();
    assert!(passed <= after, "a passed deadline loads as passed");
    let ahead = loaded.sessions["ahead"].expires_at.unwrap();
    let left = ahead - after;
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    assert_eq!(loaded.sessions["online"].expires_at, None);
}
