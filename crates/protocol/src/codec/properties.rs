//! MQTT 5 properties on the wire (2.2.2): the property length, each identifier and value, which
//! packet may carry which property (table 2-4), which may repeat, and the value ranges the spec
//! allows. Properties are written in ascending identifier order, repeated ones in the order of
//! their vector. Only MQTT 5 packets call into this module.

use bytes::{BufMut, Bytes};

use super::primitives::{check_binary_len, prefixed_len, put_binary, put_string, Reader};
use super::varint::{encode_varint, varint_len, MAX_VARINT};
use crate::error::ProtocolError;
use crate::properties::{Properties, PropertyId};
use crate::string::MqttString;
use crate::topic::TopicName;

/// Where a property set sits: the packet that carries it, or the will of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PropertyContext {
    Connect,
    /// The will properties inside the CONNECT payload (3.1.3.2).
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl PropertyId {
    /// Every property identifier, in numeric order.
    pub const ALL: [Self; 27] = [
        Self::PayloadFormatIndicator,
        Self::MessageExpiryInterval,
        Self::ContentType,
        Self::ResponseTopic,
        Self::CorrelationData,
        Self::SubscriptionIdentifier,
        Self::SessionExpiryInterval,
        Self::AssignedClientIdentifier,
        Self::ServerKeepAlive,
        Self::AuthenticationMethod,
        Self::AuthenticationData,
        Self::RequestProblemInformation,
        Self::WillDelayInterval,
        Self::RequestResponseInformation,
        Self::ResponseInformation,
        Self::ServerReference,
        Self::ReasonString,
        Self::ReceiveMaximum,
        Self::TopicAliasMaximum,
        Self::TopicAlias,
        Self::MaximumQoS,
        Self::RetainAvailable,
        Self::UserProperty,
        Self::MaximumPacketSize,
        Self::WildcardSubscriptionAvailable,
        Self::SubscriptionIdentifierAvailable,
        Self::SharedSubscriptionAvailable,
    ];

    /// The identifier byte on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Looks up an identifier; `None` for one the spec does not define.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL
            .binary_search_by_key(&value, |id| id.as_u8())
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Whether table 2-4 lets this property appear in `context`.
    pub fn allowed_in(self, context: PropertyContext) -> bool {
        use PropertyContext as C;
        let publish_and_will = C::Publish.bit() | C::Will.bit();
        let acks = C::PubAck.bit() | C::PubRec.bit() | C::PubRel.bit() | C::PubComp.bit();
        let allowed = match self {
            Self::PayloadFormatIndicator
            | Self::MessageExpiryInterval
            | Self::ContentType
            | Self::ResponseTopic
            | Self::CorrelationData => publish_and_will,
            Self::SubscriptionIdentifier => C::Publish.bit() | C::Subscribe.bit(),
            Self::SessionExpiryInterval => {
                C::Connect.bit() | C::ConnAck.bit() | C::Disconnect.bit()
            }
            Self::AuthenticationMethod | Self::AuthenticationData => {
                C::Connect.bit() | C::ConnAck.bit() | C::Auth.bit()
            }
            Self::RequestProblemInformation | Self::RequestResponseInformation => C::Connect.bit(),
            Self::WillDelayInterval => C::Will.bit(),
            Self::AssignedClientIdentifier
            | Self::ServerKeepAlive
            | Self::ResponseInformation
            | Self::MaximumQoS
            | Self::RetainAvailable
            | Self::WildcardSubscriptionAvailable
            | Self::SubscriptionIdentifierAvailable
            | Self::SharedSubscriptionAvailable => C::ConnAck.bit(),
            Self::ServerReference => C::ConnAck.bit() | C::Disconnect.bit(),
            Self::ReasonString => {
                C::ConnAck.bit()
                    | acks
                    | C::SubAck.bit()
                    | C::UnsubAck.bit()
                    | C::Disconnect.bit()
                    | C::Auth.bit()
            }
            Self::ReceiveMaximum | Self::TopicAliasMaximum | Self::MaximumPacketSize => {
                C::Connect.bit() | C::ConnAck.bit()
            }
            Self::TopicAlias => C::Publish.bit(),
            Self::UserProperty => u16::MAX,
        };
        allowed & context.bit() != 0
    }

    /// Whether the property may appear more than once in `context`: User Property always
    /// (2.2.2.2), Subscription Identifier in a PUBLISH (3.3.2.3.8). Repeating any other is a
    /// Protocol Error.
    pub fn may_repeat(self, context: PropertyContext) -> bool {
        self == Self::UserProperty
            || (self == Self::SubscriptionIdentifier && context == PropertyContext::Publish)
    }
}

