//! Unit tests of the journal: group commits, exact tickets, failed commits, the quota, and
//! changes cancelled before they reach the disk.

use super::*;
use crate::message::ClientId;
use crate::storage::{MemoryStorage, StoredState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A durable-looking store in memory whose commits can be made to fail.
#[derive(Debug, Default)]
struct FlakyStorage {
    inner: MemoryStorage,
    fail: AtomicBool,
    commits: Mutex<Vec<usize>>,
    /// Held by a test to keep the committer inside `commit`.
    gate: Mutex<()>,
}

impl Storage for FlakyStorage {
    fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        drop(self.gate.lock().unwrap());
        if self.fail.load(Ordering::SeqCst) {
            return Err(StorageError::Io(std::io::Error::other("disk full")));
        }
        self.commits.lock().unwrap().push(changes.len());
        self.inner.commit(changes)
    }
    fn load(&self) -> Result<StoredState, StorageError> {
        self.inner.load()
    }
    fn is_durable(&self) -> bool {
        true
    }
    fn stored_bytes(&self) -> u64 {
        self.inner
            .load()
            .map_or(0, |s| s.sessions.len() as u64 * 100)
    }
}

fn session(n: usize) -> Change {
    Change::Session {
        client_id: ClientId::from(format!("c{n}")),
        expiry: Duration::from_secs(60),
        expires_at: None,
    }
}

#[tokio::test]
async fn tickets_complete_once_the_group_is_committed() {
    let storage = Arc::new(FlakyStorage::default());
    let journal = Journal::new(storage.clone(), None, Arc::default()).unwrap();
    let mut tickets = Vec::new();
    for n in 0..100 {
        journal.record(session(n));
        tickets.push(journal.ticket());
    }
    for ticket in &mut tickets {
        ticket.wait().await.unwrap();
    }
    assert_eq!(storage.load().unwrap().sessions.len(), 100);
    let commits = storage.commits.lock().unwrap().clone();
    assert_eq!(commits.iter().sum::<usize>(), 100);
    assert!(commits.len() < 100, "changes were grouped: {commits:?}");
}

#[tokio::test]
async fn a_failed_commit_fails_its_tickets_and_later_ones_succeed() {
    let storage = Arc::new(FlakyStorage::default());
    let journal = Journal::new(storage.clone(), None, Arc::default()).unwrap();
    storage.fail.store(true, Ordering::SeqCst);
    let mut failed = CommitTicket::done();
    journal.record_into(session(1), &mut failed);
    assert!(matches!(failed.wait().await, Err(CommitFailure::Failed(_))));
    assert_eq!(
        failed.outcome().unwrap().unwrap_err().reason_code(),
        ReasonCode::UnspecifiedError
    );
    storage.fail.store(false, Ordering::SeqCst);
    // A ticket from `record_into` answers for exactly the batch holding its change.
    journal.record(session(2));
    let mut exact = CommitTicket::done();
    journal.record_into(session(3), &mut exact);
    exact.wait().await.unwrap();
    let state = storage.load().unwrap();
    assert!(
        !state.sessions.contains_key("c1"),
        "nothing of a failed batch"
    );
    assert!(state.sessions.contains_key("c2"));
    assert!(state.sessions.contains_key("c3"));
}

#[tokio::test]
async fn quota_refuses_once_reached() {
    let storage = Arc::new(FlakyStorage::default());
    let metrics = Arc::new(Metrics::default());
    let journal = Journal::new(storage.clone(), Some(250), metrics.clone()).unwrap();
    for n in 0..2 {
        journal.admit().unwrap();
        journal.record(session(n));
    }
    journal.ticket().wait().await.unwrap();
    journal.admit().unwrap();
    journal.record(session(3));
    journal.ticket().wait().await.unwrap();
    let refused = journal.admit().unwrap_err();
    assert_eq!(refused.reason_code(), ReasonCode::QuotaExceeded);
    assert_eq!(Metrics::get(&metrics.storage_quota_refusals), 1);
}

#[tokio::test]
async fn a_message_acknowledged_before_its_commit_never_reaches_the_disk() {
    use crate::session::Outgoing;
    use bytes::Bytes;
    use mquictt_protocol::{PacketId, QoS, TopicName};
    let storage = Arc::new(FlakyStorage::default());
    let journal = Journal::new(storage.clone(), None, Arc::default()).unwrap();
    let c = ClientId::from("c");
    let outgoing = Outgoing {
        message: Arc::new(crate::message::Message::new(
            TopicName::new("t").unwrap(),
            Bytes::from_static(b"x"),
            QoS::AtLeastOnce,
            false,
        )),
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_identifiers: Box::default(),
        shared: None,
    };
    // The committer is held in a first commit, so what follows gathers in one batch.
    let gate = storage.gate.lock().unwrap();
    journal.record(session(0));
    while !journal.shared.pending().changes.is_empty() {
        std::thread::yield_now();
    }
    journal.record(Change::Session {
        client_id: c.clone(),
        expiry: Duration::from_secs(9),
        expires_at: None,
    });
    for seq in 0..2 {
        journal.record(Change::Queued {
            client_id: c.clone(),
            seq,
            outgoing: outgoing.clone(),
        });
    }
    journal.record(Change::InFlight {
        client_id: c.clone(),
        seq: 0,
        packet_id: PacketId::new(1).unwrap(),
        stage: crate::storage::InFlightStage::Sent,
    });
    journal.record(Change::RemoveQueued {
        client_id: c.clone(),
        seq: 0,
    });
    let mut ticket = journal.ticket();
    drop(gate);
    ticket.wait().await.unwrap();
    let state = storage.load().unwrap();
    let queued = &state.sessions.get("c").unwrap().queued;
    assert_eq!(queued.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(
        *storage.commits.lock().unwrap(),
        [1, 2],
        "message 0 was neither written nor removed"
    );
}

#[test]
fn memory_storage_is_written_inline() {
    let storage = Arc::new(MemoryStorage::new());
    let journal = Journal::new(storage.clone(), None, Arc::default()).unwrap();
    journal.record(session(1));
    assert_eq!(journal.ticket().outcome(), Some(Ok(())));
    assert_eq!(storage.load().unwrap().sessions.len(), 1);
}

#[test]
fn dropping_the_journal_commits_what_is_pending() {
    let storage = Arc::new(FlakyStorage::default());
    let journal = Journal::new(storage.clone(), None, Arc::default()).unwrap();
    for n in 0..10 {
        journal.record(session(n));
    }
    drop(journal);
    assert_eq!(storage.load().unwrap().sessions.len(), 10);
}
