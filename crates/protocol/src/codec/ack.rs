//! PUBACK, PUBREC, PUBREL and PUBCOMP (3.4 to 3.7), which share one layout: a packet
//! identifier and, in MQTT 5, a reason code and properties that may be left out. With a
//! remaining length of 2 the reason is Success and there are no properties; with 3 there is a
//! reason code but no properties. The encoder writes the shortest of these forms.

use super::primitives::{Output, Reader};
use super::properties::{decode_properties, encode_properties, properties_block_len};
use super::property_rules::PropertyContext;
use super::{check_reason, read_packet_id, reason_in};
use crate::error::ProtocolError;
use crate::packet::{PacketType, PubAck};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// PUBACK and PUBREC reason codes (3.4.2.1, 3.5.2.1).
const PUBLISH_ACK_REASONS: [ReasonCode; 9] = [
    ReasonCode::Success,
    ReasonCode::NoMatchingSubscribers,
    ReasonCode::UnspecifiedError,
    ReasonCode::ImplementationSpecificError,
    ReasonCode::NotAuthorized,
    ReasonCode::TopicNameInvalid,
    ReasonCode::PacketIdentifierInUse,
    ReasonCode::QuotaExceeded,
    ReasonCode::PayloadFormatInvalid,
];

/// PUBREL and PUBCOMP reason codes (3.6.2.1, 3.7.2.1).
const RELEASE_REASONS: [ReasonCode; 2] =
    [ReasonCode::Success, ReasonCode::PacketIdentifierNotFound];

fn allowed_reasons(packet_type: PacketType) -> &'static [ReasonCode] {
    match packet_type {
        PacketType::PubRel | PacketType::PubComp => &RELEASE_REASONS,
        _ => &PUBLISH_ACK_REASONS,
    }
}

fn context(packet_type: PacketType) -> PropertyContext {
    match packet_type {
        PacketType::PubRec => PropertyContext::PubRec,
        PacketType::PubRel => PropertyContext::PubRel,
        PacketType::PubComp => PropertyContext::PubComp,
        _ => PropertyContext::PubAck,
    }
}

pub(crate) fn decode(
    r: &mut Reader,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<PubAck, ProtocolError> {
    let packet_id = read_packet_id(r, packet_type, version)?;
    let mut ack = PubAck::success(packet_id);
    // Before 5.0 the packet ends here; anything more is reported as trailing bytes.
    if !version.is_v5() || r.is_empty() {
        return Ok(ack);
    }
    let code = r.read_u8("reason code")?;
    ack.reason_code = reason_in(code, allowed_reasons(packet_type), packet_type)?;
    // "If the Remaining Length is less than 4 there is no Property Length and the value of 0
    // is used" (3.4.2.2.1).
    if !r.is_empty() {
        ack.properties = decode_properties(r, context(packet_type))?;
    }
    Ok(ack)
}

pub(crate) fn body_len(a: &PubAck, version: ProtocolVersion) -> usize {
    if !version.is_v5() {
        return 2;
    }
    if a.properties.is_empty() {
        if a.reason_code == ReasonCode::Success {
            2
        } else {
            3
        }
    } else {
        3 + properties_block_len(&a.properties)
    }
}

pub(crate) fn encode_body(
    a: &PubAck,
    packet_type: PacketType,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    if version.is_v5() {
        check_reason(a.reason_code, allowed_reasons(packet_type), packet_type)?;
    }
    buf.write_u16(a.packet_id.get());
    if !version.is_v5() {
        return Ok(());
    }
    if a.properties.is_empty() {
        if a.reason_code != ReasonCode::Success {
            buf.write_u8(a.reason_code.as_u8());
        }
        return Ok(());
    }
    buf.write_u8(a.reason_code.as_u8());
    encode_properties(&a.properties, context(packet_type), buf)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use crate::codec::decode;
    use crate::error::ProtocolError;
    use crate::packet::{Packet, PacketType, PubAck};
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::string::MqttString;
    use crate::types::{PacketId, ProtocolVersion};
    use crate::PropertySet;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(version));
        buf.to_vec()
    }

    fn decode_bytes(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, ProtocolError> {
        decode(&mut BytesMut::from(bytes), version, 1024)
    }

    #[test]
    fn short_forms_are_written_and_read() {
        let success = Packet::PubAck(PubAck::success(id(7)));
        assert_eq!(encode(&success, ProtocolVersion::V5), [0x40, 2, 0, 7]);
        assert_eq!(encode(&success, ProtocolVersion::V3_1_1), [0x40, 2, 0, 7]);
        let refused = Packet::PubRec(PubAck {
            reason_code: ReasonCode::QuotaExceeded,
            ..PubAck::success(id(7))
        });
        assert_eq!(encode(&refused, ProtocolVersion::V5), [0x50, 3, 0, 7, 0x97]);
        assert_eq!(
            decode_bytes(&[0x50, 3, 0, 7, 0x97], ProtocolVersion::V5),
            Ok(Some(refused))
        );
        // The long form of Success with an empty property list decodes to the same packet.
        assert_eq!(
            decode_bytes(&[0x40, 4, 0, 7, 0, 0], ProtocolVersion::V5),
            Ok(Some(success))
        );
    }

    #[test]
    fn pubrel_uses_flags_0010_and_release_reasons() {
        let pubrel = Packet::PubRel(PubAck {
            reason_code: ReasonCode::PacketIdentifierNotFound,
            properties: Properties::from(PropertySet {
                reason_string: Some(MqttString::from_static("gone")),
                ..PropertySet::default()
            }),
            ..PubAck::success(id(300))
        });
        let bytes = encode(&pubrel, ProtocolVersion::V5);
        assert_eq!(
            bytes,
            [0x62, 11, 0x01, 0x2C, 0x92, 7, 0x1F, 0, 4, b'g', b'o', b'n', b'e']
        );
        assert_eq!(decode_bytes(&bytes, ProtocolVersion::V5), Ok(Some(pubrel)));
        assert_eq!(
            decode_bytes(&[0x60, 2, 0, 1], ProtocolVersion::V3_1_1),
            Err(ProtocolError::InvalidFlags {
                packet_type: PacketType::PubRel,
                flags: 0,
                version: ProtocolVersion::V3_1_1
            })
        );
        // 0x10 No matching subscribers is a PUBACK code, not a PUBCOMP one.
        assert_eq!(
            decode_bytes(&[0x70, 3, 0, 1, 0x10], ProtocolVersion::V5),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::PubComp,
                code: 0x10
            })
        );
    }

    #[test]
    fn v311_acks_have_exactly_two_bytes() {
        assert_eq!(
            decode_bytes(&[0x40, 3, 0, 1, 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::TrailingBytes {
                packet_type: PacketType::PubAck,
                extra: 1
            })
        );
        assert_eq!(
            decode_bytes(&[0x40, 1, 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::Truncated {
                field: "packet identifier"
            })
        );
        assert!(matches!(
            decode_bytes(&[0x40, 2, 0, 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::ZeroPacketId { .. })
        ));
    }

    #[test]
    fn reason_codes_outside_the_table_are_not_encoded() {
        let ack = Packet::PubAck(PubAck {
            reason_code: ReasonCode::Banned,
            ..PubAck::success(id(1))
        });
        let mut buf = BytesMut::new();
        assert!(matches!(
            ack.encode(ProtocolVersion::V5, &mut buf),
            Err(ProtocolError::InvalidReasonCode { .. })
        ));
        assert!(buf.is_empty());
    }
}
