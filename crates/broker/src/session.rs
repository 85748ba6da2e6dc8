//! What the broker keeps for one client between connections (4.1): its subscriptions, its
//! session expiry, and the bounded queue of messages waiting for delivery while it is offline
//! or its inflight window is full. The QoS 1/2 exchange state of a connection belongs to the
//! protocol crate's session machine; this file only holds broker-side data.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_protocol::{Publish, QoS, TopicFilter};

use crate::config::DropPolicy;
use crate::message::{ClientId, Message};
use crate::subscriptions::{Delivery, Subscription};

/// A message on its way to one subscriber, with the per-subscriber QoS, RETAIN flag and
/// subscription identifiers decided by routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message, shared with every other subscriber's copy.
    pub message: Arc<Message>,
    /// QoS for this subscriber.
    pub qos: QoS,
    /// RETAIN flag for this subscriber.
    pub retain: bool,
    /// Subscription identifiers for this subscriber.
    pub subscription_identifiers: Vec<u32>,
    /// The shared subscription this copy was picked for, if any; such a copy may be handed to
    /// another member of the group if this subscriber leaves without acknowledging it.
    pub shared: Option<TopicFilter>,
}

impl Outgoing {
    /// The copy that `delivery` describes.
    pub fn new(message: Arc<Message>, delivery: Delivery) -> Self {
        Self {
            message,
            qos: delivery.qos,
            retain: delivery.retain,
            subscription_identifiers: delivery.subscription_identifiers,
            shared: delivery.shared,
        }
    }

    /// The PUBLISH for this copy at `now`, without a packet identifier.
    pub fn to_publish(&self, now: Instant) -> Publish {
        self.message.to_publish(
            self.qos,
            self.retain,
            self.subscription_identifiers.clone(),
            now,
        )
    }
}

/// What happened to a message offered to a full or non-full queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued under this sequence number.
    Queued(u64),
    /// The queue was full and the new message was dropped.
    DroppedNewest,
    /// The queue was full; the oldest message (with its sequence number) made room for the
    /// new one, queued under the second number.
    DroppedOldest {
        /// Sequence number of the message that was dropped.
        dropped: u64,
        /// Sequence number of the new message.
        queued: u64,
    },
}

/// A bounded FIFO of messages for one client. Every entry has a sequence number so that
/// storage can refer to it.
#[derive(Debug, Clone)]
pub struct MessageQueue {
    entries: VecDeque<(u64, Outgoing)>,
    limit: usize,
    policy: DropPolicy,
    next_seq: u64,
    dropped: u64,
}

impl MessageQueue {
    /// An empty queue holding at most `limit` messages.
    pub fn new(limit: usize, policy: DropPolicy) -> Self {
        Self {
            entries: VecDeque::new(),
            limit,
            policy,
            next_seq: 0,
            dropped: 0,
        }
    }

    /// Offers a message; applies the drop policy when the queue is full.
    pub fn push(&mut self, outgoing: Outgoing) -> Enqueued {
        if self.entries.len() >= self.limit {
            self.dropped += 1;
            match self.policy {
                DropPolicy::DropNewest => return Enqueued::DroppedNewest,
                DropPolicy::DropOldest => {
                    let Some((dropped, _)) = self.entries.pop_front() else {
                        // A zero limit: nothing to make room with.
                        return Enqueued::DroppedNewest;
                    };
                    let queued = self.append(outgoing);
                    return Enqueued::DroppedOldest { dropped, queued };
                }
            }
        }
        Enqueued::Queued(self.append(outgoing))
    }

    fn append(&mut self, outgoing: Outgoing) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_back((seq, outgoing));
        seq
    }

    /// Puts back a message loaded from storage under its original sequence number.
    pub fn restore(&mut self, seq: u64, outgoing: Outgoing) {
        self.next_seq = self.next_seq.max(seq + 1);
        self.entries.push_back((seq, outgoing));
    }

    /// The next message that has not expired, with its sequence number. Expired ones are
    /// dropped on the way [MQTT-3.3.2-5] and returned in `expired` for storage cleanup.
    pub fn pop(&mut self, now: Instant, expired: &mut Vec<u64>) -> Option<(u64, Outgoing)> {
        while let Some((seq, outgoing)) = self.entries.pop_front() {
            if outgoing.message.is_expired(now) {
                expired.push(seq);
                continue;
            }
            return Some((seq, outgoing));
        }
        None
    }

    /// Like [`pop`](Self::pop), but leaves the next unexpired message in place unless
    /// `admit` accepts it, so a caller with limited send quota keeps the order.
    pub fn pop_if(
        &mut self,
        now: Instant,
        expired: &mut Vec<u64>,
        admit: impl FnOnce(&Outgoing) -> bool,
    ) -> Option<(u64, Outgoing)> {
        while self
            .entries
            .front()
            .is_some_and(|(_, o)| o.message.is_expired(now))
        {
            if let Some((seq, _)) = self.entries.pop_front() {
                expired.push(seq);
            }
        }
        if !self.entries.front().is_some_and(|(_, o)| admit(o)) {
            return None;
        }
        self.entries.pop_front()
    }

    /// Removes and returns every message copied for a shared subscription, so they can be
    /// offered to another member of the group.
    pub fn take_shared(&mut self) -> Vec<(u64, Outgoing)> {
        let (shared, own): (VecDeque<_>, VecDeque<_>) = self
            .entries
            .drain(..)
            .partition(|(_, o)| o.shared.is_some());
        self.entries = own;
        shared.into()
    }

    /// Removes every message.
    pub fn drain(&mut self) -> Vec<(u64, Outgoing)> {
        self.entries.drain(..).collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages dropped because the queue was full, since the session began.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The will a connection left behind, with the delay before it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillSpec {
    /// The will as an application message (publisher set to the client), without an expiry
    /// deadline yet.
    pub message: Message,
    /// Will Delay Interval (5.0); zero before 5.0.
    pub delay: Duration,
    /// The will's Message Expiry Interval, which starts when the will is published.
    pub expiry: Option<Duration>,
}

impl WillSpec {
    /// The will as published at `now`, its expiry counted from this moment.
    pub fn release(self, now: Instant) -> Message {
        let mut message = self.message;
        message.expires_at = self.expiry.map(|interval| now + interval);
        message
    }
}

/// One client's session state on the broker side.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client identifier the session belongs to.
    pub client_id: ClientId,
    /// Subscriptions by their full filter (including any `$share/` prefix).
    pub subscriptions: BTreeMap<TopicFilter, Subscription>,
    /// Messages waiting for delivery.
    pub queue: MessageQueue,
    /// How long the session outlives its connection; zero ends it with the connection.
    pub expiry: Duration,
}

