//! PUBLISH (3.3) on the wire: topic name, packet identifier for QoS 1 and 2, MQTT 5
//! properties and the payload, which stays a slice of the received buffer. The DUP, QoS and
//! RETAIN flags come from the fixed header, which the caller has already checked.

use bytes::{Buf, Bytes};

use super::primitives::{prefixed_len, put_string, Output, Reader};
use super::properties::{decode_properties, encode_properties, properties_block_len};
use super::property_rules::PropertyContext;
use crate::error::ProtocolError;
use crate::packet::{PacketType, Publish};
use crate::properties::Properties;
use crate::string::{AsciiScan, MqttString};
use crate::topic::{TopicError, TopicName};
use crate::types::{PacketId, ProtocolVersion, QoS};

/// Decodes the PUBLISH in `frame`, whose body starts at `body_start` (after the fixed header,
/// whose `flags` the caller has checked).
///
/// The fields are checked on the borrowed bytes first; only then are the topic and the payload
/// cut out of `frame`, one reference count increment for the topic and none for the payload,
/// which is the rest of the packet, so no byte can trail a PUBLISH.
// Inlined into `decode_packet`, see the note there.
#[inline(always)]
pub(crate) fn decode_frame(
    frame: Bytes,
    body_start: usize,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Publish, ProtocolError> {
    let dup = flags & 0b1000 != 0;
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(ProtocolError::PublishQoS3)?;
    let retain = flags & 0b0001 != 0;
    let body = frame.get(body_start..).unwrap_or_default();

    // "The Topic Name MUST be present as the first field in the PUBLISH packet Variable
    // Header. It MUST be a UTF-8 Encoded String" [MQTT-3.3.2-1].
    const TOPIC: &str = "topic name";
    let (topic_len, rest) = body
        .split_first_chunk::<2>()
        .ok_or(ProtocolError::Truncated { field: TOPIC })?;
    let topic_len = usize::from(u16::from_be_bytes(*topic_len));
    let (topic, rest) = rest
        .split_at_checked(topic_len)
        .ok_or(ProtocolError::Truncated { field: TOPIC })?;
    let scan = AsciiScan::of(topic);
    if !scan.plain {
        MqttString::check_bytes(topic).map_err(|error| ProtocolError::InvalidString {
            field: TOPIC,
            error,
        })?;
    }

    let (packet_id, rest) = if qos == QoS::AtMostOnce {
        (None, rest)
    } else {
        let (id, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(ProtocolError::Truncated {
                field: "packet identifier",
            })?;
        let id = PacketId::new(u16::from_be_bytes(*id)).ok_or(ProtocolError::ZeroPacketId {
            packet_type: PacketType::Publish,
            version,
        })?;
        (Some(id), rest)
    };

    // Offsets into `frame`: every slice above is a part of it.
    let topic_start = body_start + 2;
    let topic_end = topic_start + topic_len;
    let mut payload_start = frame.len() - rest.len();
    let properties = if !version.is_v5() {
        Properties::default()
    } else if rest.first() == Some(&0) {
        // Most PUBLISH packets carry no properties: one zero byte of property length.
        payload_start += 1;
        Properties::default()
    } else {
        let mut r = Reader::new(frame.clone());
        r.skip(payload_start);
        let properties = decode_properties(&mut r, PropertyContext::Publish)?;
        payload_start = frame.len() - r.remaining();
        properties
    };

    let topic = if topic.is_empty() && version.is_v5() {
        // A zero-length Topic Name stands for the name mapped to the Topic Alias; "It is a
        // Protocol Error if the Topic Name is zero length and there is no Topic Alias"
        // (3.3.2.3.4).
        if properties.topic_alias.is_none() {
            return Err(ProtocolError::EmptyTopicWithoutAlias);
        }
        TopicName::empty()
    } else {
        // [MQTT-3.3.2-2]: no wildcards; [MQTT-4.7.3-1]: at least one character.
        TopicName::check_scanned(topic, scan).map_err(ProtocolError::InvalidTopicName)?;
        // `topic_start <= topic_end <= frame.len()`: `topic` was split off `frame`'s own
        // bytes at these offsets, so the range is in bounds.
        let text = frame.slice(topic_start..topic_end);
        // Checked above; the two-byte length keeps it within `MqttString::MAX_LEN`.
        TopicName::from_checked(MqttString::from_checked(text))
    };
    let mut payload = frame;
    // `payload_start` is `frame.len()` minus the bytes left after the fields read, so it is
    // within the frame and `advance` cannot panic.
    payload.advance(payload_start);
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload,
    })
}

pub(crate) fn body_len(p: &Publish, version: ProtocolVersion) -> usize {
    let mut len = prefixed_len(p.topic.as_mqtt_str().as_bytes()) + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        len += 2;
    }
    if version.is_v5() {
        len += properties_block_len(&p.properties);
    }
    len
}

