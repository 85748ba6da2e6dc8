//! Keeps data-stream subscribers out of storage. A data stream's subscriptions and queue live
//! exactly as long as the stream (see `subscriber.rs`), so persisting them would only write
//! state that is gone before it could ever be restored. [`PersistentSessionsOnly`] wraps the
//! broker's store and passes on every change except those keyed by a data-stream subscriber;
//! retained messages and loading are passed on unchanged.

use std::sync::Arc;
use std::time::Duration;

use mquictt_protocol::session::SessionState;
use mquictt_protocol::{TopicFilter, TopicName};

use super::subscriber::is_data_stream;
use crate::message::Message;
use crate::registry::PendingWill;
use crate::session::Outgoing;
use crate::storage::{Storage, StorageError, StoredState};
use crate::subscriptions::Subscription;

/// A store that ignores the transient sessions of data streams.
#[derive(Debug)]
pub(crate) struct PersistentSessionsOnly(pub(crate) Arc<dyn Storage>);

impl PersistentSessionsOnly {
    /// `inner` behind the filter.
    pub(crate) fn wrap(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
        Arc::new(Self(inner))
    }

    fn unless_transient(
        &self,
        client_id: &str,
        write: impl FnOnce(&dyn Storage) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if is_data_stream(client_id) {
            return Ok(());
        }
        write(self.0.as_ref())
    }
}

impl Storage for PersistentSessionsOnly {
    fn save_session(&self, client_id: &str, expiry: Duration) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.save_session(client_id, expiry))
    }
    fn remove_session(&self, client_id: &str) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.remove_session(client_id))
    }
    fn save_subscription(
        &self,
        client_id: &str,
        subscription: &Subscription,
    ) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.save_subscription(client_id, subscription))
    }
    fn remove_subscription(
        &self,
        client_id: &str,
        filter: &TopicFilter,
    ) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.remove_subscription(client_id, filter))
    }
    fn save_queued(
        &self,
        client_id: &str,
        seq: u64,
        outgoing: &Outgoing,
    ) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.save_queued(client_id, seq, outgoing))
    }
    fn remove_queued(&self, client_id: &str, seq: u64) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.remove_queued(client_id, seq))
    }
    fn save_delivery_state(
        &self,
        client_id: &str,
        state: &SessionState,
    ) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.save_delivery_state(client_id, state))
    }
    fn save_retained(&self, message: &Message) -> Result<(), StorageError> {
        self.0.save_retained(message)
    }
    fn remove_retained(&self, topic: &TopicName) -> Result<(), StorageError> {
        self.0.remove_retained(topic)
    }
    fn save_will(&self, client_id: &str, will: &PendingWill) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.save_will(client_id, will))
    }
    fn remove_will(&self, client_id: &str) -> Result<(), StorageError> {
        self.unless_transient(client_id, |s| s.remove_will(client_id))
    }
    fn load(&self) -> Result<StoredState, StorageError> {
        self.0.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ConnectionId;
    use crate::storage::MemoryStorage;

    #[test]
    fn data_stream_sessions_are_not_stored() {
        let memory = Arc::new(MemoryStorage::new());
        let filtered = PersistentSessionsOnly::wrap(memory.clone());
        let stream = super::super::subscriber::data_stream_subscriber("c", ConnectionId(1), 4);
        filtered.save_session(&stream, Duration::ZERO).unwrap();
        filtered.save_session("c", Duration::from_secs(60)).unwrap();
        let stored = memory.load().unwrap();
        assert_eq!(stored.sessions.len(), 1);
        assert!(stored.sessions.contains_key("c"));
    }
}
