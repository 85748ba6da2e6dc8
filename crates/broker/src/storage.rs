//! Where the broker persists what must survive a restart: sessions, their subscriptions and
//! queued messages, retained messages and pending wills. `Storage` is a small trait of
//! write-through operations, each returning `Result` so that a disk store can report failure
//! (and the broker then refuses to acknowledge what it could not persist). Two
//! implementations live here: `MemoryStorage`, which keeps everything in maps (useful in tests
//! and for a broker that needs no durability), and `NoStorage`, which forgets everything.
//!
//! Times are stored as `Instant`s because that is what the broker works with; a disk store
//! converts them to wall-clock deadlines when it writes and back when it loads.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mquictt_protocol::session::SessionState;
use mquictt_protocol::{TopicFilter, TopicName};

use crate::message::Message;
use crate::registry::PendingWill;
use crate::session::Outgoing;
use crate::subscriptions::Subscription;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backing store could not be read or written.
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data could not be understood.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store is unusable because an earlier operation panicked while holding it.
    #[error("storage is poisoned by an earlier failure")]
    Poisoned,
}

/// One persisted session with everything that belongs to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Session expiry interval.
    pub expiry: Duration,
    /// Subscriptions by filter.
    pub subscriptions: BTreeMap<TopicFilter, Subscription>,
    /// Queued messages by sequence number.
    pub queued: BTreeMap<u64, Outgoing>,
    /// A will waiting for its delay.
    pub will: Option<PendingWill>,
    /// Unfinished QoS 1/2 exchanges in both directions, as the session left them.
    pub delivery_state: SessionState,
}

/// Everything a store holds, as loaded at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Sessions by client identifier.
    pub sessions: HashMap<String, StoredSession>,
    /// Retained messages by topic.
    pub retained: HashMap<TopicName, Message>,
}

/// Persistence for broker state. Every method persists one change before returning.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates or updates a session's expiry. Creating it does not touch its subscriptions,
    /// queue or will.
    fn save_session(&self, client_id: &str, expiry: Duration) -> Result<(), StorageError>;
    /// Removes a session and everything that belongs to it.
    fn remove_session(&self, client_id: &str) -> Result<(), StorageError>;
    /// Adds or replaces a subscription.
    fn save_subscription(
        &self,
        client_id: &str,
        subscription: &Subscription,
    ) -> Result<(), StorageError>;
    /// Removes a subscription.
    fn remove_subscription(
        &self,
        client_id: &str,
        filter: &TopicFilter,
    ) -> Result<(), StorageError>;
    /// Appends a message to a session's queue under `seq`.
    fn save_queued(
        &self,
        client_id: &str,
        seq: u64,
        outgoing: &Outgoing,
    ) -> Result<(), StorageError>;
    /// Removes a queued message (delivered, dropped or expired).
    fn remove_queued(&self, client_id: &str, seq: u64) -> Result<(), StorageError>;
    /// Replaces a session's unfinished QoS 1/2 exchanges (saved when its connection ends).
    fn save_delivery_state(
        &self,
        client_id: &str,
        state: &SessionState,
    ) -> Result<(), StorageError>;
    /// Stores or replaces the retained message of its topic.
    fn save_retained(&self, message: &Message) -> Result<(), StorageError>;
    /// Removes the retained message of a topic.
    fn remove_retained(&self, topic: &TopicName) -> Result<(), StorageError>;
    /// Stores a will waiting for its delay.
    fn save_will(&self, client_id: &str, will: &PendingWill) -> Result<(), StorageError>;
    /// Removes a pending will (published or cancelled).
    fn remove_will(&self, client_id: &str) -> Result<(), StorageError>;
    /// Everything stored, for recovery at start-up.
    fn load(&self) -> Result<StoredState, StorageError>;
}

/// A store that keeps nothing: every write succeeds and `load` finds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStorage;

