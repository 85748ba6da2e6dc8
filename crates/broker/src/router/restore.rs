//! Rebuilding the router from storage at start-up: retained messages, and every stored session
//! with its subscriptions, queued messages, in-flight exchanges, inbound QoS 2 identifiers and
//! pending will. What expired while the broker was down is purged from memory and storage:
//! messages, retained messages, and sessions whose expiry passed (the deadline is stored as
//! wall-clock time when the session goes offline, so downtime counts; a session that was
//! online when the broker stopped counts its expiry from the restart).

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
    /// Sessions purged, with their queues, because their expiry passed while the broker was
    /// down.
    pub(crate) expired_sessions: usize,
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
        let mut wills_of_ended = Vec::new();
        for (client_id, stored) in stored.sessions {
            let client_id = ClientId::from(client_id);
            let expires_at = stored
                .expires_at
                .unwrap_or_else(|| now.checked_add(stored.expiry).unwrap_or(now));
            if expires_at <= now {
                // "The Client and Server MUST store the Session State after the Network
                // Connection is closed" only "as long as" the Session Expiry Interval lasts
                // (4.1): it ended while the broker was down, with everything queued for it.
                restored.expired_sessions += 1;
                self.record(Change::RemoveSession {
                    client_id: client_id.clone(),
                });
                // A will is sent when its delay passes "or the Session ends, whichever happens
                // first" (3.1.3.2.2): both happened while the broker was down.
                if let Some(pending) = stored.will {
                    wills_of_ended.push(pending.will.release(now));
                }
                continue;
            }
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
            self.registry.restore(session, will, expires_at);
            self.delivery_states.insert(client_id, delivery);
            restored.sessions += 1;
        }
        // Published once every surviving session and subscription is back.
        for will in wills_of_ended {
            self.route(Arc::new(will), now);
        }
        Metrics::add(&self.metrics.messages_expired, restored.expired as u64);
        self.update_gauges();
        restored
    }
}
