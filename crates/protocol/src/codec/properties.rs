//! MQTT 5 properties on the wire (2.2.2): the property length, each identifier and value, and
//! the value ranges the spec allows, applying the placement and repetition rules of
//! `property_rules`. Properties are written in ascending identifier order, repeated ones in the
//! order of their vector. Only MQTT 5 packets call into this module.

use bytes::Bytes;

use super::primitives::{check_binary_len, prefixed_len, put_binary, put_string, Output, Reader};
use super::property_rules::PropertyContext;
use super::varint::{varint_len, write_varint, MAX_VARINT};
use crate::error::ProtocolError;
use crate::properties::{Properties, PropertyId, PropertySet};
use crate::string::MqttString;
use crate::topic::TopicName;
use crate::types::ProtocolVersion;

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
#[inline]
pub(crate) fn properties_len(p: &Properties) -> usize {
    if p.shared_set().is_none() {
        return 0;
    }
    let mut len = 0;
    let _ = visit(p, |_, value| -> Result<(), std::convert::Infallible> {
        len += 1 + value.len();
        Ok(())
    });
    len
}

/// Encoded size of the property length plus the properties.
#[inline]
pub(crate) fn properties_block_len(p: &Properties) -> usize {
    let len = properties_len(p);
    varint_len(len) + len
}

/// Writes the property length and the properties, after checking that each one belongs in
/// `context` and holds a value the spec allows.
#[inline]
pub(crate) fn encode_properties(
    p: &Properties,
    context: PropertyContext,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    if p.shared_set().is_none() {
        // No properties: a property length of 0.
        buf.write_u8(0);
        return Ok(());
    }
    encode_property_set(p, context, buf)
}

fn encode_property_set(
    p: &Properties,
    context: PropertyContext,
    buf: &mut impl Output,
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
    write_varint(len, buf)?;
    visit(p, |id, value| {
        buf.write_u8(id.as_u8());
        match value {
            Value::Byte(v) => buf.write_u8(v),
            Value::Two(v) => buf.write_u16(v),
            Value::Four(v) => buf.write_u32(v),
            Value::VarInt(v) => write_varint(v as usize, buf)?,
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

/// The properties of a packet that carries them only in MQTT 5; before 5.0 the set is empty.
// Inlined into its callers, see the note on `decode_packet`.
#[inline(always)]
pub(crate) fn properties_if_v5(
    r: &mut Reader,
    version: ProtocolVersion,
    context: PropertyContext,
) -> Result<Properties, ProtocolError> {
    // Most packets carry no properties: a property length of 0 needs none of the work below.
    if !version.is_v5() || r.skip_zero_byte() {
        return Ok(Properties::default());
    }
    decode_properties(r, context)
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
    // A non-empty block holds at least one property: take the set once, rather than through
    // the copy-on-write handle on every write.
    let set: &mut PropertySet = &mut props;
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
        read_value(&mut block, id, set)?;
    }
    if set.authentication_data.is_some() && set.authentication_method.is_none() {
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

fn read_value(r: &mut Reader, id: PropertyId, p: &mut PropertySet) -> Result<(), ProtocolError> {
    use PropertyId as P;
    match id {
        P::PayloadFormatIndicator => p.payload_format_indicator = Some(read_flag(r, id)?),
        P::MessageExpiryInterval => p.message_expiry_interval = Some(read_four(r, id)?),
        P::ContentType => p.content_type = Some(r.read_string("content type")?),
        P::ResponseTopic => {
            let (topic, scan) = r.read_string_scanned("response topic")?;
            // "The Response Topic MUST NOT contain wildcard characters" [MQTT-3.3.2-14]; it
            // is a Topic Name, so it is not empty either.
            let topic = TopicName::from_scanned(topic, scan)
                .map_err(ProtocolError::InvalidResponseTopic)?;
            p.response_topic = Some(topic.as_mqtt_str().clone());
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
#[path = "properties_tests.rs"]
mod tests;