pub(crate) fn encode_body(
    p: &Publish,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    // A packet identifier exactly when QoS > 0 [MQTT-2.2.1-2] [MQTT-2.2.1-3]; the length
    // computed before writing relies on it.
    if (p.qos == QoS::AtMostOnce) != p.packet_id.is_none() {
        return Err(ProtocolError::PacketIdMismatch {
            qos: p.qos as u8,
            has_packet_id: p.packet_id.is_some(),
        });
    }
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(ProtocolError::DupOnQoS0);
    }
    if p.topic.is_empty() {
        if !version.is_v5() {
            return Err(ProtocolError::InvalidTopicName(TopicError::Empty));
        }
        if p.properties.topic_alias.is_none() {
            return Err(ProtocolError::EmptyTopicWithoutAlias);
        }
    }
    put_string(buf, p.topic.as_mqtt_str());
    if let Some(id) = p.packet_id {
        buf.write_u16(id.get());
    }
    if version.is_v5() {
        encode_properties(&p.properties, PropertyContext::Publish, buf)?;
    }
    buf.write_slice(&p.payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use crate::codec::decode;
    use crate::error::ProtocolError;
    use crate::packet::{Packet, PacketType, Publish};
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::string::MqttString;
    use crate::topic::{TopicError, TopicName};
    use crate::types::{PacketId, ProtocolVersion, QoS};
    use crate::PropertySet;

    fn publish(qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::new("a/b").unwrap(),
            packet_id: (qos != QoS::AtMostOnce).then(|| PacketId::new(10).unwrap()),
            properties: Properties::default(),
            payload: Bytes::from_static(b"hello"),
        }
    }

    fn decode_bytes(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, ProtocolError> {
        decode(&mut BytesMut::from(bytes), version, 1024)
    }

    #[test]
    fn v311_bytes_and_round_trip() {
        let mut p = publish(QoS::AtLeastOnce);
        p.retain = true;
        p.dup = true;
        let packet = Packet::Publish(p);
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &[0x3B, 12, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V3_1_1, 1024),
            Ok(Some(packet))
        );
    }

    #[test]
    fn payload_is_a_slice_of_the_input() {
        let mut buf = BytesMut::new();
        Packet::Publish(publish(QoS::AtMostOnce))
            .encode(ProtocolVersion::V5, &mut buf)
            .unwrap();
        let input_start = buf.as_ptr() as usize;
        let input_end = input_start + buf.len();
        let Ok(Some(Packet::Publish(p))) = decode(&mut buf, ProtocolVersion::V5, 1024) else {
            panic!("PUBLISH did not decode");
        };
        let payload_at = p.payload.as_ptr() as usize;
        assert!((input_start..input_end).contains(&payload_at));
    }

    #[test]
    fn v5_properties_and_topic_alias() {
        let mut p = publish(QoS::ExactlyOnce);
        p.topic = TopicName::empty();
        p.properties = Properties::from(PropertySet {
            topic_alias: Some(4),
            subscription_identifiers: vec![1, 300],
            payload_format_indicator: Some(true),
            response_topic: Some(MqttString::from_static("reply/here")),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![
                (MqttString::from_static("a"), MqttString::from_static("1")),
                (MqttString::from_static("a"), MqttString::from_static("2")),
            ],
            ..PropertySet::default()
        });
        let packet = Packet::Publish(p);
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(ProtocolVersion::V5));
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V5, 1024),
            Ok(Some(packet))
        );
    }

    #[test]
    fn empty_topic_needs_an_alias_in_v5_and_is_invalid_in_v311() {
        // Topic "", QoS 0, property length 0.
        assert_eq!(
            decode_bytes(&[0x30, 3, 0, 0, 0], ProtocolVersion::V5),
            Err(ProtocolError::EmptyTopicWithoutAlias)
        );
        let err = decode_bytes(&[0x30, 2, 0, 0], ProtocolVersion::V3_1_1).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidTopicName(TopicError::Empty));
        let mut p = publish(QoS::AtMostOnce);
        p.topic = TopicName::empty();
        let mut buf = BytesMut::new();
        assert!(Packet::Publish(p)
            .encode(ProtocolVersion::V5, &mut buf)
            .is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn header_and_identifier_rules() {
        let cases: [(&[u8], ProtocolError, ReasonCode); 4] = [
            (
                &[0x36, 5, 0, 1, b'a', 0, 1],
                ProtocolError::PublishQoS3,
                ReasonCode::MalformedPacket,
            ),
            (
                &[0x38, 3, 0, 1, b'a'],
                ProtocolError::DupOnQoS0,
                ReasonCode::MalformedPacket,
            ),
            (
                &[0x32, 5, 0, 1, b'a', 0, 0],
                ProtocolError::ZeroPacketId {
                    packet_type: PacketType::Publish,
                    version: ProtocolVersion::V3_1_1,
                },
                ReasonCode::ProtocolError,
            ),
            (
                &[0x30, 5, 0, 3, b'a', b'/', b'+'],
                ProtocolError::InvalidTopicName(TopicError::WildcardInName),
                ReasonCode::TopicNameInvalid,
            ),
        ];
        for (bytes, expected, reason) in cases {
            let err = decode_bytes(bytes, ProtocolVersion::V3_1_1).unwrap_err();
            assert_eq!(err, expected, "{bytes:?}");
            assert_eq!(err.reason_code(), reason);
            assert!(err.conformance().is_some());
        }
    }

    #[test]
    fn qos_and_packet_id_must_agree_when_encoding() {
        let mut p = publish(QoS::AtLeastOnce);
        p.packet_id = None;
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::Publish(p).encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(ProtocolError::PacketIdMismatch {
                qos: 1,
                has_packet_id: false
            })
        );
    }
}
