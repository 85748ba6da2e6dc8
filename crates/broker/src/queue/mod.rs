//! The bounded queue of messages waiting for one session: offline, or online with a full
//! Receive Maximum window. It is bounded in messages and in bytes, and when a new copy does
//! not fit it applies one fixed policy, chosen so that nothing acknowledged is dropped to make
//! room for something less important:
//!
//! 1. drop the oldest queued QoS 0 copy (repeatedly, until the new one fits); QoS 0 is "at
//!    most once" and was never stored;
//! 2. if no QoS 0 copy is left and the new copy is QoS 0, drop the new copy;
//! 3. a new QoS 1 or 2 copy is refused for this subscriber: it is not queued and never
//!    stored, so memory and disk agree.
//!
//! A copy always fits an empty queue, so a message larger than the byte limit still reaches a
//! subscriber that keeps up. Each entry may carry the commit its publisher is waiting for (a
//! [`PublishGate`]): a QoS 2 message is not handed out before that commit is durable, and a
//! copy whose commit failed is discarded instead of being delivered.

use std::collections::VecDeque;
use std::time::Instant;

use mquictt_protocol::QoS;

mod gate;

use gate::GateState;
pub use gate::PublishGate;

use crate::session::Outgoing;
use crate::storage::CommitTicket;

/// How much one session's queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages queued.
    pub messages: usize,
    /// Most bytes (topic and payload of each copy) queued.
    pub bytes: usize,
}

/// Which limit a full queue reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    /// `max_queued_messages`.
    Messages,
    /// `max_queued_bytes`.
    Bytes,
}

/// What happened to a copy offered to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued under `seq`; `made_room` older QoS 0 copies were dropped first, because of
    /// `full`.
    Queued {
        /// The copy's sequence number.
        seq: u64,
        /// Oldest QoS 0 copies dropped to make room.
        made_room: usize,
        /// The limit that made room necessary, if any.
        full: Option<QueueFull>,
    },
    /// A QoS 0 copy that did not fit and was dropped.
    Dropped(QueueFull),
    /// A QoS 1 or 2 copy that did not fit and was refused.
    Refused(QueueFull),
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    outgoing: Outgoing,
    gate: Option<PublishGate>,
}

/// What [`MessageQueue::pop_if`] passed over.
#[derive(Debug, Default)]
pub struct Skipped {
    /// Sequence numbers of copies whose Message Expiry Interval passed [MQTT-3.3.2-5].
    pub expired: Vec<u64>,
    /// Sequence numbers of copies whose publisher was refused because its commit failed.
    pub unstored: Vec<u64>,
    /// Set when the next copy is a QoS 2 message whose commit is still running: the queue
    /// holds until this ticket completes.
    pub waiting_for: Option<CommitTicket>,
}

/// A bounded FIFO of copies for one session. Every entry has a sequence number so that
/// storage can refer to it.
#[derive(Debug, Clone)]
pub struct MessageQueue {
    entries: VecDeque<Entry>,
    limits: QueueLimits,
    bytes: usize,
    /// QoS 0 copies queued and their bytes: what the drop policy can make room with.
    qos0: usize,
    qos0_bytes: usize,
    next_seq: u64,
    dropped: u64,
}

fn size(outgoing: &Outgoing) -> usize {
    outgoing.message.size()
}

