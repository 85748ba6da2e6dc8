//! Group commit: the router and the connection drivers record changes here, cheaply and
//! without blocking, and a committer thread hands everything recorded while the previous
//! commit ran to the [`Storage`] in one atomic, synced commit. Whoever must not answer a client
//! before its change is durable (PUBACK, PUBREC, SUBACK, a PUBREL or PUBCOMP that frees an
//! identifier) takes a [`CommitTicket`] and awaits it; so many connections share one sync, and
//! the async runtime never waits for the disk. A store that is not durable is written inline
//! and its tickets are complete at once. The journal also enforces the disk quota.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use mquictt_protocol::ReasonCode;
use tokio::sync::watch;

use super::{Change, Storage, StorageError};
use crate::message::ClientId;
use crate::metrics::Metrics;
use crate::peer_keyed::PeerKeyedMap;

/// Why the commit that a ticket waits for did not make its changes durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitFailure {
    /// The disk quota was reached.
    #[error("storage quota exceeded")]
    QuotaExceeded,
    /// The store failed to write or sync.
    #[error("storage commit failed: {0}")]
    Failed(Arc<str>),
    /// The broker stopped before the commit ran.
    #[error("storage closed before the commit")]
    Closed,
}

impl CommitFailure {
    /// The MQTT 5 reason code that refuses what could not be stored: 0x97 Quota exceeded or
    /// 0x80 Unspecified error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::QuotaExceeded => ReasonCode::QuotaExceeded,
            Self::Failed(_) | Self::Closed => ReasonCode::UnspecifiedError,
        }
    }
}

impl From<&StorageError> for CommitFailure {
    fn from(error: &StorageError) -> Self {
        match error {
            StorageError::QuotaExceeded { .. } => Self::QuotaExceeded,
            other => Self::Failed(other.to_string().into()),
        }
    }
}

type Outcome = Option<Result<(), CommitFailure>>;

/// A claim on the outcome of the commits holding some changes: complete once they are all
/// durable, failed as soon as one of them failed. Usually one commit; two when the committer
/// took a batch while the changes were being recorded.
#[derive(Debug, Clone, Default)]
pub struct CommitTicket {
    /// The batches, oldest first, by generation.
    batches: Vec<(u64, watch::Receiver<Outcome>)>,
    /// Set for a message whose every stored copy may be acknowledged by its receiver before
    /// the commit: true once they all were, which settles the ticket as a success.
    delivered: Option<watch::Receiver<bool>>,
}

impl CommitTicket {
    /// A ticket with nothing to wait for.
    pub fn done() -> Self {
        Self::default()
    }

    fn of(generation: u64, batch: watch::Receiver<Outcome>) -> Self {
        Self {
            batches: vec![(generation, batch)],
            delivered: None,
        }
    }

    /// This ticket, or success as soon as `delivered` turns true: a message every persistent
    /// receiver has acknowledged is safe without the disk.
    pub fn or_delivered(mut self, delivered: watch::Receiver<bool>) -> Self {
        self.delivered = Some(delivered);
        self
    }

    /// Adds the batch `generation` unless the ticket already covers it. A ticket answers for
    /// its newest few batches: its owner records within one short call, which a committer
    /// never outruns by that many commits, and a ticket collected over a long time stays small.
    fn cover(&mut self, generation: u64, signal: &watch::Sender<Outcome>) {
        const NEWEST: usize = 8;
        if self.batches.last().is_some_and(|(g, _)| *g == generation) {
            return;
        }
        if self.batches.len() == NEWEST {
            self.batches.remove(0);
        }
        self.batches.push((generation, signal.subscribe()));
    }

    /// A ticket on a commit the caller completes through the returned sender.
    #[cfg(test)]
    pub(crate) fn pending_for_test() -> (Self, watch::Sender<Outcome>) {
        let (sender, receiver) = watch::channel(None);
        (Self::of(0, receiver), sender)
    }

    /// This ticket and `other`: complete when both are.
    pub fn and(mut self, other: CommitTicket) -> Self {
        // Delivery settles one message, not two.
        self.delivered = None;
        for batch in other.batches {
            if !self.batches.iter().any(|(g, _)| *g == batch.0) {
                self.batches.push(batch);
            }
        }
        self
    }