impl Session {
    /// A new, empty session.
    pub fn new(
        client_id: ClientId,
        expiry: Duration,
        queue_limit: usize,
        policy: DropPolicy,
    ) -> Self {
        Self {
            client_id,
            subscriptions: BTreeMap::new(),
            queue: MessageQueue::new(queue_limit, policy),
            expiry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mquictt_protocol::TopicName;

    fn outgoing(payload: &'static [u8], shared: bool) -> Outgoing {
        Outgoing {
            message: Arc::new(Message::new(
                TopicName::new("t").unwrap(),
                Bytes::from_static(payload),
                QoS::AtLeastOnce,
                false,
            )),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_identifiers: Vec::new(),
            shared: shared.then(|| TopicFilter::new("$share/g/t").unwrap()),
        }
    }

    fn payloads(queue: &mut MessageQueue) -> Vec<Bytes> {
        let mut expired = Vec::new();
        std::iter::from_fn(|| queue.pop(Instant::now(), &mut expired))
            .map(|(_, o)| o.message.payload.clone())
            .collect()
    }

    #[test]
    fn drop_newest_keeps_what_was_queued_first() {
        let mut queue = MessageQueue::new(2, DropPolicy::DropNewest);
        assert_eq!(queue.push(outgoing(b"1", false)), Enqueued::Queued(0));
        assert_eq!(queue.push(outgoing(b"2", false)), Enqueued::Queued(1));
        assert_eq!(queue.push(outgoing(b"3", false)), Enqueued::DroppedNewest);
        assert_eq!(queue.dropped(), 1);
        assert_eq!(payloads(&mut queue), ["1", "2"]);
    }

    #[test]
    fn drop_oldest_makes_room() {
        let mut queue = MessageQueue::new(2, DropPolicy::DropOldest);
        queue.push(outgoing(b"1", false));
        queue.push(outgoing(b"2", false));
        assert_eq!(
            queue.push(outgoing(b"3", false)),
            Enqueued::DroppedOldest {
                dropped: 0,
                queued: 2
            }
        );
        assert_eq!(queue.dropped(), 1);
        assert_eq!(payloads(&mut queue), ["2", "3"]);
    }

    #[test]
    fn expired_messages_are_skipped_and_reported() {
        let now = Instant::now();
        let mut queue = MessageQueue::new(10, DropPolicy::DropNewest);
        let mut stale = outgoing(b"old", false);
        let mut message = (*stale.message).clone();
        message.expires_at = Some(now);
        stale.message = Arc::new(message);
        queue.push(stale);
        queue.push(outgoing(b"fresh", false));
        let mut expired = Vec::new();
        let (seq, next) = queue.pop(now, &mut expired).unwrap();
        assert_eq!((seq, &next.message.payload[..]), (1, &b"fresh"[..]));
        assert_eq!(expired, vec![0]);
    }

    #[test]
    fn pop_if_keeps_a_message_that_is_not_admitted() {
        let mut queue = MessageQueue::new(10, DropPolicy::DropNewest);
        queue.push(outgoing(b"1", false));
        let mut expired = Vec::new();
        assert!(queue
            .pop_if(Instant::now(), &mut expired, |_| false)
            .is_none());
        assert_eq!(queue.len(), 1);
        assert!(queue
            .pop_if(Instant::now(), &mut expired, |_| true)
            .is_some());
        assert!(queue.is_empty());
    }

    #[test]
    fn shared_copies_can_be_taken_out() {
        let mut queue = MessageQueue::new(10, DropPolicy::DropNewest);
        queue.push(outgoing(b"own", false));
        queue.push(outgoing(b"group", true));
        let taken = queue.take_shared();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, 1);
        assert_eq!(payloads(&mut queue), ["own"]);
    }

    #[test]
    fn restored_entries_keep_their_numbers() {
        let mut queue = MessageQueue::new(10, DropPolicy::DropNewest);
        queue.restore(41, outgoing(b"a", false));
        assert_eq!(queue.push(outgoing(b"b", false)), Enqueued::Queued(42));
        assert_eq!(queue.drain().len(), 2);
        assert!(queue.is_empty());
    }
}