impl Storage for NoStorage {
    fn save_session(&self, _: &str, _: Duration) -> Result<(), StorageError> {
        Ok(())
    }
    fn remove_session(&self, _: &str) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_subscription(&self, _: &str, _: &Subscription) -> Result<(), StorageError> {
        Ok(())
    }
    fn remove_subscription(&self, _: &str, _: &TopicFilter) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_queued(&self, _: &str, _: u64, _: &Outgoing) -> Result<(), StorageError> {
        Ok(())
    }
    fn remove_queued(&self, _: &str, _: u64) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_delivery_state(&self, _: &str, _: &SessionState) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_retained(&self, _: &Message) -> Result<(), StorageError> {
        Ok(())
    }
    fn remove_retained(&self, _: &TopicName) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_will(&self, _: &str, _: &PendingWill) -> Result<(), StorageError> {
        Ok(())
    }
    fn remove_will(&self, _: &str) -> Result<(), StorageError> {
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

    fn with_session(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut StoredSession),
    ) -> Result<(), StorageError> {
        let mut state = self.state()?;
        change(state.sessions.entry(client_id.to_owned()).or_default());
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn save_session(&self, client_id: &str, expiry: Duration) -> Result<(), StorageError> {
        self.with_session(client_id, |s| s.expiry = expiry)
    }

    fn remove_session(&self, client_id: &str) -> Result<(), StorageError> {
        self.state()?.sessions.remove(client_id);
        Ok(())
    }

    fn save_subscription(
        &self,
        client_id: &str,
        subscription: &Subscription,
    ) -> Result<(), StorageError> {
        self.with_session(client_id, |s| {
            s.subscriptions
                .insert(subscription.filter.clone(), subscription.clone());
        })
    }

    fn remove_subscription(
        &self,
        client_id: &str,
        filter: &TopicFilter,
    ) -> Result<(), StorageError> {
        if let Some(session) = self.state()?.sessions.get_mut(client_id) {
            session.subscriptions.remove(filter);
        }
        Ok(())
    }

    fn save_queued(
        &self,
        client_id: &str,
        seq: u64,
        outgoing: &Outgoing,
    ) -> Result<(), StorageError> {
        self.with_session(client_id, |s| {
            s.queued.insert(seq, outgoing.clone());
        })
    }

    fn remove_queued(&self, client_id: &str, seq: u64) -> Result<(), StorageError> {
        if let Some(session) = self.state()?.sessions.get_mut(client_id) {
            session.queued.remove(&seq);
        }
        Ok(())
    }

    fn save_delivery_state(
        &self,
        client_id: &str,
        state: &SessionState,
    ) -> Result<(), StorageError> {
        self.with_session(client_id, |s| s.delivery_state = state.clone())
    }

    fn save_retained(&self, message: &Message) -> Result<(), StorageError> {
        self.state()?
            .retained
            .insert(message.topic.clone(), message.clone());
        Ok(())
    }

    fn remove_retained(&self, topic: &TopicName) -> Result<(), StorageError> {
        self.state()?.retained.remove(topic);
        Ok(())
    }

    fn save_will(&self, client_id: &str, will: &PendingWill) -> Result<(), StorageError> {
        self.with_session(client_id, |s| s.will = Some(will.clone()))
    }

    fn remove_will(&self, client_id: &str) -> Result<(), StorageError> {
        if let Some(session) = self.state()?.sessions.get_mut(client_id) {
            session.will = None;
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
    use crate::session::WillSpec;
    use bytes::Bytes;
    use mquictt_protocol::{QoS, SubscriptionOptions};
    use std::sync::Arc;
    use std::time::Instant;

    fn message(topic: &str) -> Message {
        Message::new(
            TopicName::new(topic).unwrap(),
            Bytes::from_static(b"p"),
            QoS::AtLeastOnce,
            true,
        )
    }

    fn exercise(store: &dyn Storage) -> StoredState {
        let filter = TopicFilter::new("a/+").unwrap();
        let subscription = Subscription {
            filter: filter.clone(),
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            identifier: Some(3),
        };
        let outgoing = Outgoing {
            message: Arc::new(message("a/b")),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_identifiers: vec![3],
            shared: None,
        };
        store.save_session("c", Duration::from_secs(60)).unwrap();
        store.save_subscription("c", &subscription).unwrap();
        store.save_queued("c", 1, &outgoing).unwrap();
        store.save_queued("c", 2, &outgoing).unwrap();
        store.remove_queued("c", 1).unwrap();
        store
            .save_will(
                "c",
                &PendingWill {
                    will: WillSpec {
                        message: message("will"),
                        delay: Duration::from_secs(5),
                        expiry: None,
                    },
                    publish_at: Instant::now(),
                },
            )
            .unwrap();
        let state = SessionState {
            inbound_awaiting_release: vec![mquictt_protocol::PacketId::new(4).unwrap()],
            ..SessionState::default()
        };
        store.save_delivery_state("c", &state).unwrap();
        store.save_retained(&message("r/1")).unwrap();
        store.save_retained(&message("r/2")).unwrap();
        store
            .remove_retained(&TopicName::new("r/1").unwrap())
            .unwrap();
        store.save_session("gone", Duration::from_secs(1)).unwrap();
        store.remove_session("gone").unwrap();
        store.load().unwrap()
    }

    #[test]
    fn memory_storage_keeps_every_change() {
        let state = exercise(&MemoryStorage::new());
        let session = state.sessions.get("c").unwrap();
        assert_eq!(session.expiry, Duration::from_secs(60));
        assert_eq!(session.subscriptions.len(), 1);
        assert_eq!(session.queued.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert!(session.will.is_some());
        assert_eq!(session.delivery_state.inbound_awaiting_release.len(), 1);
        assert!(!state.sessions.contains_key("gone"));
        assert_eq!(state.retained.len(), 1);
        assert!(state.retained.contains_key(&TopicName::new("r/2").unwrap()));
    }

    #[test]
    fn no_storage_accepts_everything_and_keeps_nothing() {
        assert_eq!(exercise(&NoStorage), StoredState::default());
    }
}
