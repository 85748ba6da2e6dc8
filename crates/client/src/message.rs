//! What the application hands the client and gets back: [`Message`] (an application message,
//! outgoing or incoming, with every MQTT 5 PUBLISH property reachable), [`Subscription`] (one
//! SUBSCRIBE request) and the outcomes of publish, subscribe and unsubscribe. Plain data with
//! builder methods; no IO.

use std::time::Duration;

use bytes::Bytes;
use mquictt_protocol::{
    MqttString, PacketId, Properties, Publish, QoS, ReasonCode, SubscriptionOptions, TopicFilter,
    TopicName,
};

use crate::error::ClientError;

/// An application message: what `publish` sends and what a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic name (never a filter).
    pub topic: TopicName,
    /// The payload.
    pub payload: Bytes,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag: on a publish, ask the broker to keep the message for future subscribers;
    /// on a received message, it was retained (subject to the subscription's Retain As
    /// Published option in MQTT 5).
    pub retain: bool,
    /// MQTT 5 PUBLISH properties: Payload Format Indicator, Message Expiry Interval, Content
    /// Type, Response Topic, Correlation Data, User Properties, and on received messages the
    /// Subscription Identifiers. Topic aliases are managed by the client; one set here is
    /// ignored. Empty (and ignored) on MQTT 3.1.1.
    pub properties: Properties,
}

impl Message {
    /// A QoS 0 message, not retained, without properties.
    pub fn new(topic: impl AsRef<str>, payload: impl Into<Bytes>) -> Result<Self, ClientError> {
        Ok(Message {
            topic: TopicName::new(topic)?,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::default(),
        })
    }

    /// The same message at another QoS.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// The same message with the retain flag set or cleared.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// The same message with all properties replaced.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// Message Expiry Interval (whole seconds, rounded down, at most `u32::MAX`).
    pub fn message_expiry(mut self, expiry: Duration) -> Self {
        self.properties.message_expiry_interval =
            Some(u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX));
        self
    }

    /// Payload Format Indicator: the payload is UTF-8 text.
    pub fn utf8_payload(mut self) -> Self {
        self.properties.payload_format_indicator = Some(true);
        self
    }

    /// Content Type (a MIME type, for example `application/json`).
    pub fn content_type(mut self, content_type: impl AsRef<str>) -> Result<Self, ClientError> {
        self.properties.content_type = Some(MqttString::new(content_type)?);
        Ok(self)
    }

    /// Response Topic of a request.
    pub fn response_topic(mut self, topic: impl AsRef<str>) -> Result<Self, ClientError> {
        // "The Response Topic MUST be a UTF-8 Encoded String" and a topic name, not a filter
        // [MQTT-3.3.2-13], [MQTT-3.3.2-14].
        let topic = TopicName::new(topic)?;
        self.properties.response_topic = Some(topic.as_mqtt_str().clone());
        Ok(self)
    }

    /// Correlation Data of a request or response.
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Self {
        self.properties.correlation_data = Some(data.into());
        self
    }

    /// Appends a User Property.
    pub fn user_property(
        mut self,
        name: impl AsRef<str>,
        value: impl AsRef<str>,
    ) -> Result<Self, ClientError> {
        self.properties
            .user_properties
            .push((MqttString::new(name)?, MqttString::new(value)?));
        Ok(self)
    }

    pub(crate) fn into_publish(self) -> Publish {
        Publish {
            dup: false,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic,
            packet_id: None,
            properties: self.properties,
            payload: self.payload,
        }
    }

    pub(crate) fn from_publish(publish: Publish) -> Self {
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
        }
    }
}

/// How a publish ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The packet identifier of a QoS 1 or 2 publish (on the connection that completed it);
    /// `None` for QoS 0.
    pub packet_id: Option<PacketId>,
    /// The broker's reason code from PUBACK, PUBREC or PUBCOMP; 0x80 or more means it refused
    /// the message. Always Success for QoS 0 (completed when written) and on MQTT 3.1.1.
    pub reason_code: ReasonCode,
    /// Reason String and User Properties of the acknowledgement (MQTT 5).
    pub properties: Properties,
}

impl PublishOutcome {
    /// Whether the broker accepted the message (reason code below 0x80). 0x10 No Matching
    /// Subscribers counts as accepted.
    pub fn is_success(&self) -> bool {
        !self.reason_code.is_error()
    }
}

/// One SUBSCRIBE request: topic filters with their options, and the MQTT 5 properties
/// (Subscription Identifier, User Properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topic filters, in order; SUBACK answers each in the same order.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// SUBSCRIBE properties (MQTT 5).
    pub properties: Properties,
}

