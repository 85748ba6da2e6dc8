//! DISCONNECT (3.14) on the wire. Before 5.0 it has no body. In 5.0 the reason code and the
//! properties may be left out: "If the Remaining Length is less than 1 the value of 0x00
//! (Normal disconnection) is used" and "If the Remaining Length is less than 2, a value of 0 is
//! used" for the property length (3.14.2.1, 3.14.2.2.1). The encoder writes the shortest form.

use super::primitives::{Output, Reader};
use super::properties::{decode_properties, encode_properties, properties_block_len};
use super::property_rules::PropertyContext;
use super::{check_reason, reason_in};
use crate::error::ProtocolError;
use crate::packet::{Disconnect, PacketType};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// Disconnect Reason Codes (3.14.2.1) [MQTT-3.14.2-1].
const DISCONNECT_REASONS: [ReasonCode; 29] = [
    ReasonCode::Success,
    ReasonCode::DisconnectWithWillMessage,
    ReasonCode::UnspecifiedError,
    ReasonCode::MalformedPacket,
    ReasonCode::ProtocolError,
    ReasonCode::ImplementationSpecificError,
    ReasonCode::NotAuthorized,
    ReasonCode::ServerBusy,
    ReasonCode::ServerShuttingDown,
    ReasonCode::KeepAliveTimeout,
    ReasonCode::SessionTakenOver,
    ReasonCode::TopicFilterInvalid,
    ReasonCode::TopicNameInvalid,
    ReasonCode::ReceiveMaximumExceeded,
    ReasonCode::TopicAliasInvalid,
    ReasonCode::PacketTooLarge,
    ReasonCode::MessageRateTooHigh,
    ReasonCode::QuotaExceeded,
    ReasonCode::AdministrativeAction,
    ReasonCode::PayloadFormatInvalid,
    ReasonCode::RetainNotSupported,
    ReasonCode::QoSNotSupported,
    ReasonCode::UseAnotherServer,
    ReasonCode::ServerMoved,
    ReasonCode::SharedSubscriptionsNotSupported,
    ReasonCode::ConnectionRateExceeded,
    ReasonCode::MaximumConnectTime,
    ReasonCode::SubscriptionIdentifiersNotSupported,
    ReasonCode::WildcardSubscriptionsNotSupported,
];

pub(crate) fn decode(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Disconnect, ProtocolError> {
    let mut disconnect = Disconnect::default();
    // Before 5.0 the remaining length is 0; anything more is reported as trailing bytes.
    if !version.is_v5() || r.is_empty() {
        return Ok(disconnect);
    }
    let code = r.read_u8("disconnect reason code")?;
    disconnect.reason_code = reason_in(code, &DISCONNECT_REASONS, PacketType::Disconnect)?;
    if !r.is_empty() {
        disconnect.properties = decode_properties(r, PropertyContext::Disconnect)?;
    }
    Ok(disconnect)
}

pub(crate) fn body_len(d: &Disconnect, version: ProtocolVersion) -> usize {
    if !version.is_v5() {
        return 0;
    }
    if d.properties.is_empty() {
        usize::from(d.reason_code != ReasonCode::Success)
    } else {
        1 + properties_block_len(&d.properties)
    }
}

pub(crate) fn encode_body(
    d: &Disconnect,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    if !version.is_v5() {
        return Ok(());
    }
    check_reason(d.reason_code, &DISCONNECT_REASONS, PacketType::Disconnect)?;
    if d.properties.is_empty() {
        if d.reason_code != ReasonCode::Success {
            buf.write_u8(d.reason_code.as_u8());
        }
        return Ok(());
    }
    buf.write_u8(d.reason_code.as_u8());
    encode_properties(&d.properties, PropertyContext::Disconnect, buf)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::decode;
    use crate::packet::Packet;
    use crate::properties::Properties;
    use crate::PropertySet;

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
    fn short_forms() {
        let normal = Packet::Disconnect(Disconnect::default());
        assert_eq!(encode(&normal, ProtocolVersion::V5), [0xE0, 0]);
        assert_eq!(encode(&normal, ProtocolVersion::V3_1_1), [0xE0, 0]);
        let with_will = Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage));
        assert_eq!(encode(&with_will, ProtocolVersion::V5), [0xE0, 1, 0x04]);
        assert_eq!(
            decode_bytes(&[0xE0, 1, 0x04], ProtocolVersion::V5),
            Ok(Some(with_will))
        );
        assert_eq!(
            decode_bytes(&[0xE0, 0], ProtocolVersion::V5),
            Ok(Some(normal.clone()))
        );
        assert_eq!(
            decode_bytes(&[0xE0, 2, 0, 0], ProtocolVersion::V5),
            Ok(Some(normal))
        );
    }

    #[test]
    fn properties_round_trip() {
        let packet = Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::ServerMoved,
            properties: Properties::from(PropertySet {
                session_expiry_interval: Some(0),
                server_reference: Some(crate::string::MqttString::from_static("b:1883")),
                ..PropertySet::default()
            }),
        });
        let bytes = encode(&packet, ProtocolVersion::V5);
        assert_eq!(decode_bytes(&bytes, ProtocolVersion::V5), Ok(Some(packet)));
    }

    #[test]
    fn rules() {
        assert_eq!(
            decode_bytes(&[0xE0, 1, 0x05], ProtocolVersion::V5),
            Err(ProtocolError::InvalidReasonCode {
                packet_type: PacketType::Disconnect,
                code: 0x05
            })
        );
        assert_eq!(
            decode_bytes(&[0xE0, 1, 0x00], ProtocolVersion::V3_1_1),
            Err(ProtocolError::TrailingBytes {
                packet_type: PacketType::Disconnect,
                extra: 1
            })
        );
        let err = decode_bytes(&[0xE1, 0], ProtocolVersion::V5).unwrap_err();
        assert_eq!(err.conformance(), Some("MQTT-3.14.1-1"));
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }
}
