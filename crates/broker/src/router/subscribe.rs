//! The router's answers to SUBSCRIBE and UNSUBSCRIBE: availability and authorization checks
//! per filter, the granted QoS, the subscription tree and session updates, and the retained
//! messages a new subscription receives as its Retain Handling option directs (3.8.3.1).

use std::time::Instant;

use mquictt_protocol::{ReasonCode, RetainHandling, TopicFilter};

use super::{Router, SubscribeRequest};
use crate::message::ClientId;
use crate::storage::Change;
use crate::subscriptions::{Delivery, Subscription};

impl Router {
    /// Applies the filters of one SUBSCRIBE and returns one reason code per filter, in order
    /// [MQTT-3.8.4-6]. Matching retained messages are queued for the client as Retain
    /// Handling directs (3.8.3.1). `take_recorded` then tells whether SUBACK must wait for a
    /// commit.
    pub(crate) fn subscribe(
        &mut self,
        client_id: &ClientId,
        requests: Vec<SubscribeRequest>,
        identifier: Option<u32>,
        now: Instant,
    ) -> Vec<ReasonCode> {
        self.recorded = false;
        let mut codes = Vec::with_capacity(requests.len());
        for request in requests {
            let code = self.subscribe_one(client_id, request, identifier, now);
            codes.push(code);
        }
        self.update_gauges();
        codes
    }

    fn subscribe_one(
        &mut self,
        client_id: &ClientId,
        request: SubscribeRequest,
        identifier: Option<u32>,
        now: Instant,
    ) -> ReasonCode {
        let filter = request.filter;
        if filter.share_name().is_some() && !self.config.shared_subscription_available {
            return ReasonCode::SharedSubscriptionsNotSupported;
        }
        if filter.has_wildcards() && !self.config.wildcard_subscription_available {
            return ReasonCode::WildcardSubscriptionsNotSupported;
        }
        // A QUIC data stream subscribes on behalf of its client.
        let owner = crate::quic::subscriber::owner(client_id);
        if !self.authenticator.authorize_subscribe(owner, &filter) {
            return ReasonCode::NotAuthorized;
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
        self.recorded = false;
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
