//! Rebuilding the router from storage at start-up: retained messages, and every stored session
//! with its subscriptions, queued messages, in-flight exchanges, inbound QoS 2 identifiers and
//! pending will. What expired while the broker was down is purged from memory and storage.

use std::sync::Arc;
use std::time::Instant;

use super::in_flight::resume_stored;
use super::Router;
use crate::message::ClientId;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::storage::{Change, StoredState};

/// What a restore brought back, for the start-up log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    /// Sessions restored.
    pub(crate) sessions: usize,
    /// Messages restored to session queues, in flight ones included.
    pub(crate) messages: usize,
    /// Retained messages restored.
    pub(crate) retained: usize,
    /// Messages and retained messages dropped because they expired while the broker was down.
    pub(crate) expired: usize,
}

impl Router {
    /// Restores what storage kept: retained messages, and sessions (offline, with their
    /// subscriptions, queued messages, pending wills and unfinished exchanges).
    pub(crate) fn restore(&mut self, stored: StoredState, now: Instant) -> Restored {
        let mut restored = Restored::default();
        for message in stored.retained.into_values() {
            if message.is_expired(now) {
                restored.expired += 1;
                self.record(Change::RemoveRetained(message.topic.clone()));
                continue;
            }
            restored.retained += 1;
            self.retained.retain(Arc::new(message));
        }
        for (client_id, stored) in stored.sessions {
            let client_id = ClientId::from(client_id);
            let mut session =
                Session::new(client_id.clone(), stored.expiry, self.config.queue_limits());
            for subscription in stored.subscriptions.into_values() {
                self.tree.subscribe(&client_id, subscription.clone());
                session
                    .subscriptions
                    .insert(subscription.filter.clone(), subscription);
            }
            let (delivery, waiting) = resume_stored(
                stored.queued,
                stored.inbound_awaiting_release.into_iter().collect(),
                now,
            );
            restored.messages += delivery.in_flight.len();
            for (seq, outgoing) in waiting {
                // "If the Message Expiry Interval has passed and the Server has not managed
                // to start onward delivery to a matching subscriber, then it MUST delete the
                // copy of the message for that subscriber" [MQTT-3.3.2-5].
                if outgoing.message.is_expired(now) {
                    restored.expired += 1;
                    self.record(Change::RemoveQueued {
                        client_id: client_id.clone(),
                        seq,
                    });
                    continue;
                }
                restored.messages += 1;
                session.queue.restore(seq, outgoing);
            }
            let will = stored.will.map(|mut pending| {
                // A deadline from before a restart has passed; the will is due at once.
                pending.publish_at = pending.publish_at.max(now);
                pending
            });
            self.registry.restore(session, will, now);
            self.delivery_states.insert(client_id, delivery);
            restored.sessions += 1;
        }
        Metrics::add(&self.metrics.messages_expired, restored.expired as u64);
        self.update_gauges();
        restored
    }
}