/// One property value, borrowed from a `Properties`, in the data type table 2-4 gives it.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    VarInt(u32),
    Text(&'a MqttString),
    Binary(&'a Bytes),
    Pair(&'a MqttString, &'a MqttString),
}

impl Value<'_> {
    /// Encoded size of the value, without its identifier.
    fn len(self) -> usize {
        match self {
            Self::Byte(_) => 1,
            Self::Two(_) => 2,
            Self::Four(_) => 4,
            Self::VarInt(v) => varint_len(v as usize),
            Self::Text(s) => prefixed_len(s.as_bytes()),
            Self::Binary(b) => prefixed_len(b),
            Self::Pair(k, v) => prefixed_len(k.as_bytes()) + prefixed_len(v.as_bytes()),
        }
    }
}

/// Calls `f` for every property present, in ascending identifier order.
fn visit<E>(
    p: &Properties,
    mut f: impl FnMut(PropertyId, Value<'_>) -> Result<(), E>,
) -> Result<(), E> {
    use PropertyId as P;
    let flag = |b: bool| Value::Byte(u8::from(b));
    if let Some(v) = p.payload_format_indicator {
        f(P::PayloadFormatIndicator, flag(v))?;
    }
    if let Some(v) = p.message_expiry_interval {
        f(P::MessageExpiryInterval, Value::Four(v))?;
    }
    if let Some(v) = &p.content_type {
        f(P::ContentType, Value::Text(v))?;
    }
    if let Some(v) = &p.response_topic {
        f(P::ResponseTopic, Value::Text(v))?;
    }
    if let Some(v) = &p.correlation_data {
        f(P::CorrelationData, Value::Binary(v))?;
    }
    for &v in &p.subscription_identifiers {
        f(P::SubscriptionIdentifier, Value::VarInt(v))?;
    }
    if let Some(v) = p.session_expiry_interval {
        f(P::SessionExpiryInterval, Value::Four(v))?;
    }
    if let Some(v) = &p.assigned_client_identifier {
        f(P::AssignedClientIdentifier, Value::Text(v))?;
    }
    if let Some(v) = p.server_keep_alive {
        f(P::ServerKeepAlive, Value::Two(v))?;
    }
    if let Some(v) = &p.authentication_method {
        f(P::AuthenticationMethod, Value::Text(v))?;
    }
    if let Some(v) = &p.authentication_data {
        f(P::AuthenticationData, Value::Binary(v))?;
    }
    if let Some(v) = p.request_problem_information {
        f(P::RequestProblemInformation, flag(v))?;
    }
    if let Some(v) = p.will_delay_interval {
        f(P::WillDelayInterval, Value::Four(v))?;
    }
    if let Some(v) = p.request_response_information {
        f(P::RequestResponseInformation, flag(v))?;
    }
    if let Some(v) = &p.response_information {
        f(P::ResponseInformation, Value::Text(v))?;
    }
    if let Some(v) = &p.server_reference {
        f(P::ServerReference, Value::Text(v))?;
    }
    if let Some(v) = &p.reason_string {
        f(P::ReasonString, Value::Text(v))?;
    }
    if let Some(v) = p.receive_maximum {
        f(P::ReceiveMaximum, Value::Two(v))?;
    }
    if let Some(v) = p.topic_alias_maximum {
        f(P::TopicAliasMaximum, Value::Two(v))?;
    }
    if let Some(v) = p.topic_alias {
        f(P::TopicAlias, Value::Two(v))?;
    }
    if let Some(v) = p.maximum_qos {
        f(P::MaximumQoS, Value::Byte(v))?;
    }
    if let Some(v) = p.retain_available {
        f(P::RetainAvailable, flag(v))?;
    }
    for (k, v) in &p.user_properties {
        f(P::UserProperty, Value::Pair(k, v))?;
    }
    if let Some(v) = p.maximum_packet_size {
        f(P::MaximumPacketSize, Value::Four(v))?;
    }
    if let Some(v) = p.wildcard_subscription_available {
        f(P::WildcardSubscriptionAvailable, flag(v))?;
    }
    if let Some(v) = p.subscription_identifier_available {
        f(P::SubscriptionIdentifierAvailable, flag(v))?;
    }
    if let Some(v) = p.shared_subscription_available {
        f(P::SharedSubscriptionAvailable, flag(v))?;
    }
    Ok(())
}

/// Checks a numeric value against the range the spec gives the property.
fn check_number(id: PropertyId, value: u32) -> Result<(), ProtocolError> {
    use PropertyId as P;
    let valid = match id {
        // "It is a Protocol Error to include the Topic Alias value of 0" is its own reason
        // code: 0x94 Topic Alias invalid [MQTT-3.3.2-8].
        P::TopicAlias if value == 0 => return Err(ProtocolError::TopicAliasZero),
        P::ReceiveMaximum | P::MaximumPacketSize => value != 0,
        P::SubscriptionIdentifier => (1..=MAX_VARINT).contains(&value),
        P::MaximumQoS => value <= 1,
        P::PayloadFormatIndicator
        | P::RequestProblemInformation
        | P::RequestResponseInformation
        | P::RetainAvailable
        | P::WildcardSubscriptionAvailable
        | P::SubscriptionIdentifierAvailable
        | P::SharedSubscriptionAvailable => value <= 1,
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(ProtocolError::InvalidPropertyValue {
            property: id,
            value,
        })
    }
}

/// Encoded size of the properties without the property length in front of them.
pub(crate) fn properties_len(p: &Properties) -> usize {
    let mut len = 0;
    let _ = visit(p, |_, value| -> Result<(), std::convert::Infallible> {
        len += 1 + value.len();
        Ok(())
    });
    len
}

/// Encoded size of the property length plus the properties.
pub(crate) fn properties_block_len(p: &Properties) -> usize {
    let len = properties_len(p);
    varint_len(len) + len
}

/// Writes the property length and the properties, after checking that each one belongs in
/// `context` and holds a value the spec allows.
pub(crate) fn encode_properties(
    p: &Properties,
    context: PropertyContext,
    buf: &mut impl BufMut,
) -> Result<(), ProtocolError> {
    let mut len = 0;
    let mut seen: u64 = 0;
    visit(p, |id, value| {
        if !id.allowed_in(context) {
            return Err(ProtocolError::PropertyNotAllowed {
                property: id,
                context,
            });
        }
        let bit = 1u64 << id.as_u8();
        if seen & bit != 0 && !id.may_repeat(context) {
            return Err(ProtocolError::DuplicateProperty(id));
        }
        seen |= bit;
        match value {
            Value::Byte(v) => check_number(id, u32::from(v))?,
            Value::Two(v) => check_number(id, u32::from(v))?,
            Value::Four(v) | Value::VarInt(v) => check_number(id, v)?,
            Value::Binary(b) => check_binary_len(b, "binary property")?,
            Value::Text(_) | Value::Pair(..) => {}
        }
        len += 1 + value.len();
        Ok(())
    })?;
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(ProtocolError::AuthenticationDataWithoutMethod);
    }
    encode_varint(len, buf)?;
    visit(p, |id, value| {
        buf.put_u8(id.as_u8());
        match value {
            Value::Byte(v) => buf.put_u8(v),
            Value::Two(v) => buf.put_u16(v),
            Value::Four(v) => buf.put_u32(v),
            Value::VarInt(v) => encode_varint(v as usize, buf)?,
            Value::Text(s) => put_string(buf, s),
            Value::Binary(b) => put_binary(buf, b, "binary property")?,
            Value::Pair(k, v) => {
                put_string(buf, k);
                put_string(buf, v);
            }
        }
        Ok(())
    })
}

