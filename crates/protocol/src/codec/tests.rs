//! Tests of the framing contract shared by every packet: `Ok(None)` until a packet is complete,
//! exactly one packet consumed per `Ok(Some)`, the size limit enforced from the fixed header
//! alone, fixed-header flag rules, and the version tracking of [`Decoder`].

use crate::PropertySet;
use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::packet::{Connect, PubAck, Publish};
use crate::properties::Properties;
use crate::string::MqttString;
use crate::topic::TopicName;
use crate::types::QoS;

fn sample_publish() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new("sensors/1/temp").unwrap(),
        packet_id: PacketId::new(42),
        properties: Properties::from(PropertySet {
            message_expiry_interval: Some(60),
            ..PropertySet::default()
        }),
        payload: Bytes::from(vec![7u8; 200]),
    })
}

fn sample_connect(protocol: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol,
        clean_start: true,
        keep_alive: 30,
        client_id: MqttString::from_static("c1"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
}

/// What a packet looks like after a trip through `version`: 3.1.1 drops the properties.
fn as_seen_in(packet: Packet, version: ProtocolVersion) -> Packet {
    match packet {
        Packet::Publish(mut p) if !version.is_v5() => {
            p.properties = Properties::default();
            Packet::Publish(p)
        }
        other => other,
    }
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).unwrap();
    buf
}

#[test]
fn one_byte_at_a_time_yields_none_until_the_last_byte() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let packet = sample_publish();
        let bytes = encoded(&packet, version);
        // Two bytes of remaining length, so the header itself arrives in pieces too.
        assert!(bytes.len() > 130);
        let mut buf = BytesMut::new();
        for (i, &byte) in bytes.iter().enumerate() {
            buf.put_u8(byte);
            let before = buf.clone();
            let result = decode(&mut buf, version, MAX_PACKET_SIZE);
            if i + 1 < bytes.len() {
                assert_eq!(result, Ok(None), "byte {i}");
                assert_eq!(buf, before, "Ok(None) must leave the buffer untouched");
            } else {
                assert_eq!(result, Ok(Some(as_seen_in(packet.clone(), version))));
                assert!(buf.is_empty());
            }
        }
    }
}

#[test]
fn back_to_back_packets_are_consumed_one_at_a_time() {
    let first = sample_publish();
    let second = Packet::PubAck(PubAck::success(PacketId::new(42).unwrap()));
    let mut buf = encoded(&first, ProtocolVersion::V5);
    buf.extend_from_slice(&encoded(&second, ProtocolVersion::V5));
    buf.extend_from_slice(&[0xC0]); // the first byte of a PINGREQ
    assert_eq!(decode(&mut buf, ProtocolVersion::V5, 1024), Ok(Some(first)));
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V5, 1024),
        Ok(Some(second))
    );
    assert_eq!(decode(&mut buf, ProtocolVersion::V5, 1024), Ok(None));
    buf.put_u8(0);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V5, 1024),
        Ok(Some(Packet::PingReq))
    );
    assert!(buf.is_empty());
}