impl Subscription {
    /// A subscription to one filter at a maximum QoS.
    pub fn new(filter: impl AsRef<str>, qos: QoS) -> Result<Self, ClientError> {
        Ok(Subscription {
            filters: vec![(
                TopicFilter::new(filter)?,
                SubscriptionOptions::with_qos(qos),
            )],
            properties: Properties::default(),
        })
    }

    /// A subscription to several filters at one maximum QoS.
    pub fn to_all<I, S>(filters: I, qos: QoS) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = filters
            .into_iter()
            .map(|filter| {
                Ok((
                    TopicFilter::new(filter)?,
                    SubscriptionOptions::with_qos(qos),
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(Subscription {
            filters,
            properties: Properties::default(),
        })
    }

    /// Adds a filter at a maximum QoS.
    pub fn and(self, filter: impl AsRef<str>, qos: QoS) -> Result<Self, ClientError> {
        Ok(self.with_options(
            TopicFilter::new(filter)?,
            SubscriptionOptions::with_qos(qos),
        ))
    }

    /// Adds a filter with all its MQTT 5 options (No Local, Retain As Published, Retain
    /// Handling).
    pub fn with_options(mut self, filter: TopicFilter, options: SubscriptionOptions) -> Self {
        self.filters.push((filter, options));
        self
    }

    /// Subscription Identifier (MQTT 5, 1..=268,435,455): the broker tags messages delivered
    /// for this subscription with it.
    pub fn identifier(mut self, identifier: u32) -> Self {
        self.properties.subscription_identifiers = vec![identifier];
        self
    }

    /// Appends a User Property.
    pub fn user_property(
        mut self,
        name: impl AsRef<str>,
        value: impl AsRef<str>,
    ) -> Result<Self, ClientError> {
        self.properties
            .user_properties
            .push((MqttString::new(name)?, MqttString::new(value)?));
        Ok(self)
    }
}

/// The broker's answer to a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOutcome {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One per filter, in order: the granted QoS (0x00, 0x01, 0x02) or a failure (0x80 or
    /// more). MQTT 3.1.1 return codes are mapped to the same values.
    pub reason_codes: Vec<ReasonCode>,
    /// Reason String and User Properties of the SUBACK (MQTT 5).
    pub properties: Properties,
}

impl SubscribeOutcome {
    /// Whether every filter was granted.
    pub fn all_granted(&self) -> bool {
        self.reason_codes.iter().all(|code| !code.is_error())
    }
}

/// The broker's answer to an UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeOutcome {
    /// The packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One per filter, in order (MQTT 5): Success, 0x11 No Subscription Existed, or a
    /// failure. Empty on MQTT 3.1.1, whose UNSUBACK carries none.
    pub reason_codes: Vec<ReasonCode>,
    /// Reason String and User Properties of the UNSUBACK (MQTT 5).
    pub properties: Properties,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_properties() {
        let message = Message::new("a/b", "hello")
            .unwrap()
            .qos(QoS::ExactlyOnce)
            .retain(true)
            .message_expiry(Duration::from_secs(90))
            .utf8_payload()
            .content_type("text/plain")
            .unwrap()
            .response_topic("reply/here")
            .unwrap()
            .correlation_data(&b"42"[..])
            .user_property("k", "v")
            .unwrap();
        let publish = message.clone().into_publish();
        assert_eq!(publish.qos, QoS::ExactlyOnce);
        assert!(publish.retain && !publish.dup && publish.packet_id.is_none());
        assert_eq!(publish.properties.message_expiry_interval, Some(90));
        assert_eq!(publish.properties.payload_format_indicator, Some(true));
        assert_eq!(publish.properties.user_properties.len(), 1);
        assert_eq!(Message::from_publish(publish), message);
    }

    #[test]
    fn invalid_topics_are_refused() {
        assert!(matches!(
            Message::new("a/+", ""),
            Err(ClientError::Topic(_))
        ));
        assert!(Message::new("a", "").unwrap().response_topic("#").is_err());
        assert!(Subscription::new("a/#/b", QoS::AtMostOnce).is_err());
        let subscription = Subscription::to_all(["a/#", "b/+"], QoS::AtLeastOnce)
            .unwrap()
            .and("c", QoS::ExactlyOnce)
            .unwrap()
            .identifier(5);
        assert_eq!(subscription.filters.len(), 3);
        assert_eq!(subscription.properties.subscription_identifiers, [5]);
    }
}
