//! The MQTT 5 properties (2.2.2) as one typed set. Every packet carries a `Properties`; which
//! properties a packet may hold, and which may repeat, is enforced by the codec when it decodes
//! (a property where it does not belong is a Malformed Packet or Protocol Error). Before
//! MQTT 5 the set is always empty on the wire.
//!
//! `Properties` is a pointer-sized handle to a shared, copy-on-write `PropertySet`: most
//! packets carry no properties at all, and a broker forwards one message's properties to many
//! subscribers, so an inline set of some 400 bytes would be copied on every move and clone.
//! Reading goes through `Deref` (`props.topic_alias`), writing through `DerefMut`
//! (`props.topic_alias = Some(3)`), which allocates on the first write and copies only a set
//! that is shared.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytes::Bytes;

use crate::string::MqttString;

/// Identifiers of the MQTT 5 properties (table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// All MQTT 5 properties of one packet (or of a will message). `None` and empty vectors mean
/// "absent", which is not always the same as the default value the spec gives; callers apply
/// defaults, the codec does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropertySet {
    /// 0x01: payload is UTF-8 (`true`) or unspecified bytes (`false`).
    pub payload_format_indicator: Option<bool>,
    /// 0x02: lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME type of the payload.
    pub content_type: Option<MqttString>,
    /// 0x08: topic name for a response message.
    pub response_topic: Option<MqttString>,
    /// 0x09: correlation data for request/response.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: subscription identifiers, 1..=268,435,455. At most one in SUBSCRIBE; one per
    /// matching subscription in a PUBLISH sent by the server.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: session expiry interval in seconds; 0xFFFFFFFF means never.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client identifier assigned by the server.
    pub assigned_client_identifier: Option<MqttString>,
    /// 0x13: keep alive the server imposes, in seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15: name of the enhanced authentication method.
    pub authentication_method: Option<MqttString>,
    /// 0x16: data of the enhanced authentication exchange.
    pub authentication_data: Option<Bytes>,
    /// 0x17: whether the server may send reason strings and user properties on failures.
    pub request_problem_information: Option<bool>,
    /// 0x18: delay before the will message is published, in seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19: whether the client asks for response information in CONNACK.
    pub request_response_information: Option<bool>,
    /// 0x1A: basis for response topics.
    pub response_information: Option<MqttString>,
    /// 0x1C: another server the client should use.
    pub server_reference: Option<MqttString>,
    /// 0x1F: human-readable diagnostic.
    pub reason_string: Option<MqttString>,
    /// 0x21: how many QoS 1/2 publishes the sender will process at once; never 0.
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias the sender accepts.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias of this PUBLISH; never 0.
    pub topic_alias: Option<u16>,
    /// 0x24: highest QoS the server supports (0 or 1; absent means 2).
    pub maximum_qos: Option<u8>,
    /// 0x25: whether the server supports retained messages.
    pub retain_available: Option<bool>,
    /// 0x26: user properties, in order, repeats allowed.
    pub user_properties: Vec<(MqttString, MqttString)>,
    /// 0x27: largest packet the sender accepts; never 0.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether the server supports wildcard subscriptions.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29: whether the server supports subscription identifiers.
    pub subscription_identifier_available: Option<bool>,
    /// 0x2A: whether the server supports shared subscriptions.
    pub shared_subscription_available: Option<bool>,
}

impl PropertySet {
    /// The set with no property in it.
    pub const EMPTY: Self = Self {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
    };

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }
}

/// The properties of a packet: a cheap handle to a shared [`PropertySet`], empty by default.
#[derive(Clone, Default)]
pub struct Properties(Option<Arc<PropertySet>>);

/// What an empty handle dereferences to.
static EMPTY_SET: PropertySet = PropertySet::EMPTY;

impl Properties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(PropertySet::is_empty)
    }

    /// The set this handle shares, or `None` for a handle that never held one, which is
    /// empty: the encoder's one-test path for the common packet without properties.
    #[inline(always)]
    pub(crate) fn shared_set(&self) -> Option<&PropertySet> {
        self.0.as_deref()
    }
}

impl Deref for Properties {
    type Target = PropertySet;

    fn deref(&self) -> &PropertySet {
        self.0.as_deref().unwrap_or(&EMPTY_SET)
    }
}

impl DerefMut for Properties {
    fn deref_mut(&mut self) -> &mut PropertySet {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }
}

impl From<PropertySet> for Properties {
    fn from(set: PropertySet) -> Self {
        if set.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::new(set)))
        }
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_handles_do_not_allocate_and_writes_copy_on_write() {
        let empty = Properties::default();
        assert!(empty.is_empty());
        assert_eq!(empty.topic_alias, None);
        let mut a = Properties::from(PropertySet {
            topic_alias: Some(3),
            ..PropertySet::default()
        });
        let b = a.clone();
        a.topic_alias = Some(4);
        assert_eq!(a.topic_alias, Some(4));
        assert_eq!(b.topic_alias, Some(3), "a clone keeps its own values");
        assert_ne!(a, b);
        assert_eq!(Properties::from(PropertySet::default()), empty);
        assert_eq!(
            std::mem::size_of::<Properties>(),
            std::mem::size_of::<usize>()
        );
    }
}
