//! Routing one PUBLISH: the retained store for RETAIN=1, then a copy for every matching
//! subscription, queued within the receiver's limits (oldest QoS 0 makes room, then QoS 0 is
//! dropped and QoS 1/2 refused), recorded in the journal for persistent sessions, and the
//! pause a congested receiver asks of the publisher.

use std::sync::Arc;
use std::time::Instant;

use mquictt_protocol::QoS;

use super::backpressure::Congestion;
use super::{ready, AwaitingRelease, Routed, Router};
use crate::message::Message;
use crate::metrics::Metrics;
use crate::retained::RetainOutcome;
use crate::session::{Enqueued, Outgoing, PublishGate, QueueFull};
use crate::storage::{Change, CommitTicket};
use crate::subscriptions::Delivery;

/// Receivers of one message whose room the router keeps for the next: a fan-out to more
/// leaves its larger vector to be freed rather than held for good.
const KEPT_DELIVERIES: usize = 1024;

impl Router {
    /// Routes a message: updates the retained store for RETAIN=1, then queues a copy for
    /// every matching subscription. Returns how many copies were offered and refused, so a 5.0
    /// publisher can be told 0x10 No matching subscribers or 0x97 Quota exceeded, and the
    /// commits its acknowledgement waits for. Copies of a QoS 1/2 message carry a gate on
    /// those commits, so that what the publisher is refused is not delivered (see the `queue`
    /// module).
    pub(crate) fn publish(
        &mut self,
        message: Arc<Message>,
        now: Instant,
        awaiting_release: Option<AwaitingRelease>,
    ) -> Routed {
        self.recorded = CommitTicket::done();
        self.pause = None;
        let gate = (self.journal.is_durable() && message.qos != QoS::AtMostOnce)
            .then(PublishGate::default);
        self.publishing = gate.clone();
        let qos = message.qos;
        let mut routed = self.route(message, now);
        self.publishing = None;
        if let Some(awaiting) = awaiting_release {
            if !(awaiting.refusable && routed.refused_everywhere()) {
                self.record(awaiting.change);
                routed.awaiting_release_recorded = true;
            }
        }
        routed.ticket = self.take_recorded();
        routed.pause = self.pause.take();
        if let Some(gate) = gate {
            // Set before the router is unlocked: no connection sees a copy without its gate.
            gate.set(routed.ticket.clone());
            // A QoS 1 message whose only durable records are its stored copies is safe once
            // every persistent receiver has acknowledged its copy, even before the commit: the
            // PUBACK goes out at whichever comes first (see docs/decisions.md). A retained
            // message or a QoS 2 identifier must reach the disk.
            if qos == QoS::AtLeastOnce && !routed.retained && gate.stored_copies() > 0 {
                routed.ticket = routed.ticket.or_delivered(gate.delivered());
            }
        }
        if qos != QoS::AtMostOnce && routed.refused_everywhere() {
            Metrics::add(&self.metrics.publishes_refused_queues_full, 1);
        }
        routed
    }

    pub(super) fn route(&mut self, message: Arc<Message>, now: Instant) -> Routed {
        let mut routed = Routed::default();
        if message.is_expired(now) {
            return routed;
        }
        if message.retain && self.config.retain_available {
            routed.retained = self.store_retained(&message);
        }
        let registry = &self.registry;
        let mut deliveries = std::mem::take(&mut self.deliveries);
        self.tree
            .route_into(&message, |c| ready(registry, c), &mut deliveries);
        routed.receivers = deliveries.len();
        for delivery in deliveries.drain(..) {
            if !self.deliver(message.clone(), delivery, now) {
                routed.refused += 1;
            }
        }
        // Kept for the next message unless a large fan-out grew it.
        if deliveries.capacity() <= KEPT_DELIVERIES {
            self.deliveries = deliveries;
        }
        routed
    }

