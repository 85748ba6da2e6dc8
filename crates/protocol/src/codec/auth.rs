//! AUTH (3.15), MQTT 5 only: a reason code and properties, both left out when the reason is
//! Success and there are no properties ("In this case the AUTH has a Remaining Length of 0").
//! Unlike DISCONNECT, a reason code without a property length is not a form the spec allows.

use super::primitives::{Output, Reader};
use super::properties::{decode_properties, encode_properties, properties_block_len};
use super::property_rules::PropertyContext;
use super::{check_reason, reason_in};
use crate::error::ProtocolError;
use crate::packet::{Auth, PacketType};
use crate::reason::ReasonCode;

/// Authenticate Reason Codes (3.15.2.1) [MQTT-3.15.2-1].
const AUTH_REASONS: [ReasonCode; 3] = [
    ReasonCode::Success,
    ReasonCode::ContinueAuthentication,
    ReasonCode::ReAuthenticate,
];

pub(crate) fn decode(r: &mut Reader) -> Result<Auth, ProtocolError> {
    if r.is_empty() {
        return Ok(Auth {
            reason_code: ReasonCode::Success,
            properties: Default::default(),
        });
    }
    let code = r.read_u8("authenticate reason code")?;
    let reason_code = reason_in(code, &AUTH_REASONS, PacketType::Auth)?;
    let properties = decode_properties(r, PropertyContext::Auth)?;
    Ok(Auth {
        reason_code,
        properties,
    })
}

pub(crate) fn body_len(a: &Auth) -> usize {
    if a.reason_code == ReasonCode::Success && a.properties.is_empty() {
        0
    } else {
        1 + properties_block_len(&a.properties)
    }
}

pub(crate) fn encode_body(a: &Auth, buf: &mut impl Output) -> Result<(), ProtocolError> {
    check_reason(a.reason_code, &AUTH_REASONS, PacketType::Auth)?;
    if a.reason_code == ReasonCode::Success && a.properties.is_empty() {
        return Ok(());
    }
    buf.write_u8(a.reason_code.as_u8());
    encode_properties(&a.properties, PropertyContext::Auth, buf)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::codec::decode;
    use crate::packet::Packet;
    use crate::properties::Properties;
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
    fn round_trip_and_short_form() {
        let success = Packet::Auth(Auth {
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        });
        let mut buf = BytesMut::new();
        success.encode(ProtocolVersion::V5, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0xF0, 0]);
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V5, 1024),
            Ok(Some(success))
        );

        let step = Packet::Auth(Auth {
            reason_code: ReasonCode::ContinueAuthentication,
            properties: Properties::from(PropertySet {
                authentication_method: Some(MqttString::from_static("SCRAM")),
                authentication_data: Some(Bytes::from_static(b"nonce")),
                ..PropertySet::default()
            }),
        });
        success_len_matches(&step);
        let mut buf = BytesMut::new();
        step.encode(ProtocolVersion::V5, &mut buf).unwrap();
        assert_eq!(decode(&mut buf, ProtocolVersion::V5, 1024), Ok(Some(step)));
    }

    fn success_len_matches(packet: &Packet) {
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(ProtocolVersion::V5));
    }

    #[test]
    fn auth_exists_only_in_v5() {
        let packet = Packet::Auth(Auth {
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        });
        let mut buf = BytesMut::new();
        assert_eq!(
            packet.encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(ProtocolError::PacketNotInVersion {
                packet_type: PacketType::Auth,
                version: ProtocolVersion::V3_1_1
            })
        );
        assert!(buf.is_empty());
        assert_eq!(
            decode_bytes(&[0xF0, 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::ReservedPacketType {
                packet_type: 15,
                version: ProtocolVersion::V3_1_1
            })
        );
    }

    #[test]
    fn reason_without_property_length_is_malformed() {
        assert_eq!(
            decode_bytes(&[0xF0, 1, 0x18], ProtocolVersion::V5),
            Err(ProtocolError::Truncated {
                field: "property length"
            })
        );
        assert_eq!(
            decode_bytes(&[0xF0, 2, 0x80, 0], ProtocolVersion::V5),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::Auth,
                code: 0x80
            })
        );
    }
}