    /// The outcome if it is known: a failure as soon as one commit failed, success once all
    /// succeeded.
    pub fn outcome(&self) -> Option<Result<(), CommitFailure>> {
        if self.delivered.as_ref().is_some_and(|d| *d.borrow()) {
            return Some(Ok(()));
        }
        let mut finished = true;
        for (_, batch) in &self.batches {
            match &*batch.borrow() {
                Some(Err(failure)) => return Some(Err(failure.clone())),
                Some(Ok(())) => {}
                None => finished = false,
            }
        }
        finished.then_some(Ok(()))
    }

    /// Waits for the commits to finish, or for delivery when that settles the ticket.
    pub async fn wait(&mut self) -> Result<(), CommitFailure> {
        let Some(mut delivered) = self.delivered.clone() else {
            return self.wait_committed().await;
        };
        tokio::select! {
            committed = self.wait_committed() => committed,
            // An error means the copies went without being delivered: the commit decides.
            Ok(_) = delivered.wait_for(|d| *d) => Ok(()),
        }
    }

    async fn wait_committed(&mut self) -> Result<(), CommitFailure> {
        for (_, batch) in &mut self.batches {
            let outcome = match batch.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone(),
                Err(_) => None,
            };
            outcome.unwrap_or(Err(CommitFailure::Closed))?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Pending {
    /// Changes in order; `None` where a change was cancelled before it was committed.
    changes: Vec<Option<Change>>,
    /// Positions of pending `Queued` and `InFlight` changes by (client, sequence number), so
    /// that a message acknowledged before its commit never reaches the disk at all.
    queued_at: PeerKeyedMap<(ClientId, u64), Vec<usize>>,
    /// Bytes the pending changes add, for the quota until the store counts them.
    bytes: u64,
    /// Completes the batch that `changes` will be committed in.
    signal: watch::Sender<Outcome>,
    /// Number of the batch that `changes` will be committed in.
    generation: u64,
    /// The outcome of the batch being committed (or the last one), with its number; `None`
    /// before the first.
    last: Option<(u64, watch::Receiver<Outcome>)>,
    /// Bytes of the batch being committed.
    committing_bytes: u64,
    stopping: bool,
}

impl Pending {
    /// Cancels the pending changes of one queued message; true when its `Queued` was among
    /// them, so the removal need not be written either.
    fn cancel(&mut self, client_id: &ClientId, seq: u64) -> bool {
        let Some(positions) = self.queued_at.remove(&(client_id.clone(), seq)) else {
            return false;
        };
        let mut queued = false;
        for position in positions {
            if let Some(slot) = self.changes.get_mut(position) {
                if let Some(change @ Change::Queued { .. }) = slot {
                    queued = true;
                    self.bytes = self.bytes.saturating_sub(change.added_bytes());
                }
                *slot = None;
            }
        }
        queued
    }
}

#[derive(Debug)]
struct Shared {
    storage: Arc<dyn Storage>,
    quota: Option<u64>,
    metrics: Arc<Metrics>,
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Nothing panics while holding this lock (pushes and swaps only), but a poisoned lock
        // still holds consistent data.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The broker's way to its storage. See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Journal {
    shared: Arc<Shared>,
    durable: bool,
    committer: Option<JoinHandle<()>>,
}

impl Journal {
    /// A journal over `storage`, refusing new messages once `quota` bytes are stored. A durable
    /// store gets a committer thread.
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        quota: Option<u64>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let durable = storage.is_durable();
        let (signal, _) = watch::channel(None);
        Metrics::set(&metrics.storage_bytes, storage.stored_bytes());
        let shared = Arc::new(Shared {
            storage,
            quota,
            metrics,
            pending: Mutex::new(Pending {
                changes: Vec::new(),
                queued_at: PeerKeyedMap::default(),
                bytes: 0,
                signal,
                generation: 0,
                last: None,
                committing_bytes: 0,
                stopping: false,
            }),
            wake: Condvar::new(),
        });
        let committer = if durable {
            let shared = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("mquictt-commit".into())
                    .spawn(move || commit_loop(&shared))?,
            )
        } else {
            None
        };
        Ok(Self {
            shared,
            durable,
            committer,
        })
    }

    /// Records a change; it is committed with the next group.
    pub(crate) fn record(&self, change: Change) {
        if self.durable {
            let mut pending = self.shared.pending();
            Self::push(&self.shared, &mut pending, change);
        } else {
            self.write_inline(&change);
        }
    }

    /// Records a change and extends `ticket` to the commit it will be in, so that `ticket`
    /// answers for exactly the batches holding what its owner recorded.
    pub(crate) fn record_into(&self, change: Change, ticket: &mut CommitTicket) {
        if !self.durable {
            self.write_inline(&change);
            return;
        }
        let mut pending = self.shared.pending();
        ticket.cover(pending.generation, &pending.signal);
        Self::push(&self.shared, &mut pending, change);
    }

