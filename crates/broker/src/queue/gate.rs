//! The gate every copy of one QoS 1/2 message carries: the group commit its publisher's
//! acknowledgement waits for, and the count of copies stored for persistent receivers that
//! they have not acknowledged yet. The queue asks it whether a copy may go out; the publisher's
//! ticket may be settled by delivery instead of the disk.

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::storage::CommitTicket;

/// The group commit a publisher's acknowledgement waits for, shared by every copy of its
/// message. Set by routing once the commit holding the copies is known, before any
/// connection can take one of them. It also counts the stored copies not yet acknowledged
/// by their receivers: once every one is, the message is no longer at risk, whatever the
/// commit does (see [`delivered`](Self::delivered)).
#[derive(Debug, Clone)]
pub struct PublishGate(Arc<GateInner>);

#[derive(Debug)]
struct GateInner {
    ticket: OnceLock<CommitTicket>,
    stored_copies: AtomicUsize,
    /// Set once every stored copy was acknowledged.
    all_delivered: AtomicBool,
    /// What a publisher's acknowledgement waiting for that moment watches. Made only for
    /// such an acknowledgement: most messages have no persistent receiver, and a channel
    /// made and dropped for each of them cost about 700 instructions per QoS 1 message
    /// (docs/benchmarks.md, *Instructions per routed message*).
    delivered: OnceLock<watch::Sender<bool>>,
}

impl Default for PublishGate {
    fn default() -> Self {
        Self(Arc::new(GateInner {
            ticket: OnceLock::new(),
            stored_copies: AtomicUsize::new(0),
            all_delivered: AtomicBool::new(false),
            delivered: OnceLock::new(),
        }))
    }
}

impl PublishGate {
    /// Fixes the commit the copies depend on; later calls change nothing.
    pub fn set(&self, ticket: CommitTicket) {
        // A second call would carry the same commit: routing sets the gate once.
        let _ = self.0.ticket.set(ticket);
    }

    /// Counts one more copy stored for a persistent receiver.
    pub fn add_stored_copy(&self) {
        self.0.stored_copies.fetch_add(1, Ordering::AcqRel);
    }

    /// Stored copies counted so far.
    pub fn stored_copies(&self) -> usize {
        self.0.stored_copies.load(Ordering::Acquire)
    }

    /// A receiver acknowledged its stored copy; the last one marks the message delivered.
    pub fn copy_delivered(&self) {
        if self.0.stored_copies.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_delivered.store(true, Ordering::SeqCst);
            // Paired with the fence in `delivered`: either that call sees the flag, or this
            // one sees its channel.
            fence(Ordering::SeqCst);
            if let Some(delivered) = self.0.delivered.get() {
                delivered.send_replace(true);
            }
        }
    }

    /// Becomes true once every stored copy was acknowledged by its receiver; ends (with an
    /// error on the receiving side) if the copies are dropped first.
    pub fn delivered(&self) -> watch::Receiver<bool> {
        let sender = self.0.delivered.get_or_init(|| watch::channel(false).0);
        let receiver = sender.subscribe();
        fence(Ordering::SeqCst);
        if self.0.all_delivered.load(Ordering::SeqCst) {
            sender.send_replace(true);
        }
        receiver
    }

    pub(super) fn state(&self) -> GateState {
        if self.0.all_delivered.load(Ordering::Acquire) {
            // The publisher may have been told success on delivery: the rest follows.
            return GateState::Open;
        }
        let Some(ticket) = self.0.ticket.get() else {
            return GateState::Waiting(CommitTicket::done());
        };
        match ticket.outcome() {
            None => GateState::Waiting(ticket.clone()),
            Some(Ok(())) => GateState::Open,
            Some(Err(_)) => GateState::Refused,
        }
    }
}

pub(super) enum GateState {
    Waiting(CommitTicket),
    Open,
    Refused,
}
