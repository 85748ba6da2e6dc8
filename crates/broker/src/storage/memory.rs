//! The two stores that keep nothing on disk: `MemoryStorage`, which applies every change to maps
//! (it survives connections and a broker restarted in the same process, not the process), and
//! `NoStorage`, which forgets everything.

use std::sync::{Mutex, MutexGuard};

use super::{Change, Storage, StorageError, StoredState};

/// A store that keeps nothing: every commit succeeds and `load` finds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStorage;

impl Storage for NoStorage {
    fn commit(&self, _: &[Change]) -> Result<(), StorageError> {
        Ok(())
    }

    fn load(&self) -> Result<StoredState, StorageError> {
        Ok(StoredState::default())
    }
}

/// A store in memory: survives connections, not the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    state: Mutex<StoredState>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, StoredState>, StorageError> {
        self.state.lock().map_err(|_| StorageError::Poisoned)
    }
}

impl Storage for MemoryStorage {
    fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        let mut state = self.state()?;
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    fn load(&self) -> Result<StoredState, StorageError> {
        Ok(self.state()?.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientId, Message};
    use crate::registry::PendingWill;
    use crate::session::{Outgoing, WillSpec};
    use crate::storage::InFlightStage;
    use crate::subscriptions::Subscription;
    use bytes::Bytes;
    use mquictt_protocol::{PacketId, QoS, SubscriptionOptions, TopicFilter, TopicName};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn message(topic: &str) -> Message {
        Message::new(
            TopicName::new(topic).unwrap(),
            Bytes::from_static(b"p"),
            QoS::AtLeastOnce,
            true,
        )
    }

    fn exercise(store: &dyn Storage) -> StoredState {
        let c: ClientId = "c".into();
        let subscription = Subscription {
            filter: TopicFilter::new("a/+").unwrap(),
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            identifier: Some(3),
        };
        let outgoing = Outgoing {
            message: Arc::new(message("a/b")),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_identifiers: Box::new([3]),
            shared: None,
        };
        let will = PendingWill {
            will: WillSpec {
                message: message("will"),
                delay: Duration::from_secs(5),
                expiry: None,
            },
            publish_at: Instant::now(),
        };
        let id = |n| PacketId::new(n).unwrap();
        store
            .commit(&[
                Change::Session {
                    client_id: c.clone(),
                    expiry: Duration::from_secs(60),
                    expires_at: None,
                },
                Change::Subscription {
                    client_id: c.clone(),
                    subscription,
                },
                Change::Queued {
                    client_id: c.clone(),
                    seq: 1,
                    outgoing: outgoing.clone(),
                },
                Change::Queued {
                    client_id: c.clone(),
                    seq: 2,
                    outgoing,
                },
                Change::InFlight {
                    client_id: c.clone(),
                    seq: 2,
                    packet_id: id(9),
                    stage: InFlightStage::Sent,
                },
                Change::RemoveQueued {
                    client_id: c.clone(),
                    seq: 1,
                },
                Change::Will {
                    client_id: c.clone(),
                    will: Box::new(will),
                },
                Change::InboundAwaitingRelease {
                    client_id: c.clone(),
                    packet_id: id(4),
                },
                Change::Retained(Arc::new(message("r/1"))),
                Change::Retained(Arc::new(message("r/2"))),
                Change::RemoveRetained(TopicName::new("r/1").unwrap()),
                Change::Session {
                    client_id: "gone".into(),
                    expiry: Duration::from_secs(1),
                    expires_at: None,
                },
                Change::RemoveSession {
                    client_id: "gone".into(),
                },
            ])
            .unwrap();
        store.load().unwrap()
    }

    #[test]
    fn memory_storage_keeps_every_change() {
        let state = exercise(&MemoryStorage::new());
        let session = state.sessions.get("c").unwrap();
        assert_eq!(session.expiry, Duration::from_secs(60));
        assert_eq!(session.subscriptions.len(), 1);
        assert_eq!(session.queued.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            session.queued.get(&2).unwrap().in_flight,
            Some((PacketId::new(9).unwrap(), InFlightStage::Sent))
        );
        assert!(session.will.is_some());
        assert_eq!(session.inbound_awaiting_release.len(), 1);
        assert!(!state.sessions.contains_key("gone"));
        assert_eq!(state.retained.len(), 1);
        assert!(state.retained.contains_key(&TopicName::new("r/2").unwrap()));
    }

    #[test]
    fn no_storage_accepts_everything_and_keeps_nothing() {
        assert_eq!(exercise(&NoStorage), StoredState::default());
    }
}
