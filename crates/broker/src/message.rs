//! The broker's own form of an application message: what was published, by whom and until
//! when it may be delivered. Routing, queues, retained messages and storage all hold this type
//! (behind an `Arc`, so fan-out never copies a payload); turning it back into a PUBLISH for one
//! subscriber is done here too, because that is where the expiry interval is decremented.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mquictt_protocol::{Properties, Publish, QoS, TopicName};

/// A client identifier as the broker stores it: cheap to clone, compared by value.
pub type ClientId = Arc<str>;

/// An application message inside the broker.
///
/// Kept at 104 bytes or less (test `a_shared_message_fits_a_fast_bin`): with the two counts of
/// its `Arc`, 120 bytes, the largest request glibc's `malloc` serves from its fast bins by
/// default. A message is usually allocated by the publisher's thread and freed by a
/// subscriber's; glibc puts a fast-bin chunk back on another thread's heap without taking that
/// heap's lock, where a larger one waits for it. At 128 bytes (the expiry inline), the broker
/// spent 2 to 9 % more CPU per message over TCP, and 6 % more over QUIC with a pair's two
/// connections on two threads (docs/benchmarks.md, *A message small enough for the fast bins*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub topic: TopicName,
    /// The payload, shared with every copy.
    pub payload: Bytes,
    /// The QoS it was published with; a subscriber receives at most its own maximum.
    pub qos: QoS,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// Properties forwarded unchanged to subscribers: payload format, content type, response
    /// topic, correlation data and user properties [MQTT-3.3.2-4] [MQTT-3.3.2-15]
    /// [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18]. Topic alias, subscription identifiers
    /// and the expiry interval are per hop and never kept here.
    pub properties: Properties,
    /// The client that published it, for No Local [MQTT-3.8.3-3]; `None` for messages the
    /// broker makes itself (`$SYS`).
    pub publisher: Option<ClientId>,
    /// When the Message Expiry Interval runs out, if one was given. Boxed: most messages
    /// have none, and inline it would take the message out of glibc's fast bins (see
    /// [`Message`]).
    pub expires_at: Option<Box<Instant>>,
}

impl Message {
    /// Takes a PUBLISH received from `publisher` at `now`. The topic must already be resolved
    /// from any topic alias (the session does that before the broker sees the packet).
    ///
    /// Takes the packet rather than a reference, and moves its topic and payload: both share
    /// the storage of the read they were cut from with every other packet of that read, and a
    /// copy of the handle is two atomic operations on a count that the subscribers' threads
    /// touch too (docs/benchmarks.md, *Handles moved, not shared*).
    pub fn from_publish(publish: Publish, publisher: Option<ClientId>, now: Instant) -> Self {
        let mut properties = publish.properties;
        let expiry = properties.message_expiry_interval;
        // Per hop: the alias belongs to the publisher's connection, the identifiers to the
        // receiver's subscriptions (3.3.2.3.4, 3.3.2.3.8). Written only when set: a write
        // gives the handle a set of its own, an allocation most messages need not make.
        if expiry.is_some()
            || properties.topic_alias.is_some()
            || !properties.subscription_identifiers.is_empty()
        {
            properties.message_expiry_interval = None;
            properties.topic_alias = None;
            properties.subscription_identifiers.clear();
        }
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            publisher,
            expires_at: expiry.map(|secs| Box::new(now + Duration::from_secs(u64::from(secs)))),
        }
    }

    /// A message made by the broker itself, with no properties and no expiry.
    pub fn new(topic: TopicName, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            properties: Properties::default(),
            publisher: None,
            expires_at: None,
        }
    }

    /// Whether the expiry interval has passed: "If the Message Expiry Interval has passed and
    /// the Server has not managed to start onward delivery to a matching subscriber, then it
    /// MUST delete the copy of the message for that subscriber" [MQTT-3.3.2-5].
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.as_deref().is_some_and(|&at| now >= at)
    }

    /// Seconds left until expiry, rounded up so that a message with time left never goes out
    /// with an interval of 0; `None` when the message never expires.
    pub fn remaining_expiry_secs(&self, now: Instant) -> Option<u32> {
        self.expires_at.as_deref().map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }

    /// The PUBLISH that delivers this message to one subscriber, without a packet identifier
    /// (the subscriber's session assigns one). "The PUBLISH packet sent to a Client by the
    /// Server MUST contain a Message Expiry Interval set to the received value minus the time
    /// that the Application Message has been waiting in the Server" [MQTT-3.3.2-6].
    pub fn to_publish(
        &self,
        qos: QoS,
        retain: bool,
        subscription_identifiers: Vec<u32>,
        now: Instant,
    ) -> Publish {
        let properties = outgoing_properties(
            self.properties.clone(),
            self.remaining_expiry_secs(now),
            subscription_identifiers,
        );
        Publish {
            dup: false,
            qos,
            retain,
            topic: self.topic.clone(),
            packet_id: None,
            properties,
            payload: self.payload.clone(),
        }
    }

    /// The same PUBLISH as [`Self::to_publish`], for the last holder of the message: its topic
    /// and payload are moved into the packet, not shared with it (see [`Self::from_publish`]).
    pub fn into_publish(
        self,
        qos: QoS,
        retain: bool,
        subscription_identifiers: Vec<u32>,
        now: Instant,
    ) -> Publish {
        let expiry = self.remaining_expiry_secs(now);
        let properties = outgoing_properties(self.properties, expiry, subscription_identifiers);
        Publish {
            dup: false,
            qos,
            retain,
            topic: self.topic,
            packet_id: None,
            properties,
            payload: self.payload,
        }
    }

    /// Bytes of payload and topic, the measure used for byte counters.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_mqtt_str().len()
    }
}