    /// Whether changes wait for a group commit (so tickets can be pending).
    pub(crate) fn is_durable(&self) -> bool {
        self.durable
    }

    fn write_inline(&self, change: &Change) {
        if let Err(e) = self.shared.storage.commit(std::slice::from_ref(change)) {
            tracing::warn!(error = %e, "storage write failed");
            Metrics::add(&self.shared.metrics.storage_commit_failures, 1);
        }
    }

    fn push(shared: &Shared, pending: &mut Pending, change: Change) {
        if pending.changes.is_empty() {
            shared.wake.notify_one();
        }
        let position = pending.changes.len();
        match &change {
            Change::Queued { client_id, seq, .. } | Change::InFlight { client_id, seq, .. } => {
                pending
                    .queued_at
                    .entry((client_id.clone(), *seq))
                    .or_default()
                    .push(position);
            }
            // Queued and acknowledged within one commit window: a subscriber that keeps up
            // costs the disk nothing.
            Change::RemoveQueued { client_id, seq } if pending.cancel(client_id, *seq) => return,
            _ => {}
        }
        pending.bytes += change.added_bytes();
        pending.changes.push(Some(change));
    }

    /// A ticket covering every change recorded so far.
    pub(crate) fn ticket(&self) -> CommitTicket {
        if !self.durable {
            return CommitTicket::done();
        }
        let pending = self.shared.pending();
        // Batches commit in order, so the pending one completes after every earlier one; the
        // batch being committed is covered too, since a change recorded just before this call
        // may be in it.
        let mut ticket = match &pending.last {
            Some((generation, batch)) => CommitTicket::of(*generation, batch.clone()),
            None => CommitTicket::done(),
        };
        if !pending.changes.is_empty() {
            ticket.cover(pending.generation, &pending.signal);
        }
        ticket
    }

    /// Refuses new messages once the quota is reached. The check comes before a message is
    /// routed, so the quota can be passed by at most one message's copies.
    pub(crate) fn admit(&self) -> Result<(), StorageError> {
        let Some(quota) = self.shared.quota else {
            return Ok(());
        };
        let in_journal = {
            let pending = self.shared.pending();
            pending.bytes + pending.committing_bytes
        };
        let used = self.shared.storage.stored_bytes() + in_journal;
        if used >= quota {
            Metrics::add(&self.shared.metrics.storage_quota_refusals, 1);
            return Err(StorageError::QuotaExceeded { used, quota });
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shared.pending().stopping = true;
        self.shared.wake.notify_one();
        if let Some(committer) = self.committer.take() {
            // The committer finishes the batch it holds (one sync) and what is pending, so a
            // store reopened after the broker is dropped sees every acknowledged change.
            let _ = committer.join();
        }
    }
}

fn commit_loop(shared: &Shared) {
    loop {
        let (changes, signal) = {
            let mut pending = shared.pending();
            while pending.changes.is_empty() && !pending.stopping {
                pending = shared
                    .wake
                    .wait(pending)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if pending.changes.is_empty() {
                return;
            }
            let (next, _) = watch::channel(None);
            let signal = std::mem::replace(&mut pending.signal, next);
            pending.last = Some((pending.generation, signal.subscribe()));
            pending.generation += 1;
            pending.committing_bytes = std::mem::take(&mut pending.bytes);
            pending.queued_at.clear();
            let changes: Vec<Change> = std::mem::take(&mut pending.changes)
                .into_iter()
                .flatten()
                .collect();
            (changes, signal)
        };
        let started = Instant::now();
        let result = if changes.is_empty() {
            Ok(())
        } else {
            shared.storage.commit(&changes)
        };
        let metrics = &shared.metrics;
        Metrics::add(&metrics.storage_commits, 1);
        Metrics::add(&metrics.storage_changes, changes.len() as u64);
        Metrics::add(
            &metrics.storage_commit_micros,
            started.elapsed().as_micros() as u64,
        );
        Metrics::set(&metrics.storage_bytes, shared.storage.stored_bytes());
        let outcome = match &result {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, changes = changes.len(), "storage commit failed; the acknowledgements it held are refused");
                Metrics::add(&metrics.storage_commit_failures, 1);
                Err(CommitFailure::from(e))
            }
        };
        shared.pending().committing_bytes = 0;
        signal.send_replace(Some(outcome));
    }
}

#[cfg(test)]
mod tests;