/// Reads the property length and the properties that follow, enforcing table 2-4, the
/// repetition rules and the value ranges.
pub(crate) fn decode_properties(
    r: &mut Reader,
    context: PropertyContext,
) -> Result<Properties, ProtocolError> {
    let declared = r.read_varint("property length")?;
    let available = r.remaining();
    if declared as usize > available {
        return Err(ProtocolError::PropertyLengthExceeded {
            declared,
            available,
        });
    }
    let mut props = Properties::default();
    if declared == 0 {
        return Ok(props);
    }
    let mut block = r.split(declared as usize, "properties")?;
    let mut seen: u64 = 0;
    while !block.is_empty() {
        let raw_id = block.read_varint("property identifier")?;
        let id = u8::try_from(raw_id)
            .ok()
            .and_then(PropertyId::from_u8)
            .ok_or(ProtocolError::UnknownProperty { id: raw_id })?;
        if !id.allowed_in(context) {
            return Err(ProtocolError::PropertyNotAllowed {
                property: id,
                context,
            });
        }
        let bit = 1u64 << id.as_u8();
        if seen & bit != 0 && !id.may_repeat(context) {
            return Err(ProtocolError::DuplicateProperty(id));
        }
        seen |= bit;
        read_value(&mut block, id, &mut props)?;
    }
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(ProtocolError::AuthenticationDataWithoutMethod);
    }
    Ok(props)
}