#[test]
fn too_large_is_refused_from_the_header_alone() {
    // A PUBLISH announcing 2,097,151 bytes, of which only the fixed header has arrived.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0x7F][..]);
    let err = decode(&mut buf, ProtocolVersion::V5, 1_000_000).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::PacketTooLarge {
            size: 4 + 2_097_151,
            max: 1_000_000
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
    // The limit covers the whole packet: a packet of exactly the limit passes.
    let packet = sample_publish();
    let bytes = encoded(&packet, ProtocolVersion::V5);
    let exact = u32::try_from(bytes.len()).unwrap();
    assert_eq!(
        decode(&mut bytes.clone(), ProtocolVersion::V5, exact),
        Ok(Some(packet))
    );
    assert!(matches!(
        decode(&mut bytes.clone(), ProtocolVersion::V5, exact - 1),
        Err(ProtocolError::PacketTooLarge { .. })
    ));
}

#[test]
fn remaining_length_edge_cases() {
    // Five length bytes: malformed as soon as the fourth continuation bit is seen.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    let err = decode(&mut buf, ProtocolVersion::V3_1_1, MAX_PACKET_SIZE).unwrap_err();
    assert_eq!(err, ProtocolError::VarIntTooLong);
    assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    assert_eq!(err.conformance(), Some("MQTT-1.5.5-1"));
    // A PINGREQ whose remaining length 0 is written in two bytes: MQTT 5 requires the
    // minimal encoding [MQTT-1.5.5-1]; 3.1.1 states no such rule.
    let pingreq = [0xC0, 0x80, 0x00];
    assert_eq!(
        decode(&mut BytesMut::from(&pingreq[..]), ProtocolVersion::V5, 1024),
        Err(ProtocolError::VarIntNotMinimal)
    );
    assert_eq!(
        decode(
            &mut BytesMut::from(&pingreq[..]),
            ProtocolVersion::V3_1_1,
            1024
        ),
        Ok(Some(Packet::PingReq))
    );
}

#[test]
fn remaining_length_shorter_or_longer_than_the_content() {
    // PINGRESP with one byte too many.
    assert_eq!(
        decode(
            &mut BytesMut::from(&[0xD0, 1, 0][..]),
            ProtocolVersion::V5,
            1024
        ),
        Err(ProtocolError::TrailingBytes {
            packet_type: PacketType::PingResp,
            extra: 1
        })
    );
    // SUBSCRIBE whose filter length runs past the remaining length.
    assert_eq!(
        decode(
            &mut BytesMut::from(&[0x82, 5, 0, 1, 0, 9, b'a'][..]),
            ProtocolVersion::V3_1_1,
            1024
        ),
        Err(ProtocolError::Truncated {
            field: "topic filter"
        })
    );
}

#[test]
fn reserved_types_and_flags() {
    assert_eq!(
        decode(
            &mut BytesMut::from(&[0x00, 0][..]),
            ProtocolVersion::V5,
            1024
        ),
        Err(ProtocolError::ReservedPacketType {
            packet_type: 0,
            version: ProtocolVersion::V5
        })
    );
    for (first, packet_type) in [
        (0x11, PacketType::Connect),
        (0x48, PacketType::PubAck),
        (0x80, PacketType::Subscribe),
        (0xA0, PacketType::Unsubscribe),
        (0xC1, PacketType::PingReq),
        (0xF2, PacketType::Auth),
    ] {
        let err = decode(
            &mut BytesMut::from(&[first, 0][..]),
            ProtocolVersion::V5,
            1024,
        )
        .unwrap_err();
        assert!(
            matches!(err, ProtocolError::InvalidFlags { packet_type: t, .. } if t == packet_type),
            "{first:#04x}: {err:?}"
        );
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        assert!(err.conformance().is_some());
    }
}

#[test]
fn decoder_learns_the_version_from_connect() {
    let mut decoder = Decoder::new(1024);
    assert_eq!(decoder.version(), None);
    // Nothing but CONNECT may come first [MQTT-3.1.0-1].
    let err = decoder
        .decode(&mut BytesMut::from(&[0xC0, 0][..]))
        .unwrap_err();
    assert_eq!(err, ProtocolError::ExpectedConnect { packet_type: 12 });
    assert_eq!(err.conformance(), Some("MQTT-3.1.0-1"));

    let mut buf = encoded(
        &sample_connect(ProtocolVersion::V3_1_1),
        ProtocolVersion::V5,
    );
    buf.extend_from_slice(&[0xE0, 0]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(decoder.version(), Some(ProtocolVersion::V3_1_1));
    // AUTH does not exist in 3.1.1.
    let mut auth = BytesMut::from(&[0xF0, 0][..]);
    assert!(matches!(
        decoder.decode(&mut auth),
        Err(ProtocolError::ReservedPacketType { .. })
    ));
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Disconnect(Default::default())))
    );

    let mut decoder = Decoder::with_version(ProtocolVersion::V5, 4);
    assert_eq!(decoder.version(), Some(ProtocolVersion::V5));
    assert!(matches!(
        decoder.decode(&mut encoded(&sample_publish(), ProtocolVersion::V5)),
        Err(ProtocolError::PacketTooLarge { max: 4, .. })
    ));
    decoder.set_max_packet_size(MAX_PACKET_SIZE);
    decoder.set_version(ProtocolVersion::V3_1_1);
    assert_eq!(
        decoder.decode(&mut encoded(&sample_publish(), ProtocolVersion::V3_1_1)),
        Ok(Some(as_seen_in(sample_publish(), ProtocolVersion::V3_1_1)))
    );
}

#[test]
fn v5_connect_needs_a_minimal_remaining_length() {
    let bytes = encoded(&sample_connect(ProtocolVersion::V5), ProtocolVersion::V5);
    let (first, body) = (bytes[0], &bytes[2..]);
    let mut stretched = BytesMut::new();
    stretched.put_u8(first);
    stretched.put_slice(&[0x80 | u8::try_from(body.len()).unwrap(), 0x00]);
    stretched.put_slice(body);
    assert_eq!(
        Decoder::new(1024).decode(&mut stretched),
        Err(ProtocolError::VarIntNotMinimal)
    );
}

#[test]
fn ping_packets() {
    for (packet, byte) in [(Packet::PingReq, 0xC0), (Packet::PingResp, 0xD0)] {
        for version in [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ] {
            let mut buf = encoded(&packet, version);
            assert_eq!(&buf[..], &[byte, 0]);
            assert_eq!(decode(&mut buf, version, 2), Ok(Some(packet.clone())));
        }
    }
}

#[test]
fn oversized_packets_are_not_encoded() {
    let huge = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::new("t").unwrap(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0u8; MAX_VARINT as usize]),
    });
    let mut buf = BytesMut::new();
    assert_eq!(
        huge.encode(ProtocolVersion::V3_1_1, &mut buf),
        Err(ProtocolError::RemainingLengthTooLarge {
            length: MAX_VARINT as usize + 3
        })
    );
    assert!(buf.is_empty());
}

#[test]
fn a_failed_connect_still_reveals_its_version() {
    let mut bytes = encoded(&sample_connect(ProtocolVersion::V5), ProtocolVersion::V5);
    // Set the reserved connect flag: byte 2 + 2 + 4 + 1 of the packet is the flags byte.
    let flags_at = 2 + 2 + 4 + 1;
    if let Some(flags) = bytes.get_mut(flags_at) {
        *flags |= 1;
    }
    let mut decoder = Decoder::new(1024);
    assert_eq!(
        decoder.decode(&mut bytes),
        Err(ProtocolError::ConnectReservedFlag)
    );
    assert_eq!(decoder.version(), Some(ProtocolVersion::V5));
    // An unsupported level reveals nothing.
    let mut decoder = Decoder::new(1024);
    let mut bytes = BytesMut::from(&[0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 0, 0, 0][..]);
    assert!(matches!(
        decoder.decode(&mut bytes),
        Err(ProtocolError::UnsupportedProtocol { level: 9, .. })
    ));
    assert_eq!(decoder.version(), None);
}