/// A message's `properties` as they go out to one subscriber: with the expiry interval left
/// (`expiry`) and the subscriber's subscription identifiers.
fn outgoing_properties(
    mut properties: Properties,
    expiry: Option<u32>,
    subscription_identifiers: Vec<u32>,
) -> Properties {
    // Written only when they differ, for the reason given in `Message::from_publish`.
    if properties.message_expiry_interval != expiry {
        properties.message_expiry_interval = expiry;
    }
    // Compared only when either has any: `==` on two empty vectors is a `memcmp` of their
    // dangling pointers, and glibc's AVX-512 `memcmp` reads even zero bytes with a masked
    // load, which on an unmapped address costs a microcode assist: this function took 109 ns
    // instead of 22 (`benches/delivery.rs`), 4 % of the broker's CPU at full speed.
    if !(subscription_identifiers.is_empty() && properties.subscription_identifiers.is_empty())
        && properties.subscription_identifiers != subscription_identifiers
    {
        properties.subscription_identifiers = subscription_identifiers;
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;
    use mquictt_protocol::PropertySet;
    use mquictt_protocol::{MqttString, PacketId};

    fn publish(expiry: Option<u32>) -> Publish {
        Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: TopicName::new("a/b").unwrap(),
            packet_id: PacketId::new(7),
            properties: Properties::from(PropertySet {
                message_expiry_interval: expiry,
                topic_alias: Some(3),
                subscription_identifiers: vec![9],
                content_type: Some(MqttString::new("text/plain").unwrap()),
                user_properties: vec![(
                    MqttString::new("k").unwrap(),
                    MqttString::new("v").unwrap(),
                )],
                ..PropertySet::default()
            }),
            payload: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn a_shared_message_fits_a_fast_bin() {
        // glibc's default fast-bin limit: chunks of 128 bytes, requests of up to 120. An
        // `Arc` adds its two counts.
        let in_arc = std::mem::size_of::<Message>() + 2 * std::mem::size_of::<usize>();
        assert!(in_arc <= 120, "{in_arc} bytes");
    }

    #[test]
    fn strips_per_hop_properties_and_keeps_the_rest() {
        let now = Instant::now();
        let message = Message::from_publish(publish(None), Some("c1".into()), now);
        assert_eq!(message.properties.topic_alias, None);
        assert!(message.properties.subscription_identifiers.is_empty());
        assert_eq!(message.properties.user_properties.len(), 1);
        assert!(message.properties.content_type.is_some());
        let out = message.to_publish(QoS::AtMostOnce, false, vec![4, 5], now);
        assert_eq!(out.properties.subscription_identifiers, vec![4, 5]);
        assert_eq!(
            out.properties.user_properties,
            message.properties.user_properties
        );
        assert_eq!(out.properties.message_expiry_interval, None);
        assert!(!out.dup);
        assert_eq!(out.packet_id, None);
    }

    #[test]
    fn the_last_holder_gets_the_same_publish_without_sharing() {
        let now = Instant::now();
        let message = Message::from_publish(publish(Some(10)), Some("c1".into()), now);
        let later = now + Duration::from_secs(4);
        let shared = message.to_publish(QoS::AtLeastOnce, true, vec![4], later);
        let payload_at = message.payload.as_ptr();
        let moved = message.into_publish(QoS::AtLeastOnce, true, vec![4], later);
        assert_eq!(moved, shared);
        assert_eq!(moved.properties.message_expiry_interval, Some(6));
        assert_eq!(moved.properties.subscription_identifiers, vec![4]);
        // The payload is the message's own storage, not a copy of it.
        assert_eq!(moved.payload.as_ptr(), payload_at);
    }

    #[test]
    fn a_copy_moves_the_message_only_when_nobody_else_holds_it() {
        use crate::session::Outgoing;
        let now = Instant::now();
        let message = Arc::new(Message::from_publish(publish(None), None, now));
        let copy = |message: &Arc<Message>| Outgoing {
            message: message.clone(),
            qos: QoS::AtMostOnce,
            retain: false,
            subscription_identifiers: vec![7].into_boxed_slice(),
            shared: None,
        };
        // Another subscriber's copy still holds the message: it is left whole.
        let other = copy(&message);
        drop(message);
        let first = copy(&other.message).into_publish(now);
        assert_eq!(first.payload, Bytes::from_static(b"hello"));
        assert_eq!(first.properties.subscription_identifiers, vec![7]);
        assert_eq!(other.message.payload, Bytes::from_static(b"hello"));
        assert_eq!(other.message.topic.as_str(), "a/b");
        // The last copy takes it.
        let last = other.into_publish(now);
        assert_eq!(last, first);
    }

    #[test]
    fn expiry_is_decremented_by_the_time_spent_waiting() {
        let now = Instant::now();
        let message = Message::from_publish(publish(Some(10)), None, now);
        let later = now + Duration::from_secs(4);
        let out = message.to_publish(QoS::AtLeastOnce, false, Vec::new(), later);
        assert_eq!(out.properties.message_expiry_interval, Some(6));
        // Time left that is less than a second is still rounded up, never sent as 0.
        let almost = now + Duration::from_millis(9_500);
        assert_eq!(message.remaining_expiry_secs(almost), Some(1));
        assert!(!message.is_expired(almost));
        assert!(message.is_expired(now + Duration::from_secs(10)));
    }
}
