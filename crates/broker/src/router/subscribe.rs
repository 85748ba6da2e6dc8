//! The router's answers to SUBSCRIBE and UNSUBSCRIBE: availability, limit and authorization
//! checks per filter, the granted QoS, the subscription tree and session updates, and the
//! retained messages a new subscription receives as its Retain Handling option directs
//! (3.8.3.1) and the ACL lets it read.

use std::time::Instant;

use mquictt_protocol::{ReasonCode, RetainHandling, TopicFilter};

use super::{Router, SubscribeRequest};
use crate::auth::Principal;
use crate::limits::topic_within_limits;
use crate::message::ClientId;
use crate::metrics::Metrics;
use crate::storage::{Change, CommitTicket};
use crate::subscriptions::{Delivery, Subscription};

impl Router {
    /// Applies the filters of one SUBSCRIBE and returns one reason code per filter, in order
    /// [MQTT-3.8.4-6]. Matching retained messages are queued for the client as Retain
    /// Handling directs (3.8.3.1). `take_recorded` then tells whether SUBACK must wait for a
    /// commit.
    pub(crate) fn subscribe(
        &mut self,
        client_id: &ClientId,
        username: Option<&str>,
        requests: Vec<SubscribeRequest>,
        identifier: Option<u32>,
        now: Instant,
    ) -> Vec<ReasonCode> {
        self.recorded = CommitTicket::done();
        let mut codes = Vec::with_capacity(requests.len());
        for request in requests {
            let code = self.subscribe_one(client_id, username, request, identifier, now);
            codes.push(code);
        }
        self.update_gauges();
        codes
    }

    fn subscribe_one(
        &mut self,
        client_id: &ClientId,
        username: Option<&str>,
        request: SubscribeRequest,
        identifier: Option<u32>,
        now: Instant,
    ) -> ReasonCode {
        let filter = request.filter;
        // A QUIC data stream subscribes on behalf of its client.
        let principal = Principal {
            client_id: crate::quic::subscriber::owner(client_id),
            username,
        };
        // "0x8F Topic Filter invalid: The Topic Filter is correctly formed but is not allowed
        // for this Client" (3.9.3): too long or too deep for this broker.
        if !topic_within_limits(filter.filter(), &self.config) {
            Metrics::add(&self.metrics.limit_refusals, 1);
            return ReasonCode::TopicFilterInvalid;
        }
        if filter.share_name().is_some() && !self.config.shared_subscription_available {
            return ReasonCode::SharedSubscriptionsNotSupported;
        }
        if filter.has_wildcards() && !self.config.wildcard_subscription_available {
            return ReasonCode::WildcardSubscriptionsNotSupported;
        }
        if !self.authenticator.authorize_subscribe(&principal, &filter) {
            Metrics::add(&self.metrics.authorization_denials, 1);
            return ReasonCode::NotAuthorized;
        }
        let session_subscriptions = self
            .registry
            .session(client_id)
            .map(|s| (s.subscriptions.len(), s.subscriptions.contains_key(&filter)));
        if let Some((count, replaces)) = session_subscriptions {
            if !replaces && count >= self.config.max_subscriptions_per_client {
                Metrics::add(&self.metrics.limit_refusals, 1);
                return ReasonCode::QuotaExceeded;
            }
        }
        let mut options = request.options;
        // "The Server might grant a lower Maximum QoS than the subscriber requested"
        // (3.9.3); we never grant more than we support.
        options.qos = options.qos.min(self.config.maximum_qos);
        let subscription = Subscription {
            filter: filter.clone(),
            options,
            identifier,
        };
        let existed = self.tree.subscribe(client_id, subscription.clone());
        if let Some(session) = self.registry.session_mut(client_id) {
            session
                .subscriptions
                .insert(filter.clone(), subscription.clone());
        }
        if self.persists(client_id) {
            self.record(Change::Subscription {
                client_id: client_id.clone(),
                subscription: subscription.clone(),
            });
        }
        // "Retained messages are not sent to the Session when it establishes a new Shared
        // Subscription" (4.8.2).
        let send_retained = filter.share_name().is_none()
            && match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        if send_retained {
            for message in self.retained.matching(&filter, now) {
                if !self
                    .authenticator
                    .authorize_retained(&principal, &message.topic)
                {
                    Metrics::add(&self.metrics.authorization_denials, 1);
                    continue;
                }
                let delivery = Delivery {
                    client: client_id.clone(),
                    qos: message.qos.min(options.qos),
                    // Sent because of a new subscription: RETAIN is 1 [MQTT-3.3.1-8].
                    retain: true,
                    subscription_identifiers: identifier.into_iter().collect(),
                    shared: None,
                };
                self.deliver(message, delivery, now);
            }
        }
        match options.qos {
            mquictt_protocol::QoS::AtMostOnce => ReasonCode::GRANTED_QOS_0,
            mquictt_protocol::QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            mquictt_protocol::QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    /// Removes the filters of one UNSUBSCRIBE; one reason code per filter [MQTT-3.11.3-1].
    pub(crate) fn unsubscribe(
        &mut self,
        client_id: &ClientId,
        filters: &[TopicFilter],
    ) -> Vec<ReasonCode> {
        self.recorded = CommitTicket::done();
        let codes = filters
            .iter()
            .map(|filter| {
                let existed = self.tree.unsubscribe(client_id, filter);
                if let Some(session) = self.registry.session_mut(client_id) {
                    session.subscriptions.remove(filter);
                }
                if self.persists(client_id) {
                    self.record(Change::RemoveSubscription {
                        client_id: client_id.clone(),
                        filter: filter.clone(),
                    });
                }
                if existed {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                }
            })
            .collect();
        self.update_gauges();
        codes
    }
}
