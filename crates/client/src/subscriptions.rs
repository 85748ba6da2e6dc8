//! The subscriptions the broker granted us, remembered so that they can be made again when a
//! reconnect finds that the broker has no session for us (Session Present 0: a broker without
//! persistence restarted, the session expired, or Clean Start is on). Updated from SUBACK and
//! UNSUBACK; knows nothing about connections.

use mquictt_protocol::{ReasonCode, TopicFilter};

use crate::message::Subscription;

/// Granted subscriptions, grouped as they were requested (a Subscription Identifier and User
/// Properties belong to one SUBSCRIBE).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionRecord {
    entries: Vec<Subscription>,
}

impl SubscriptionRecord {
    /// Records the filters of `subscription` that SUBACK granted; a filter subscribed again
    /// replaces its earlier entry, as it replaces the subscription on the broker
    /// [MQTT-3.8.4-3].
    pub(crate) fn granted(&mut self, subscription: &Subscription, reason_codes: &[ReasonCode]) {
        let mut granted = Subscription {
            filters: Vec::new(),
            properties: subscription.properties.clone(),
        };
        for ((filter, options), code) in subscription.filters.iter().zip(reason_codes) {
            if !code.is_error() {
                self.forget(filter);
                granted.filters.push((filter.clone(), *options));
            }
        }
        if !granted.filters.is_empty() {
            self.entries.push(granted);
        }
    }

    /// Forgets filters the broker unsubscribed. MQTT 3.1.1 UNSUBACK has no reason codes:
    /// every filter counts as removed.
    pub(crate) fn removed(&mut self, filters: &[TopicFilter], reason_codes: &[ReasonCode]) {
        for (index, filter) in filters.iter().enumerate() {
            let refused = reason_codes.get(index).is_some_and(|code| code.is_error());
            if !refused {
                self.forget(filter);
            }
        }
    }

    /// The SUBSCRIBE requests that restore every recorded subscription.
    pub(crate) fn renewals(&self) -> Vec<Subscription> {
        self.entries.clone()
    }

    fn forget(&mut self, filter: &TopicFilter) {
        for entry in &mut self.entries {
            entry
                .filters
                .retain(|(known, _)| known.as_str() != filter.as_str());
        }
        self.entries.retain(|entry| !entry.filters.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mquictt_protocol::QoS;

    fn filters(record: &SubscriptionRecord) -> Vec<String> {
        record
            .renewals()
            .iter()
            .flat_map(|s| {
                s.filters
                    .iter()
                    .map(|(f, o)| format!("{}@{}", f, o.qos as u8))
            })
            .collect()
    }

    #[test]
    fn only_granted_filters_are_renewed() {
        let mut record = SubscriptionRecord::default();
        let request = Subscription::to_all(["a/#", "b", "c"], QoS::AtLeastOnce).unwrap();
        record.granted(
            &request,
            &[
                ReasonCode::GrantedQoS1,
                ReasonCode::NotAuthorized,
                ReasonCode::Success,
            ],
        );
        assert_eq!(filters(&record), ["a/#@1", "c@1"]);

        let again = Subscription::new("c", QoS::ExactlyOnce)
            .unwrap()
            .identifier(3);
        record.granted(&again, &[ReasonCode::GrantedQoS2]);
        assert_eq!(filters(&record), ["a/#@1", "c@2"]);
        assert_eq!(
            record.renewals()[1].properties.subscription_identifiers,
            [3]
        );

        let a = TopicFilter::new("a/#").unwrap();
        let c = TopicFilter::new("c").unwrap();
        record.removed(
            &[a.clone(), c],
            &[ReasonCode::Success, ReasonCode::NotAuthorized],
        );
        assert_eq!(filters(&record), ["c@2"]);
        record.removed(&[TopicFilter::new("c").unwrap()], &[]);
        assert!(record.renewals().is_empty());
    }
}