fn read_flag(r: &mut Reader, id: PropertyId) -> Result<bool, ProtocolError> {
    let v = r.read_u8("property value")?;
    check_number(id, u32::from(v))?;
    Ok(v == 1)
}

fn read_two(r: &mut Reader, id: PropertyId) -> Result<u16, ProtocolError> {
    let v = r.read_u16("property value")?;
    check_number(id, u32::from(v))?;
    Ok(v)
}

fn read_four(r: &mut Reader, id: PropertyId) -> Result<u32, ProtocolError> {
    let v = r.read_u32("property value")?;
    check_number(id, v)?;
    Ok(v)
}

fn read_value(r: &mut Reader, id: PropertyId, p: &mut Properties) -> Result<(), ProtocolError> {
    use PropertyId as P;
    match id {
        P::PayloadFormatIndicator => p.payload_format_indicator = Some(read_flag(r, id)?),
        P::MessageExpiryInterval => p.message_expiry_interval = Some(read_four(r, id)?),
        P::ContentType => p.content_type = Some(r.read_string("content type")?),
        P::ResponseTopic => {
            let topic = r.read_string("response topic")?;
            // "The Response Topic MUST NOT contain wildcard characters" [MQTT-3.3.2-14]; it
            // is a Topic Name, so it is not empty either.
            TopicName::from_string(topic.clone()).map_err(ProtocolError::InvalidResponseTopic)?;
            p.response_topic = Some(topic);
        }
        P::CorrelationData => p.correlation_data = Some(r.read_binary("correlation data")?),
        P::SubscriptionIdentifier => {
            let v = r.read_varint("subscription identifier")?;
            check_number(id, v)?;
            p.subscription_identifiers.push(v);
        }
        P::SessionExpiryInterval => p.session_expiry_interval = Some(read_four(r, id)?),
        P::AssignedClientIdentifier => {
            p.assigned_client_identifier = Some(r.read_string("assigned client identifier")?);
        }
        P::ServerKeepAlive => p.server_keep_alive = Some(read_two(r, id)?),
        P::AuthenticationMethod => {
            p.authentication_method = Some(r.read_string("authentication method")?);
        }
        P::AuthenticationData => {
            p.authentication_data = Some(r.read_binary("authentication data")?);
        }
        P::RequestProblemInformation => {
            p.request_problem_information = Some(read_flag(r, id)?);
        }
        P::WillDelayInterval => p.will_delay_interval = Some(read_four(r, id)?),
        P::RequestResponseInformation => {
            p.request_response_information = Some(read_flag(r, id)?);
        }
        P::ResponseInformation => {
            p.response_information = Some(r.read_string("response information")?);
        }
        P::ServerReference => p.server_reference = Some(r.read_string("server reference")?),
        P::ReasonString => p.reason_string = Some(r.read_string("reason string")?),
        P::ReceiveMaximum => p.receive_maximum = Some(read_two(r, id)?),
        P::TopicAliasMaximum => p.topic_alias_maximum = Some(read_two(r, id)?),
        P::TopicAlias => p.topic_alias = Some(read_two(r, id)?),
        P::MaximumQoS => {
            let v = r.read_u8("property value")?;
            check_number(id, u32::from(v))?;
            p.maximum_qos = Some(v);
        }
        P::RetainAvailable => p.retain_available = Some(read_flag(r, id)?),
        P::UserProperty => {
            // "Both strings MUST comply with the requirements for UTF-8 Encoded Strings"
            // [MQTT-1.5.7-1].
            let key = r.read_string("user property name")?;
            let value = r.read_string("user property value")?;
            p.user_properties.push((key, value));
        }
        P::MaximumPacketSize => p.maximum_packet_size = Some(read_four(r, id)?),
        P::WildcardSubscriptionAvailable => {
            p.wildcard_subscription_available = Some(read_flag(r, id)?);
        }
        P::SubscriptionIdentifierAvailable => {
            p.subscription_identifier_available = Some(read_flag(r, id)?);
        }
        P::SharedSubscriptionAvailable => {
            p.shared_subscription_available = Some(read_flag(r, id)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn decode(bytes: &'static [u8], context: PropertyContext) -> Result<Properties, ProtocolError> {
        decode_properties(&mut Reader::new(Bytes::from_static(bytes)), context)
    }

    fn encode(p: &Properties, context: PropertyContext) -> Result<BytesMut, ProtocolError> {
        let mut buf = BytesMut::new();
        encode_properties(p, context, &mut buf).map(|()| buf)
    }

    #[test]
    fn every_identifier_round_trips_through_from_u8() {
        for id in PropertyId::ALL {
            assert_eq!(PropertyId::from_u8(id.as_u8()), Some(id));
        }
        for undefined in [0x00, 0x04, 0x0A, 0x14, 0x1B, 0x20, 0x2B, 0xFF] {
            assert_eq!(PropertyId::from_u8(undefined), None);
        }
    }

    #[test]
    fn table_2_4_examples() {
        use PropertyContext as C;
        assert!(PropertyId::TopicAlias.allowed_in(C::Publish));
        assert!(!PropertyId::TopicAlias.allowed_in(C::Will));
        assert!(PropertyId::WillDelayInterval.allowed_in(C::Will));
        assert!(!PropertyId::WillDelayInterval.allowed_in(C::Connect));
        assert!(PropertyId::SessionExpiryInterval.allowed_in(C::Disconnect));
        assert!(!PropertyId::ReasonString.allowed_in(C::Publish));
        assert!(PropertyId::UserProperty.allowed_in(C::Auth));
        assert!(PropertyId::SubscriptionIdentifier.may_repeat(C::Publish));
        assert!(!PropertyId::SubscriptionIdentifier.may_repeat(C::Subscribe));
    }

    #[test]
    fn round_trip_in_ascending_order() {
        let props = Properties {
            receive_maximum: Some(20),
            session_expiry_interval: Some(0xFFFF_FFFF),
            user_properties: vec![(MqttString::from_static("k"), MqttString::from_static("v"))],
            ..Properties::default()
        };
        let buf = encode(&props, PropertyContext::Connect).unwrap();
        assert_eq!(
            &buf[..],
            &[15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF, 0x21, 0x00, 20, 0x26, 0, 1, b'k', 0, 1, b'v']
        );
        assert_eq!(buf.len(), properties_block_len(&props));
        let mut r = Reader::new(buf.freeze());
        assert_eq!(
            decode_properties(&mut r, PropertyContext::Connect),
            Ok(props)
        );
    }

    #[test]
    fn misplaced_repeated_and_unknown_properties_are_rejected() {
        assert_eq!(
            decode(&[2, 0x23, 0x00], PropertyContext::Connect),
            Err(ProtocolError::PropertyNotAllowed {
                property: PropertyId::TopicAlias,
                context: PropertyContext::Connect
            })
        );
        assert_eq!(
            decode(&[6, 0x21, 0, 1, 0x21, 0, 2], PropertyContext::Connect),
            Err(ProtocolError::DuplicateProperty(PropertyId::ReceiveMaximum))
        );
        assert_eq!(
            decode(&[4, 0x0B, 1, 0x0B, 2], PropertyContext::Subscribe),
            Err(ProtocolError::DuplicateProperty(
                PropertyId::SubscriptionIdentifier
            ))
        );
        assert_eq!(
            decode(&[4, 0x0B, 1, 0x0B, 2], PropertyContext::Publish)
                .map(|p| p.subscription_identifiers),
            Ok(vec![1, 2])
        );
        assert_eq!(
            decode(&[2, 0x04, 0], PropertyContext::Publish),
            Err(ProtocolError::UnknownProperty { id: 4 })
        );
    }

    #[test]
    fn values_out_of_range_are_rejected() {
        let cases: [(&'static [u8], PropertyContext, ProtocolError); 6] = [
            (
                &[3, 0x21, 0, 0],
                PropertyContext::Connect,
                ProtocolError::InvalidPropertyValue {
                    property: PropertyId::ReceiveMaximum,
                    value: 0,
                },
            ),
            (
                &[5, 0x27, 0, 0, 0, 0],
                PropertyContext::ConnAck,
                ProtocolError::InvalidPropertyValue {
                    property: PropertyId::MaximumPacketSize,
                    value: 0,
                },
            ),
            (
                &[3, 0x23, 0, 0],
                PropertyContext::Publish,
                ProtocolError::TopicAliasZero,
            ),
            (
                &[2, 0x0B, 0],
                PropertyContext::Subscribe,
                ProtocolError::InvalidPropertyValue {
                    property: PropertyId::SubscriptionIdentifier,
                    value: 0,
                },
            ),
            (
                &[2, 0x01, 2],
                PropertyContext::Publish,
                ProtocolError::InvalidPropertyValue {
                    property: PropertyId::PayloadFormatIndicator,
                    value: 2,
                },
            ),
            (
                &[2, 0x24, 2],
                PropertyContext::ConnAck,
                ProtocolError::InvalidPropertyValue {
                    property: PropertyId::MaximumQoS,
                    value: 2,
                },
            ),
        ];
        for (bytes, context, expected) in cases {
            assert_eq!(decode(bytes, context), Err(expected), "{bytes:?}");
        }
    }

    #[test]
    fn lengths_must_fit() {
        assert_eq!(
            decode(&[5, 0x21, 0, 1], PropertyContext::Connect),
            Err(ProtocolError::PropertyLengthExceeded {
                declared: 5,
                available: 3
            })
        );
        // The value runs past the declared property length.
        assert_eq!(
            decode(&[2, 0x21, 0, 1], PropertyContext::Connect),
            Err(ProtocolError::Truncated {
                field: "property value"
            })
        );
    }

    #[test]
    fn authentication_data_needs_a_method() {
        assert_eq!(
            decode(&[4, 0x16, 0, 1, 7], PropertyContext::Auth),
            Err(ProtocolError::AuthenticationDataWithoutMethod)
        );
        let props = Properties {
            authentication_data: Some(Bytes::from_static(b"x")),
            ..Properties::default()
        };
        assert_eq!(
            encode(&props, PropertyContext::Auth),
            Err(ProtocolError::AuthenticationDataWithoutMethod)
        );
    }

    #[test]
    fn response_topics_are_topic_names() {
        assert_eq!(
            decode(&[6, 0x08, 0, 3, b'a', b'/', b'#'], PropertyContext::Publish),
            Err(ProtocolError::InvalidResponseTopic(
                crate::topic::TopicError::WildcardInName
            ))
        );
    }

    #[test]
    fn encoding_checks_context_and_values() {
        let props = Properties {
            topic_alias: Some(3),
            ..Properties::default()
        };
        assert!(matches!(
            encode(&props, PropertyContext::Will),
            Err(ProtocolError::PropertyNotAllowed { .. })
        ));
        let props = Properties {
            subscription_identifiers: vec![1, 2],
            ..Properties::default()
        };
        assert_eq!(
            encode(&props, PropertyContext::Subscribe),
            Err(ProtocolError::DuplicateProperty(
                PropertyId::SubscriptionIdentifier
            ))
        );
        let props = Properties {
            subscription_identifiers: vec![MAX_VARINT + 1],
            ..Properties::default()
        };
        assert!(matches!(
            encode(&props, PropertyContext::Publish),
            Err(ProtocolError::InvalidPropertyValue { .. })
        ));
    }
}
