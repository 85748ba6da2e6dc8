//! CONNACK (3.2) on the wire: acknowledge flags, the reason code (a 3.1.1 return code before
//! 5.0, mapped onto [`ReasonCode`]) and the MQTT 5 properties.

use super::primitives::{Output, Reader};
use super::properties::{encode_properties, properties_block_len, properties_if_v5};
use super::property_rules::PropertyContext;
use super::{check_reason, reason_in};
use crate::error::ProtocolError;
use crate::packet::{ConnAck, PacketType};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// Table 3-1, the Connect Reason Codes [MQTT-3.2.2-8].
const CONNACK_REASONS: [ReasonCode; 22] = [
    ReasonCode::Success,
    ReasonCode::UnspecifiedError,
    ReasonCode::MalformedPacket,
    ReasonCode::ProtocolError,
    ReasonCode::ImplementationSpecificError,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::ClientIdentifierNotValid,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::NotAuthorized,
    ReasonCode::ServerUnavailable,
    ReasonCode::ServerBusy,
    ReasonCode::Banned,
    ReasonCode::BadAuthenticationMethod,
    ReasonCode::TopicNameInvalid,
    ReasonCode::PacketTooLarge,
    ReasonCode::QuotaExceeded,
    ReasonCode::PayloadFormatInvalid,
    ReasonCode::RetainNotSupported,
    ReasonCode::QoSNotSupported,
    ReasonCode::UseAnotherServer,
    ReasonCode::ServerMoved,
    ReasonCode::ConnectionRateExceeded,
];

const SESSION_PRESENT: u8 = 0b0000_0001;

pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<ConnAck, ProtocolError> {
    let flags = r.read_u8("connect acknowledge flags")?;
    let code = r.read_u8("connect reason code")?;
    // MQTT 3.1 has no session present flag: the whole byte is unused there.
    let session_present = if version == ProtocolVersion::V3_1 {
        false
    } else {
        // "Bits 7-1 are reserved and MUST be set to 0" [MQTT-3.2.2-1].
        if flags & !SESSION_PRESENT != 0 {
            return Err(ProtocolError::ConnAckReservedFlags { flags, version });
        }
        flags & SESSION_PRESENT != 0
    };
    let reason_code = if version.is_v5() {
        reason_in(code, &CONNACK_REASONS, PacketType::ConnAck)?
    } else {
        ReasonCode::from_v3_connack(code).ok_or(ProtocolError::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code,
        })?
    };
    // A refused connection never has a session [MQTT-3.2.2-6] (5.0), [MQTT-3.2.2-4] (3.1.1).
    if session_present && reason_code != ReasonCode::Success {
        return Err(ProtocolError::SessionPresentOnFailure { version });
    }
    let properties = properties_if_v5(r, version, PropertyContext::ConnAck)?;
    Ok(ConnAck {
        session_present,
        reason_code,
        properties,
    })
}

pub(crate) fn body_len(c: &ConnAck, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        2 + properties_block_len(&c.properties)
    } else {
        2
    }
}

pub(crate) fn encode_body(
    c: &ConnAck,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    let session_present = c.session_present && version != ProtocolVersion::V3_1;
    if session_present && c.reason_code != ReasonCode::Success {
        return Err(ProtocolError::SessionPresentOnFailure { version });
    }
    if version.is_v5() {
        check_reason(c.reason_code, &CONNACK_REASONS, PacketType::ConnAck)?;
    }
    buf.write_u8(u8::from(session_present));
    if version.is_v5() {
        buf.write_u8(c.reason_code.as_u8());
        encode_properties(&c.properties, PropertyContext::ConnAck, buf)
    } else {
        // Reason codes without a 3.1.1 counterpart become 3, "Server unavailable".
        buf.write_u8(c.reason_code.to_v3_connack());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use crate::codec::decode;
    use crate::error::ProtocolError;
    use crate::packet::{ConnAck, Packet, PacketType};
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::string::MqttString;
    use crate::types::ProtocolVersion;
    use crate::PropertySet;

    fn decode_bytes(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, ProtocolError> {
        decode(&mut BytesMut::from(bytes), version, 1024)
    }

    #[test]
    fn v311_return_codes() {
        assert_eq!(
            decode_bytes(&[0x20, 2, 1, 0], ProtocolVersion::V3_1_1),
            Ok(Some(Packet::ConnAck(ConnAck {
                session_present: true,
                reason_code: ReasonCode::Success,
                properties: Properties::default(),
            })))
        );
        assert_eq!(
            decode_bytes(&[0x20, 2, 0, 5], ProtocolVersion::V3_1_1),
            Ok(Some(Packet::ConnAck(ConnAck {
                session_present: false,
                reason_code: ReasonCode::NotAuthorized,
                properties: Properties::default(),
            })))
        );
        assert_eq!(
            decode_bytes(&[0x20, 2, 0, 6], ProtocolVersion::V3_1_1),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::ConnAck,
                code: 6
            })
        );
        assert_eq!(
            decode_bytes(&[0x20, 2, 2, 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::ConnAckReservedFlags {
                flags: 2,
                version: ProtocolVersion::V3_1_1
            })
        );
        assert!(matches!(
            decode_bytes(&[0x20, 2, 1, 4], ProtocolVersion::V3_1_1),
            Err(ProtocolError::SessionPresentOnFailure { .. })
        ));
    }

    #[test]
    fn v5_reason_codes_and_properties() {
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: ReasonCode::BadUserNameOrPassword,
            properties: Properties::from(PropertySet {
                reason_string: Some(MqttString::from_static("no")),
                maximum_qos: Some(1),
                retain_available: Some(false),
                ..PropertySet::default()
            }),
        });
        let mut buf = BytesMut::new();
        connack.encode(ProtocolVersion::V5, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &[0x20, 12, 0, 0x86, 9, 0x1F, 0, 2, b'n', b'o', 0x24, 1, 0x25, 0]
        );
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V5, 1024),
            Ok(Some(connack))
        );
        // Granted QoS 1 is a SUBACK code, not a CONNACK one.
        assert_eq!(
            decode_bytes(&[0x20, 3, 0, 0x01, 0], ProtocolVersion::V5),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::ConnAck,
                code: 1
            })
        );
    }

    #[test]
    fn v311_encoding_maps_reason_codes() {
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: ReasonCode::UnsupportedProtocolVersion,
            properties: Properties::default(),
        });
        let mut buf = BytesMut::new();
        connack.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0x20, 2, 0, 1]);
    }
}
