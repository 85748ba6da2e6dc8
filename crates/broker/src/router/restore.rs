//! Rebuilding the router from storage at start-up: retained messages, and every stored session
//! with its subscriptions, queued messages, pending will and unfinished exchanges.

use std::sync::Arc;
use std::time::Instant;

use super::Router;
use crate::message::ClientId;
use crate::session::Session;
use crate::storage::StoredState;

impl Router {
    /// Restores what storage kept: retained messages, and sessions (offline, with their
    /// subscriptions, queued messages, pending wills and unfinished exchanges).
    pub(crate) fn restore(&mut self, stored: StoredState, now: Instant) {
        for message in stored.retained.into_values() {
            self.retained.retain(Arc::new(message));
        }
        for (client_id, stored) in stored.sessions {
            let client_id = ClientId::from(client_id);
            let mut session = Session::new(
                client_id.clone(),
                stored.expiry,
                self.config.max_queued_messages,
                self.config.drop_policy,
            );
            for subscription in stored.subscriptions.into_values() {
                self.tree.subscribe(&client_id, subscription.clone());
                session
                    .subscriptions
                    .insert(subscription.filter.clone(), subscription);
            }
            for (seq, outgoing) in stored.queued {
                session.queue.restore(seq, outgoing);
            }
            let will = stored.will.map(|mut pending| {
                // A deadline from before a restart has passed; the will is due at once.
                pending.publish_at = pending.publish_at.max(now);
                pending
            });
            self.registry.restore(session, will, now);
            self.delivery_states
                .insert(client_id, stored.delivery_state);
        }
        self.update_gauges();
    }
}
