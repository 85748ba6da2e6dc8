//! Unit tests of the MQTT 5 property codec: round trips, placement, repetition, value ranges,
//! lengths and the authentication method rule.

use super::*;
use crate::PropertySet;
use bytes::BytesMut;

fn decode(bytes: &'static [u8], context: PropertyContext) -> Result<Properties, ProtocolError> {
    decode_properties(&mut Reader::new(Bytes::from_static(bytes)), context)
}

fn encode(p: &Properties, context: PropertyContext) -> Result<BytesMut, ProtocolError> {
    let mut buf = BytesMut::new();
    encode_properties(p, context, &mut buf).map(|()| buf)
}

#[test]
fn round_trip_in_ascending_order() {
    let props = Properties::from(PropertySet {
        receive_maximum: Some(20),
        session_expiry_interval: Some(0xFFFF_FFFF),
        user_properties: vec![(MqttString::from_static("k"), MqttString::from_static("v"))],
        ..PropertySet::default()
    });
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
            .map(|p| p.subscription_identifiers.clone()),
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
    let props = Properties::from(PropertySet {
        authentication_data: Some(Bytes::from_static(b"x")),
        ..PropertySet::default()
    });
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
    let props = Properties::from(PropertySet {
        topic_alias: Some(3),
        ..PropertySet::default()
    });
    assert!(matches!(
        encode(&props, PropertyContext::Will),
        Err(ProtocolError::PropertyNotAllowed { .. })
    ));
    let props = Properties::from(PropertySet {
        subscription_identifiers: vec![1, 2],
        ..PropertySet::default()
    });
    assert_eq!(
        encode(&props, PropertyContext::Subscribe),
        Err(ProtocolError::DuplicateProperty(
            PropertyId::SubscriptionIdentifier
        ))
    );
    let props = Properties::from(PropertySet {
        subscription_identifiers: vec![MAX_VARINT + 1],
        ..PropertySet::default()
    });
    assert!(matches!(
        encode(&props, PropertyContext::Publish),
        Err(ProtocolError::InvalidPropertyValue { .. })
    ));
}
