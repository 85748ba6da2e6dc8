//! CONNECT (3.1) on the wire: protocol name and level (which decide the version of the whole
//! connection), connect flags, keep alive, properties, and the payload of client identifier,
//! will, user name and password. Rules a server applies on top (client identifier length in
//! 3.1, authentication) are not the codec's.

use super::primitives::{prefixed_len, put_binary, put_string, Output, Reader};
use super::properties::{encode_properties, properties_block_len, properties_if_v5};
use super::property_rules::PropertyContext;
use super::varint::decode_varint;
use crate::error::ProtocolError;
use crate::packet::{Connect, Will};
use crate::topic::TopicName;
use crate::types::{ProtocolVersion, QoS};

const USERNAME: u8 = 0b1000_0000;
const PASSWORD: u8 = 0b0100_0000;
const WILL_RETAIN: u8 = 0b0010_0000;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_FLAG: u8 = 0b0000_0100;
const CLEAN_START: u8 = 0b0000_0010;
const RESERVED: u8 = 0b0000_0001;

/// Maps the protocol name and level to a version; anything else is answered with 0x84.
#[inline]
fn protocol_version(name: &[u8], level: u8) -> Result<ProtocolVersion, ProtocolError> {
    match (name, level) {
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQTT", 4) => Ok(ProtocolVersion::V3_1_1),
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V3_1),
        _ => Err(ProtocolError::UnsupportedProtocol {
            name: String::from_utf8_lossy(name).into_owned(),
            level,
        }),
    }
}

/// The version a CONNECT at the start of `buf` names, if its protocol name and level have
/// arrived and are known. Lets a server answer a CONNECT that fails to decode in the format of
/// the version the client asked for.
pub(crate) fn peek_version(buf: &[u8]) -> Option<ProtocolVersion> {
    if buf.first().map(|b| b >> 4) != Some(1) {
        return None;
    }
    let header = decode_varint(buf.get(1..)?).ok()??;
    let rest = buf.get(1 + header.len..)?;
    let name_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let name = rest.get(2..2 + name_len)?;
    let level = *rest.get(2 + name_len)?;
    protocol_version(name, level).ok()
}