    /// Updates the retained store; true when the message is now the retained one.
    pub(super) fn store_retained(&mut self, message: &Arc<Message>) -> bool {
        let outcome = self.retained.retain(message.clone());
        Metrics::set(&self.metrics.retained_messages, self.retained.len() as u64);
        let kept = matches!(outcome, RetainOutcome::Stored | RetainOutcome::Replaced);
        // The broker's own `$SYS` values are rebuilt after a restart; they are not persisted.
        if message.publisher.is_none() && message.topic.is_system() {
            return kept;
        }
        match outcome {
            RetainOutcome::Stored | RetainOutcome::Replaced => {
                self.record(Change::Retained(message.clone()));
            }
            RetainOutcome::Deleted => self.record(Change::RemoveRetained(message.topic.clone())),
            RetainOutcome::Unchanged => {}
        }
        kept
    }

    /// Queues one copy in the receiver's session and wakes its driver; false when the
    /// receiver's queue was full and the copy was dropped or refused. Offline sessions keep
    /// QoS 1 and 2 copies only; QoS 0 is "at most once" and is not held for absent clients.
    pub(super) fn deliver(
        &mut self,
        message: Arc<Message>,
        delivery: Delivery,
        now: Instant,
    ) -> bool {
        let client = delivery.client.clone();
        // A client receiving its own messages is not paused for its own queue: while paused
        // it would not read the acknowledgements that drain it.
        let own = message.publisher.as_ref() == Some(&client);
        // The session and its connection's link, looked up once and held to the end, apart
        // from the router's other fields.
        let found = self.registry.session_and_link_mut(&client);
        let online = found.as_ref().is_some_and(|(_, link)| link.is_some());
        if !online && delivery.qos == QoS::AtMostOnce {
            return true;
        }
        if message.is_expired(now) {
            Metrics::add(&self.metrics.messages_expired, 1);
            return true;
        }
        let Some((session, link)) = found else {
            return true;
        };
        let persisted = session.persists();
        let outgoing = Outgoing::new(message, delivery);
        // QoS 0 is "at most once": it is never stored.
        let stored = (persisted && outgoing.qos != QoS::AtMostOnce).then(|| outgoing.clone());
        let metrics = &self.metrics;
        let gate = self.publishing.clone();
        let pushed = session.queue.push(outgoing, gate.clone());
        let congested = self
            .watermarks
            .congested(session.queue.len(), session.queue.bytes());
        let queued = match pushed {
            Enqueued::Queued {
                seq,
                made_room,
                full,
            } => {
                if made_room > 0 {
                    let counter = match full {
                        Some(QueueFull::Bytes) => &metrics.queue_qos0_dropped_bytes_limit,
                        _ => &metrics.queue_qos0_dropped_messages_limit,
                    };
                    Metrics::add(counter, made_room as u64);
                    Metrics::add(&metrics.messages_dropped, made_room as u64);
                }
                if let Some(outgoing) = stored {
                    if let Some(gate) = &gate {
                        gate.add_stored_copy();
                    }
                    let change = Change::Queued {
                        client_id: client.clone(),
                        seq,
                        outgoing,
                    };
                    self.journal.record_into(change, &mut self.recorded);
                }
                true
            }
            Enqueued::Dropped(full) => {
                Metrics::add(
                    match full {
                        QueueFull::Messages => &metrics.queue_qos0_dropped_messages_limit,
                        QueueFull::Bytes => &metrics.queue_qos0_dropped_bytes_limit,
                    },
                    1,
                );
                Metrics::add(&metrics.messages_dropped, 1);
                tracing::debug!(client = %client, ?full, "session queue full, QoS 0 copy dropped");
                false
            }
            Enqueued::Refused(full) => {
                Metrics::add(
                    match full {
                        QueueFull::Messages => &metrics.queue_refused_messages_limit,
                        QueueFull::Bytes => &metrics.queue_refused_bytes_limit,
                    },
                    1,
                );
                Metrics::add(&metrics.messages_dropped, 1);
                tracing::debug!(client = %client, ?full, "session queue full, QoS 1/2 copy refused");
                false
            }
        };
        if let Some(link) = link {
            if queued {
                link.signal.wake_after_unlock();
            }
            if congested {
                let congestion = link
                    .congestion
                    .get_or_insert_with(|| Box::new(Congestion::new(now)));
                if self.pause.is_none() && !own {
                    self.pause = congestion.pause(now);
                }
            }
        }
        queued
    }
}
