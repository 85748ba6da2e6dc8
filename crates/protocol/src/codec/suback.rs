//! SUBACK and UNSUBACK (3.9, 3.11) on the wire: the packet identifier, MQTT 5 properties and
//! one reason code per topic filter. Before 5.0, SUBACK carries return codes (granted QoS or
//! 0x80) and UNSUBACK nothing but the packet identifier.

use super::primitives::{Output, Reader};
use super::properties::{
    decode_properties, encode_properties, properties_block_len, properties_if_v5,
};
use super::property_rules::PropertyContext;
use super::{check_reason, read_packet_id, reason_in};
use crate::error::ProtocolError;
use crate::packet::{PacketType, SubAck, UnsubAck};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// Subscribe Reason Codes (3.9.3) [MQTT-3.9.3-2].
const SUBACK_REASONS: [ReasonCode; 12] = [
    ReasonCode::Success,
    ReasonCode::GrantedQoS1,
    ReasonCode::GrantedQoS2,
    ReasonCode::UnspecifiedError,
    ReasonCode::ImplementationSpecificError,
    ReasonCode::NotAuthorized,
    ReasonCode::TopicFilterInvalid,
    ReasonCode::PacketIdentifierInUse,
    ReasonCode::QuotaExceeded,
    ReasonCode::SharedSubscriptionsNotSupported,
    ReasonCode::SubscriptionIdentifiersNotSupported,
    ReasonCode::WildcardSubscriptionsNotSupported,
];

/// Unsubscribe Reason Codes (3.11.3) [MQTT-3.11.3-2].
const UNSUBACK_REASONS: [ReasonCode; 7] = [
    ReasonCode::Success,
    ReasonCode::NoSubscriptionExisted,
    ReasonCode::UnspecifiedError,
    ReasonCode::ImplementationSpecificError,
    ReasonCode::NotAuthorized,
    ReasonCode::TopicFilterInvalid,
    ReasonCode::PacketIdentifierInUse,
];

pub(crate) fn decode_suback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<SubAck, ProtocolError> {
    let packet_id = read_packet_id(r, PacketType::SubAck, version)?;
    let properties = properties_if_v5(r, version, PropertyContext::SubAck)?;
    let codes = r.take_rest();
    let reason_codes = codes
        .iter()
        .map(|&code| {
            if version.is_v5() {
                reason_in(code, &SUBACK_REASONS, PacketType::SubAck)
            } else {
                // 3.1.1: 0x00, 0x01, 0x02 or 0x80; the rest "are reserved and MUST NOT be
                // used" [MQTT-3.9.3-2].
                ReasonCode::from_v3_suback(code).ok_or(ProtocolError::InvalidReasonCode {
                    packet_type: PacketType::SubAck,
                    code,
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

pub(crate) fn suback_len(s: &SubAck, version: ProtocolVersion) -> usize {
    let mut len = 2 + s.reason_codes.len();
    if version.is_v5() {
        len += properties_block_len(&s.properties);
    }
    len
}

pub(crate) fn encode_suback(
    s: &SubAck,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    buf.write_u16(s.packet_id.get());
    if version.is_v5() {
        for &reason in &s.reason_codes {
            check_reason(reason, &SUBACK_REASONS, PacketType::SubAck)?;
        }
        encode_properties(&s.properties, PropertyContext::SubAck, buf)?;
        for reason in &s.reason_codes {
            buf.write_u8(reason.as_u8());
        }
    } else {
        for reason in &s.reason_codes {
            buf.write_u8(reason.to_v3_suback());
        }
    }
    Ok(())
}

pub(crate) fn decode_unsuback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<UnsubAck, ProtocolError> {
    let packet_id = read_packet_id(r, PacketType::UnsubAck, version)?;
    // Before 5.0 UNSUBACK is only the packet identifier; more is trailing bytes.
    if !version.is_v5() {
        return Ok(UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: Default::default(),
        });
    }
    let properties = decode_properties(r, PropertyContext::UnsubAck)?;
    let reason_codes = r
        .take_rest()
        .iter()
        .map(|&code| reason_in(code, &UNSUBACK_REASONS, PacketType::UnsubAck))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

pub(crate) fn unsuback_len(u: &UnsubAck, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        2 + properties_block_len(&u.properties) + u.reason_codes.len()
    } else {
        2
    }
}

pub(crate) fn encode_unsuback(
    u: &UnsubAck,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    buf.write_u16(u.packet_id.get());
    if version.is_v5() {
        for &reason in &u.reason_codes {
            check_reason(reason, &UNSUBACK_REASONS, PacketType::UnsubAck)?;
        }
        encode_properties(&u.properties, PropertyContext::UnsubAck, buf)?;
        for reason in &u.reason_codes {
            buf.write_u8(reason.as_u8());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::decode;
    use crate::packet::Packet;
    use crate::properties::Properties;
    use crate::types::PacketId;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn decode_bytes(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, ProtocolError> {
        decode(&mut BytesMut::from(bytes), version, 1024)
    }

    fn round_trip(packet: Packet, version: ProtocolVersion) -> Vec<u8> {
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(version));
        let bytes = buf.to_vec();
        assert_eq!(decode(&mut buf, version, 1024), Ok(Some(packet)));
        bytes
    }

    #[test]
    fn suback_codes_per_version() {
        let suback = Packet::SubAck(SubAck {
            packet_id: id(10),
            reason_codes: vec![
                ReasonCode::GrantedQoS1,
                ReasonCode::Success,
                ReasonCode::UnspecifiedError,
            ],
            properties: Properties::default(),
        });
        assert_eq!(
            round_trip(suback.clone(), ProtocolVersion::V3_1_1),
            [0x90, 5, 0, 10, 1, 0, 0x80]
        );
        assert_eq!(
            round_trip(suback, ProtocolVersion::V5),
            [0x90, 6, 0, 10, 0, 1, 0, 0x80]
        );
        assert_eq!(
            decode_bytes(&[0x90, 3, 0, 10, 0x03], ProtocolVersion::V3_1_1),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::SubAck,
                code: 3
            })
        );
        assert_eq!(
            decode_bytes(&[0x90, 4, 0, 10, 0, 0x11], ProtocolVersion::V5),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::SubAck,
                code: 0x11
            })
        );
    }

    #[test]
    fn unsuback_codes_per_version() {
        let unsuback = Packet::UnsubAck(UnsubAck {
            packet_id: id(3),
            reason_codes: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
            properties: Properties::default(),
        });
        assert_eq!(
            round_trip(unsuback.clone(), ProtocolVersion::V5),
            [0xB0, 5, 0, 3, 0, 0, 0x11]
        );
        // 3.1.1 has no reason codes: they are dropped on the wire.
        let mut buf = BytesMut::new();
        unsuback.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0xB0, 2, 0, 3]);
    }
}