impl MessageQueue {
    /// An empty queue bounded by `limits`.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            entries: VecDeque::new(),
            limits,
            bytes: 0,
            qos0: 0,
            qos0_bytes: 0,
            next_seq: 0,
            dropped: 0,
        }
    }

    /// Which limit one more copy of `size` bytes would pass, if any.
    fn full_for(&self, size: usize) -> Option<QueueFull> {
        if self.entries.is_empty() {
            return None;
        }
        if self.entries.len() >= self.limits.messages {
            Some(QueueFull::Messages)
        } else if self.bytes + size > self.limits.bytes {
            Some(QueueFull::Bytes)
        } else {
            None
        }
    }

    /// Offers a copy; applies the drop policy of the module documentation (`queue`) when it
    /// does not fit. `gate` is the commit its publisher waits for, if any.
    pub fn push(&mut self, outgoing: Outgoing, gate: Option<PublishGate>) -> Enqueued {
        let size = size(&outgoing);
        let first_full = self.full_for(size);
        if let Some(full) = first_full {
            // Dropping QoS 0 copies is only worth it if the new copy then fits.
            let kept = self.entries.len() - self.qos0;
            let fits_without_qos0 = kept == 0
                || (kept < self.limits.messages
                    && self.bytes - self.qos0_bytes + size <= self.limits.bytes);
            if !fits_without_qos0 {
                self.dropped += 1;
                return if outgoing.qos == QoS::AtMostOnce {
                    Enqueued::Dropped(full)
                } else {
                    Enqueued::Refused(full)
                };
            }
        }
        let mut made_room = 0;
        while self.full_for(size).is_some() && self.drop_oldest_qos0() {
            made_room += 1;
        }
        self.dropped += made_room as u64;
        Enqueued::Queued {
            seq: self.append(outgoing, gate),
            made_room,
            full: first_full,
        }
    }

    fn drop_oldest_qos0(&mut self) -> bool {
        if self.qos0 == 0 {
            return false;
        }
        let Some(position) = self
            .entries
            .iter()
            .position(|e| e.outgoing.qos == QoS::AtMostOnce)
        else {
            return false;
        };
        self.remove_at(position).is_some()
    }

    fn remove_at(&mut self, position: usize) -> Option<Entry> {
        let entry = self.entries.remove(position)?;
        self.forget(&entry);
        Some(entry)
    }

    fn forget(&mut self, entry: &Entry) {
        let size = size(&entry.outgoing);
        self.bytes = self.bytes.saturating_sub(size);
        if entry.outgoing.qos == QoS::AtMostOnce {
            self.qos0 = self.qos0.saturating_sub(1);
            self.qos0_bytes = self.qos0_bytes.saturating_sub(size);
        }
    }

    fn count(&mut self, outgoing: &Outgoing) {
        let size = size(outgoing);
        self.bytes += size;
        if outgoing.qos == QoS::AtMostOnce {
            self.qos0 += 1;
            self.qos0_bytes += size;
        }
    }

    fn append(&mut self, outgoing: Outgoing, gate: Option<PublishGate>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.count(&outgoing);
        self.entries.push_back(Entry {
            seq,
            outgoing,
            gate,
        });
        seq
    }

    /// Puts back a copy loaded from storage under its original sequence number. Limits are
    /// not applied: what was stored was promised.
    pub fn restore(&mut self, seq: u64, outgoing: Outgoing) {
        self.next_seq = self.next_seq.max(seq + 1);
        self.count(&outgoing);
        self.entries.push_back(Entry {
            seq,
            outgoing,
            gate: None,
        });
    }

    fn pop_front(&mut self) -> Option<Entry> {
        self.remove_at(0)
    }

    /// The next copy that may go out, with its sequence number, if `admit` accepts it;
    /// otherwise it stays in place so a caller with limited send quota keeps the order.
    /// Expired copies and copies whose publisher's commit failed are removed on the way and
    /// reported in `skipped`; a QoS 2 message whose commit is still running holds the queue.
    pub fn pop_if(
        &mut self,
        now: Instant,
        skipped: &mut Skipped,
        admit: impl FnOnce(&Outgoing) -> bool,
    ) -> Option<(u64, Outgoing, Option<PublishGate>)> {
        loop {
            let front = self.entries.front()?;
            if front.outgoing.message.is_expired(now) {
                skipped.expired.push(front.seq);
                self.pop_front();
                continue;
            }
            let gate = front.gate.as_ref().map(PublishGate::state);
            match gate {
                Some(GateState::Refused) => {
                    skipped.unstored.push(front.seq);
                    self.pop_front();
                    continue;
                }
                // Only QoS 2 waits: "exactly once" must not deliver what its publisher may
                // be told was refused. QoS 1 goes out at once: at least once allows the
                // copy a refused publisher sends again.
                Some(GateState::Waiting(ticket))
                    if front.outgoing.message.qos == QoS::ExactlyOnce =>
                {
                    skipped.waiting_for = Some(ticket);
                    return None;
                }
                _ => {}
            }
            if !admit(&front.outgoing) {
                return None;
            }
            return self.pop_front().map(|e| (e.seq, e.outgoing, e.gate));
        }
    }

    /// The next copy that has not expired, with its sequence number, whatever its gate.
    pub fn pop(&mut self, now: Instant, expired: &mut Vec<u64>) -> Option<(u64, Outgoing)> {
        while let Some(entry) = self.pop_front() {
            if entry.outgoing.message.is_expired(now) {
                expired.push(entry.seq);
                continue;
            }
            return Some((entry.seq, entry.outgoing));
        }
        None
    }

    /// Removes and returns every copy made for a shared subscription, so they can be offered
    /// to another member of the group.
    pub fn take_shared(&mut self) -> Vec<(u64, Outgoing)> {
        let (shared, own): (VecDeque<_>, VecDeque<_>) = self
            .entries
            .drain(..)
            .partition(|e| e.outgoing.shared.is_some());
        for entry in &shared {
            self.forget(entry);
        }
        self.entries = own;
        shared.into_iter().map(|e| (e.seq, e.outgoing)).collect()
    }

    /// Removes every copy.
    pub fn drain(&mut self) -> Vec<(u64, Outgoing)> {
        self.bytes = 0;
        self.qos0 = 0;
        self.qos0_bytes = 0;
        self.entries
            .drain(..)
            .map(|e| (e.seq, e.outgoing))
            .collect()
    }

    /// Copies waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the copies waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lets go of the room a burst left, once the queue is empty: a queue keeps the largest
    /// capacity it ever needed (up to `max_queued_messages` entries of 56 bytes) until told
    /// otherwise. A queue still holding messages keeps its room, as shrinking it would copy
    /// them only to grow again.
    pub fn release_room(&mut self) {
        if self.entries.is_empty() {
            self.entries = VecDeque::new();
        }
    }

    /// Entries the queue has room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Copies dropped or refused because the queue was full, since the session began.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests;