// Inlined so that the connect is built where the box is filled, see `decode_packet`.
#[inline(always)]
pub(crate) fn decode(r: &mut Reader) -> Result<Connect, ProtocolError> {
    // Read as binary so that an unknown name is reported as such, not as a bad string; it is
    // only compared, so it is read in place rather than split off.
    const NAME: &str = "protocol name";
    let (name_len, rest) = r
        .peek()
        .split_first_chunk::<2>()
        .ok_or(ProtocolError::Truncated { field: NAME })?;
    let name_len = usize::from(u16::from_be_bytes(*name_len));
    let (name, rest) = rest
        .split_at_checked(name_len)
        .ok_or(ProtocolError::Truncated { field: NAME })?;
    let level = *rest.first().ok_or(ProtocolError::Truncated {
        field: "protocol level",
    })?;
    let protocol = protocol_version(name, level)?;
    r.skip(2 + name_len + 1);
    let flags = r.read_u8("connect flags")?;
    // "The Server MUST validate that the reserved flag in the CONNECT packet is set to 0"
    // [MQTT-3.1.2-3].
    if flags & RESERVED != 0 {
        return Err(ProtocolError::ConnectReservedFlag);
    }
    let v5 = protocol.is_v5();
    let has_will = flags & WILL_FLAG != 0;
    let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0b11;
    let will_retain = flags & WILL_RETAIN != 0;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    if !has_will {
        // No will, so Will QoS is 0 and Will Retain too (5.0: [MQTT-3.1.2-11], [MQTT-3.1.2-13];
        // 3.1.1: [MQTT-3.1.2-13], [MQTT-3.1.2-15]).
        if will_qos_bits != 0 {
            return Err(ProtocolError::WillQoSWithoutWill { v5 });
        }
        if will_retain {
            return Err(ProtocolError::WillRetainWithoutWill { v5 });
        }
    }
    // Will QoS is 0, 1 or 2 (5.0: [MQTT-3.1.2-12]; 3.1.1: [MQTT-3.1.2-14]).
    let will_qos = QoS::from_u8(will_qos_bits).ok_or(ProtocolError::WillQoSInvalid { v5 })?;
    // Before 5.0: "If the User Name Flag is set to 0, the Password Flag MUST be set to 0"
    // [MQTT-3.1.2-22].
    if has_password && !has_username && !protocol.is_v5() {
        return Err(ProtocolError::PasswordWithoutUsername);
    }
    let keep_alive = r.read_u16("keep alive")?;
    let properties = properties_if_v5(r, protocol, PropertyContext::Connect)?;
    // "The ClientID MUST be present and is the first field in the CONNECT packet Payload"
    // [MQTT-3.1.3-3], "MUST be a UTF-8 Encoded String" [MQTT-3.1.3-4].
    let client_id = r.read_string("client identifier")?;
    let will = if has_will {
        let will_properties = properties_if_v5(r, protocol, PropertyContext::Will)?;
        let (topic, scan) = r.read_string_scanned("will topic")?;
        let topic =
            TopicName::from_scanned(topic, scan).map_err(ProtocolError::InvalidTopicName)?;
        let payload = r.read_binary("will payload")?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties: will_properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.read_string("user name")?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.read_binary("password")?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

pub(crate) fn body_len(c: &Connect) -> usize {
    let v5 = c.protocol.is_v5();
    let mut len = prefixed_len(c.protocol.protocol_name().as_bytes()) + 1 + 1 + 2;
    if v5 {
        len += properties_block_len(&c.properties);
    }
    len += prefixed_len(c.client_id.as_bytes());
    if let Some(will) = &c.will {
        if v5 {
            len += properties_block_len(&will.properties);
        }
        len += prefixed_len(will.topic.as_mqtt_str().as_bytes()) + prefixed_len(&will.payload);
    }
    if let Some(username) = &c.username {
        len += prefixed_len(username.as_bytes());
    }
    if let Some(password) = &c.password {
        len += prefixed_len(password);
    }
    len
}

pub(crate) fn encode_body(c: &Connect, buf: &mut impl Output) -> Result<(), ProtocolError> {
    let v5 = c.protocol.is_v5();
    if c.password.is_some() && c.username.is_none() && !v5 {
        return Err(ProtocolError::PasswordWithoutUsername);
    }
    let mut flags = 0;
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    if let Some(will) = &c.will {
        if will.topic.is_empty() {
            return Err(ProtocolError::InvalidTopicName(
                crate::topic::TopicError::Empty,
            ));
        }
        flags |= WILL_FLAG | ((will.qos as u8) << WILL_QOS_SHIFT);
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.clean_start {
        flags |= CLEAN_START;
    }
    let name = c.protocol.protocol_name().as_bytes();
    put_binary(buf, name, "protocol name")?;
    buf.write_u8(c.protocol.level());
    buf.write_u8(flags);
    buf.write_u16(c.keep_alive);
    if v5 {
        encode_properties(&c.properties, PropertyContext::Connect, buf)?;
    }
    put_string(buf, &c.client_id);
    if let Some(will) = &c.will {
        if v5 {
            encode_properties(&will.properties, PropertyContext::Will, buf)?;
        }
        put_string(buf, will.topic.as_mqtt_str());
        put_binary(buf, &will.payload, "will payload")?;
    }
    if let Some(username) = &c.username {
        put_string(buf, username);
    }
    if let Some(password) = &c.password {
        put_binary(buf, password, "password")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};

    use super::*;
    use crate::codec::{decode, Decoder};
    use crate::packet::Packet;
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::string::MqttString;

    fn connect(protocol: ProtocolVersion) -> Connect {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: MqttString::from_static("device-7"),
            will: Some(Will {
                topic: TopicName::new("devices/7/status").unwrap(),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::default(),
            }),
            username: Some(MqttString::from_static("user")),
            password: Some(Bytes::from_static(b"secret")),
            properties: Properties::default(),
        }
    }

    fn round_trip(c: Connect) {
        let packet = Packet::Connect(Box::new(c));
        let mut buf = BytesMut::new();
        // The version argument does not matter: CONNECT names its own.
        packet.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(ProtocolVersion::V5));
        let mut decoder = Decoder::new(1024);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(packet.clone())));
        assert!(buf.is_empty());
        if let Packet::Connect(c) = &packet {
            assert_eq!(decoder.version(), Some(c.protocol));
        }
    }

    #[test]
    fn round_trips_in_every_version() {
        round_trip(connect(ProtocolVersion::V3_1));
        round_trip(connect(ProtocolVersion::V3_1_1));
        let mut v5 = connect(ProtocolVersion::V5);
        v5.properties.session_expiry_interval = Some(3600);
        v5.properties.receive_maximum = Some(10);
        v5.properties.authentication_method = Some(MqttString::from_static("SCRAM-SHA-1"));
        v5.properties.authentication_data = Some(Bytes::from_static(b"\x01\x02"));
        if let Some(will) = &mut v5.will {
            will.properties.will_delay_interval = Some(30);
            will.properties.content_type = Some(MqttString::from_static("text/plain"));
        }
        round_trip(v5);
        let minimal = Connect {
            will: None,
            username: None,
            password: None,
            client_id: MqttString::default(),
            ..connect(ProtocolVersion::V5)
        };
        round_trip(minimal);
    }

    #[test]
    fn spec_variable_header_example() {
        // 3.1.2.11: "MQTT", level 5, flags 0xCE, keep alive 10, properties: Session Expiry
        // Interval 10. Followed here by an empty client identifier, a will and credentials.
        let mut bytes = BytesMut::from(
            &[
                0x10, 31, 0, 4, b'M', b'Q', b'T', b'T', 5, 0xCE, 0, 10, 5, 0x11, 0, 0, 0, 10,
                // client id "", will properties none, will topic "a", will payload "b"
                0, 0, 0, 0, 1, b'a', 0, 1, b'b', // user name "u", password "p"
                0, 1, b'u', 0, 1, b'p',
            ][..],
        );
        // The example's flags 0xCE leave room for a will of QoS 1.
        let Ok(Some(Packet::Connect(c))) = decode(&mut bytes, ProtocolVersion::V5, 1024) else {
            panic!("CONNECT did not decode");
        };
        assert_eq!(c.protocol, ProtocolVersion::V5);
        assert_eq!(c.keep_alive, 10);
        assert_eq!(c.properties.session_expiry_interval, Some(10));
        assert_eq!(c.will.as_ref().map(|w| w.qos), Some(QoS::AtLeastOnce));
        assert!(c.clean_start);
        assert!(bytes.is_empty());
    }

    fn decode_v311(body: &[u8]) -> Result<Option<Packet>, ProtocolError> {
        let mut bytes = BytesMut::new();
        bytes.put_u8(0x10);
        bytes.put_u8(u8::try_from(body.len()).unwrap());
        bytes.put_slice(body);
        decode(&mut bytes, ProtocolVersion::V3_1_1, 1024)
    }

    const HEAD_311: [u8; 7] = [0, 4, b'M', b'Q', b'T', b'T', 4];

    fn with_flags(flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = HEAD_311.to_vec();
        body.push(flags);
        body.extend_from_slice(&[0, 30]);
        body.extend_from_slice(rest);
        body
    }

    #[test]
    fn flag_rules() {
        let cases = [
            (0b0000_0001, ProtocolError::ConnectReservedFlag),
            (0b0000_1000, ProtocolError::WillQoSWithoutWill { v5: false }),
            (
                0b0010_0000,
                ProtocolError::WillRetainWithoutWill { v5: false },
            ),
            (0b0001_1100, ProtocolError::WillQoSInvalid { v5: false }),
            (0b0100_0000, ProtocolError::PasswordWithoutUsername),
        ];
        for (flags, expected) in cases {
            let err = decode_v311(&with_flags(flags, &[0, 0])).unwrap_err();
            assert_eq!(err, expected, "flags {flags:#010b}");
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
            assert!(err.conformance().is_some());
        }
    }

    #[test]
    fn unsupported_protocols_answer_0x84() {
        for (name, level) in [
            (&b"MQTT"[..], 3u8),
            (b"MQTT", 6),
            (b"MQIsdp", 4),
            (b"HTTP", 4),
        ] {
            let mut body = vec![0, u8::try_from(name.len()).unwrap()];
            body.extend_from_slice(name);
            body.extend_from_slice(&[level, 0x02, 0, 30, 0, 0]);
            let err = decode_v311(&body).unwrap_err();
            assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
            assert!(
                matches!(err, ProtocolError::UnsupportedProtocol { level: l, .. } if l == level)
            );
        }
    }

    #[test]
    fn will_topic_must_be_a_topic_name() {
        let err = decode_v311(&with_flags(0b0000_0100, &[0, 0, 0, 1, b'#', 0, 0])).unwrap_err();
        assert_eq!(err.reason_code(), ReasonCode::TopicNameInvalid);
    }

    #[test]
    fn missing_payload_fields_are_truncation() {
        // User name flag set but no user name.
        let err = decode_v311(&with_flags(0b1000_0000, &[0, 0])).unwrap_err();
        assert_eq!(err, ProtocolError::Truncated { field: "user name" });
    }

    #[test]
    fn password_without_username_is_fine_in_v5_but_not_encodable_in_v311() {
        let mut c = connect(ProtocolVersion::V5);
        c.username = None;
        round_trip(c.clone());
        c.protocol = ProtocolVersion::V3_1_1;
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::Connect(Box::new(c)).encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(ProtocolError::PasswordWithoutUsername)
        );
        assert!(buf.is_empty());
    }
}
