//! Byte vectors for MQTT 3.1.1 (and the CONNECT of MQTT 3.1), written by hand from the OASIS
//! specification: every control packet type decodes to the expected `Packet`, decodes the
//! same when fed one byte at a time, and encodes back to the same bytes. The spec's own
//! examples are used where it gives them.

mod common;

use bytes::{Bytes, BytesMut};
use common::{assert_vector, bin, filter, pid, s, topic, NO_LIMIT};
use mquictt_protocol::properties::Properties;
use mquictt_protocol::{
    decode, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, PubAck, Publish, QoS,
    ReasonCode, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;

fn connect(client_id: &str) -> Connect {
    Connect {
        protocol: V4,
        clean_start: true,
        keep_alive: 0,
        client_id: s(client_id),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn publish(qos: QoS, name: &str, id: Option<u16>, payload: &[u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic(name),
        packet_id: id.map(pid),
        properties: Properties::default(),
        payload: bin(payload),
    }
}

#[test]
fn connect_with_the_spec_variable_header_example() {
    // 3.1.2.10, figure 3.6: protocol name "MQTT", level 4, flags 0xCE (user name, password,
    // will QoS 1, will flag, clean session), keep alive 10.
    let bytes = [
        0x10, 0x1F, // CONNECT, remaining length 31
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A, // variable header
        0x00, 0x02, b'c', b'1', // client identifier
        0x00, 0x03, b'w', b'/', b't', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will message
        0x00, 0x01, b'u', // user name
        0x00, 0x02, b'p', b'w', // password
    ];
    let expected = Connect {
        keep_alive: 10,
        will: Some(Will {
            topic: topic("w/t"),
            payload: bin(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: Some(s("u")),
        password: Some(bin(b"pw")),
        ..connect("c1")
    };
    assert_vector(V4, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connect_minimal_with_empty_client_identifier() {
    // An empty client identifier is allowed with Clean Session 1 [MQTT-3.1.3-6].
    let bytes = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_vector(V4, &bytes, &Packet::Connect(Box::new(connect(""))));
}

#[test]
fn connect_keeps_a_leading_zero_width_no_break_space() {
    // "A UTF-8 encoded sequence 0xEF 0xBB 0xBF is always interpreted to mean U+FEFF ... and
    // MUST NOT be skipped over or stripped off by a packet receiver" [MQTT-1.5.3-3].
    let bytes = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00,
        0x3C, // keep alive 60
        0x00, 0x04, 0xEF, 0xBB, 0xBF, b'a',
    ];
    let expected = Connect {
        keep_alive: 60,
        ..connect("\u{FEFF}a")
    };
    assert_vector(V4, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connect_with_retained_qos2_will_and_user_name_only() {
    // Flags 0xB4: user name, will retain, will QoS 2, will flag; Clean Session 0.
    let bytes = [
        0x10, 0x1A, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xB4, 0x00,
        0x00, // keep alive 0
        0x00, 0x03, b'd', b'e', b'v', // client identifier
        0x00, 0x01, b'a', // will topic
        0x00, 0x00, // empty will message
        0x00, 0x04, b'u', b's', b'e', b'r', // user name
    ];
    let expected = Connect {
        clean_start: false,
        will: Some(Will {
            topic: topic("a"),
            payload: Bytes::new(),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some(s("user")),
        ..connect("dev")
    };
    assert_vector(V4, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connect_mqtt_3_1_mqisdp() {
    // MQTT 3.1: protocol name "MQIsdp", protocol version 3.
    let bytes = [
        0x10, 0x11, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x03, b'a', b'b', b'c',
    ];
    let expected = Connect {
        protocol: ProtocolVersion::V3_1,
        keep_alive: 60,
        ..connect("abc")
    };
    assert_vector(
        ProtocolVersion::V3_1,
        &bytes,
        &Packet::Connect(Box::new(expected)),
    );
}

#[test]
fn connect_mqtt_3_1_with_credentials() {
    let bytes = [
        0x10, 0x17, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0xC2, 0x00, 0x3C, 0x00,
        0x03, b'a', b'b', b'c', 0x00, 0x01, b'u', 0x00, 0x01, b'p',
    ];
    let expected = Connect {
        protocol: ProtocolVersion::V3_1,
        keep_alive: 60,
        username: Some(s("u")),
        password: Some(bin(b"p")),
        ..connect("abc")
    };
    assert_vector(
        ProtocolVersion::V3_1,
        &bytes,
        &Packet::Connect(Box::new(expected)),
    );
}

#[test]
fn connect_version_comes_from_the_packet() {
    // The codec is handed the 3.1.1 CONNECT while the connection's version is not known yet.
    let bytes = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
    ];
    for assumed in [ProtocolVersion::V3_1, ProtocolVersion::V5] {
        let decoded = common::decode_one(assumed, &bytes);
        assert_eq!(decoded, Packet::Connect(Box::new(connect(""))), "{assumed}");
    }
}

#[test]
fn connack_return_codes() {
    // 3.2.2.3: return codes 0..=5, mapped to the MQTT 5 reason codes of the same meaning.
    let cases = [
        (0x00, ReasonCode::Success),
        (0x01, ReasonCode::UnsupportedProtocolVersion),
        (0x02, ReasonCode::ClientIdentifierNotValid),
        (0x03, ReasonCode::ServerUnavailable),
        (0x04, ReasonCode::BadUserNameOrPassword),
        (0x05, ReasonCode::NotAuthorized),
    ];
    for (code, reason_code) in cases {
        let expected = Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code,
            properties: Properties::default(),
        });
        assert_vector(V4, &[0x20, 0x02, 0x00, code], &expected);
    }
}

#[test]
fn connack_session_present() {
    let expected = Packet::ConnAck(ConnAck {
        session_present: true,
        reason_code: ReasonCode::Success,
        properties: Properties::default(),
    });
    assert_vector(V4, &[0x20, 0x02, 0x01, 0x00], &expected);
}

#[test]
fn publish_topic_with_the_spec_utf8_example() {
    // 1.5.3, figure 1.3: "A" followed by U+2A6D4 is encoded 0x41 0xF0 0xAA 0x9B 0x94.
    let bytes = [
        0x30, 0x09, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, b'h', b'i',
    ];
    let expected = publish(QoS::AtMostOnce, "A\u{2A6D4}", None, b"hi");
    assert_vector(V4, &bytes, &Packet::Publish(expected));
}

#[test]
fn publish_qos1_dup_retain() {
    let bytes = [
        0x3B, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, 0x01, 0x02, 0x03,
    ];
    let expected = Publish {
        dup: true,
        retain: true,
        ..publish(QoS::AtLeastOnce, "a/b", Some(10), &[1, 2, 3])
    };
    assert_vector(V4, &bytes, &Packet::Publish(expected));
}

#[test]
fn publish_qos2_highest_packet_id_empty_payload() {
    let bytes = [0x34, 0x05, 0x00, 0x01, b't', 0xFF, 0xFF];
    let expected = publish(QoS::ExactlyOnce, "t", Some(0xFFFF), b"");
    assert_vector(V4, &bytes, &Packet::Publish(expected));
}

#[test]
fn publish_qos0_empty_payload() {
    let bytes = [0x30, 0x03, 0x00, 0x01, b't'];
    assert_vector(
        V4,
        &bytes,
        &Packet::Publish(publish(QoS::AtMostOnce, "t", None, b"")),
    );
}

#[test]
fn publish_with_two_byte_remaining_length() {
    // 200 bytes of payload: remaining length 205 is the two-byte varint 0xCD 0x01 (2.2.3).
    let payload = [0xA5u8; 200];
    let mut bytes = vec![0x30, 0xCD, 0x01, 0x00, 0x03, b'b', b'i', b'g'];
    bytes.extend_from_slice(&payload);
    let expected = publish(QoS::AtMostOnce, "big", None, &payload);
    assert_vector(V4, &bytes, &Packet::Publish(expected));
}

#[test]
fn publish_acknowledgements() {
    // PUBACK, PUBREC, PUBREL (flags 0010) and PUBCOMP: just the packet identifier.
    let ack = PubAck::success(pid(0x1234));
    assert_vector(
        V4,
        &[0x40, 0x02, 0x00, 0x01],
        &Packet::PubAck(PubAck::success(pid(1))),
    );
    assert_vector(V4, &[0x50, 0x02, 0x12, 0x34], &Packet::PubRec(ack.clone()));
    assert_vector(V4, &[0x62, 0x02, 0x12, 0x34], &Packet::PubRel(ack.clone()));
    assert_vector(V4, &[0x70, 0x02, 0x12, 0x34], &Packet::PubComp(ack));
}

#[test]
fn subscribe_with_the_spec_payload_example() {
    // 3.8.2 / 3.8.3, figures 3.21-3.22: packet identifier 10, "a/b" at QoS 1, "c/d" at QoS 2.
    let bytes = [
        0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'd',
        0x02,
    ];
    let expected = Subscribe {
        packet_id: pid(10),
        filters: vec![
            (
                filter("a/b"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            ),
            (
                filter("c/d"),
                SubscriptionOptions::with_qos(QoS::ExactlyOnce),
            ),
        ],
        properties: Properties::default(),
    };
    assert_vector(V4, &bytes, &Packet::Subscribe(expected));
}

#[test]
fn subscribe_with_wildcards() {
    let bytes = [
        0x82, 0x13, 0x00, 0x01, // packet identifier 1
        0x00, 0x0A, b'+', b'/', b't', b'e', b'n', b'n', b'i', b's', b'/', b'#', 0x00, // QoS 0
        0x00, 0x01, b'#', 0x01, // QoS 1
    ];
    let expected = Subscribe {
        packet_id: pid(1),
        filters: vec![
            (
                filter("+/tennis/#"),
                SubscriptionOptions::with_qos(QoS::AtMostOnce),
            ),
            (filter("#"), SubscriptionOptions::with_qos(QoS::AtLeastOnce)),
        ],
        properties: Properties::default(),
    };
    assert_vector(V4, &bytes, &Packet::Subscribe(expected));
}

#[test]
fn suback_with_the_spec_payload_example() {
    // 3.9.3, figure 3.26: granted QoS 0, granted QoS 2, failure 0x80.
    let bytes = [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80];
    let expected = SubAck {
        packet_id: pid(10),
        reason_codes: vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ],
        properties: Properties::default(),
    };
    assert_vector(V4, &bytes, &Packet::SubAck(expected));
}

#[test]
fn unsubscribe_with_the_spec_payload_example() {
    // 3.10.3, figure 3.30: "a/b" and "c/d".
    let bytes = [
        0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'd',
    ];
    let expected = Unsubscribe {
        packet_id: pid(10),
        filters: vec![filter("a/b"), filter("c/d")],
        properties: Properties::default(),
    };
    assert_vector(V4, &bytes, &Packet::Unsubscribe(expected));
}

#[test]
fn unsuback() {
    let expected = UnsubAck {
        packet_id: pid(10),
        reason_codes: Vec::new(),
        properties: Properties::default(),
    };
    assert_vector(V4, &[0xB0, 0x02, 0x00, 0x0A], &Packet::UnsubAck(expected));
}

#[test]
fn ping_and_disconnect() {
    assert_vector(V4, &[0xC0, 0x00], &Packet::PingReq);
    assert_vector(V4, &[0xD0, 0x00], &Packet::PingResp);
    assert_vector(
        V4,
        &[0xE0, 0x00],
        &Packet::Disconnect(Disconnect::default()),
    );
}

#[test]
fn mqtt_3_1_uses_the_3_1_1_layout_after_connect() {
    let v3 = ProtocolVersion::V3_1;
    assert_vector(v3, &[0x20, 0x02, 0x00, 0x00], &{
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        })
    });
    assert_vector(
        v3,
        &[0x30, 0x03, 0x00, 0x01, b't'],
        &Packet::Publish(publish(QoS::AtMostOnce, "t", None, b"")),
    );
    assert_vector(v3, &[0xB0, 0x02, 0x00, 0x0A], &{
        Packet::UnsubAck(UnsubAck {
            packet_id: pid(10),
            reason_codes: Vec::new(),
            properties: Properties::default(),
        })
    });
}

#[test]
fn two_packets_back_to_back_in_one_buffer() {
    let mut buf = BytesMut::from(
        &[
            0x3B, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, 1, 2, 3, 0xC0, 0x00,
        ][..],
    );
    let first = decode(&mut buf, V4, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(
        buf.len(),
        2,
        "the first packet consumed exactly its 12 bytes"
    );
    let second = decode(&mut buf, V4, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert!(buf.is_empty());
    assert_eq!(
        first,
        Packet::Publish(Publish {
            dup: true,
            retain: true,
            ..publish(QoS::AtLeastOnce, "a/b", Some(10), &[1, 2, 3])
        })
    );
    assert_eq!(second, Packet::PingReq);
    assert!(matches!(decode(&mut buf, V4, NO_LIMIT), Ok(None)));
}

#[test]
fn a_packet_followed_by_part_of_the_next() {
    // The first packet comes out; the half of the second stays in the buffer untouched.
    let mut buf = BytesMut::from(&[0xD0, 0x00, 0x40, 0x02, 0x00][..]);
    let first = decode(&mut buf, V4, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(first, Packet::PingResp);
    assert!(matches!(decode(&mut buf, V4, NO_LIMIT), Ok(None)));
    assert_eq!(&buf[..], &[0x40, 0x02, 0x00]);
    buf.extend_from_slice(&[0x07]);
    let second = decode(&mut buf, V4, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(second, Packet::PubAck(PubAck::success(pid(7))));
}

#[test]
fn empty_buffer_needs_more_bytes() {
    let mut buf = BytesMut::new();
    assert!(matches!(decode(&mut buf, V4, NO_LIMIT), Ok(None)));
}
