//! Byte vectors for MQTT 5.0, written by hand from the OASIS specification: every control
//! packet type, every property at least once in a packet that allows it, the short forms of
//! the acknowledgements, DISCONNECT and AUTH, and valid encodings that are not the canonical
//! one (property order, long forms). Each decodes to the expected `Packet`, also when fed one
//! byte at a time, and the packet encodes back to the canonical bytes.

mod common;

use bytes::{Bytes, BytesMut};
use common::{assert_alternate, assert_vector, bin, filter, pid, s, topic, NO_LIMIT};
use mquictt_protocol::properties::Properties;
use mquictt_protocol::PropertySet;
use mquictt_protocol::{
    decode, Auth, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, PubAck, Publish, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicName, UnsubAck,
    Unsubscribe, Will,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn props() -> PropertySet {
    PropertySet::default()
}

fn connack(reason_code: ReasonCode, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: false,
        reason_code,
        properties,
    })
}

fn ack(id: u16, reason_code: ReasonCode, properties: Properties) -> PubAck {
    PubAck {
        packet_id: pid(id),
        reason_code,
        properties,
    }
}

#[test]
fn connect_with_the_spec_variable_header_example() {
    // 3.1.2.12, figure 3-7: "MQTT", version 5, flags 0xCE, keep alive 10, properties of
    // length 5 holding Session Expiry Interval 10.
    let bytes = [
        0x10, 0x26, // CONNECT, remaining length 38
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xCE, 0x00, 0x0A, // variable header
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, // properties
        0x00, 0x02, b'c', b'1', // client identifier
        0x00, // will properties: none
        0x00, 0x03, b'w', b'/', b't', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will payload
        0x00, 0x01, b'u', // user name
        0x00, 0x02, b'p', b'w', // password
    ];
    let expected = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: s("c1"),
        will: Some(Will {
            topic: topic("w/t"),
            payload: bin(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: Some(s("u")),
        password: Some(bin(b"pw")),
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(10),
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connect_with_every_connect_and_will_property() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x82, 0x01, // CONNECT, remaining length 130
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0xF6, // user name, password, will retain, will QoS 2, will flag, clean start
        0x00, 0x1E, // keep alive 30
        0x28, // property length 40
        0x11, 0xFF, 0xFF, 0xFF, 0xFF, // session expiry interval: never
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
        0x17, 0x00, // request problem information 0
        0x19, 0x01, // request response information 1
        0x21, 0x00, 0x14, // receive maximum 20
        0x22, 0x00, 0x0A, // topic alias maximum 10
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x27, 0x00, 0x10, 0x00, 0x00, // maximum packet size 1 MiB
        0x00, 0x05, b'd', b'e', b'v', b'-', b'7', // client identifier
        0x2B, // will property length 43
        0x01, 0x01, // payload format indicator: UTF-8
        0x02, 0x00, 0x00, 0x0E, 0x10, // message expiry interval 3600
        0x03, 0x00, 0x0A, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n',
        0x08, 0x00, 0x03, b'r', b'/', b'1', // response topic
        0x09, 0x00, 0x02, 0xCA, 0xFE, // correlation data
        0x18, 0x00, 0x00, 0x00, 0x05, // will delay interval 5
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // user property
        0x00, 0x0A, b'd', b'e', b'a', b'd', b'/', b'd', b'e', b'v', b'-', b'7', // will topic
        0x00, 0x04, b'g', b'o', b'n', b'e', // will payload
        0x00, 0x04, b'u', b's', b'e', b'r', // user name
        0x00, 0x02, 0x00, 0xFF, // password (binary)
    ];
    let expected = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 30,
        client_id: s("dev-7"),
        will: Some(Will {
            topic: topic("dead/dev-7"),
            payload: bin(b"gone"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::from(PropertySet {
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(3600),
                content_type: Some(s("text/plain")),
                response_topic: Some(s("r/1")),
                correlation_data: Some(bin(&[0xCA, 0xFE])),
                will_delay_interval: Some(5),
                user_properties: vec![(s("a"), s("b"))],
                ..props()
            }),
        }),
        username: Some(s("user")),
        password: Some(bin(&[0x00, 0xFF])),
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(u32::MAX),
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(bin(&[1, 2])),
            request_problem_information: Some(false),
            request_response_information: Some(true),
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            user_properties: vec![(s("k"), s("v"))],
            maximum_packet_size: Some(1 << 20),
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connect_with_password_and_no_user_name() {
    // MQTT 5 allows a password without a user name (3.1.2.9), unlike 3.1.1.
    let bytes = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x42, 0x00, 0x00, 0x00, // props
        0x00, 0x00, // empty client identifier
        0x00, 0x01, b'p',
    ];
    let expected = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 0,
        client_id: s(""),
        will: None,
        username: None,
        password: Some(bin(b"p")),
        properties: Properties::default(),
    };
    assert_vector(V5, &bytes, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connack_minimal_and_session_present() {
    assert_vector(
        V5,
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        &connack(ReasonCode::Success, Properties::default()),
    );
    let resumed = Packet::ConnAck(ConnAck {
        session_present: true,
        reason_code: ReasonCode::Success,
        properties: Properties::default(),
    });
    assert_vector(V5, &[0x20, 0x03, 0x01, 0x00, 0x00], &resumed);
    assert_vector(
        V5,
        &[0x20, 0x03, 0x00, 0x87, 0x00],
        &connack(ReasonCode::NotAuthorized, Properties::default()),
    );
}

#[test]
fn connack_refusal_with_reason_string() {
    let bytes = [0x20, 0x08, 0x00, 0x85, 0x05, 0x1F, 0x00, 0x02, b'n', b'o'];
    let expected = connack(
        ReasonCode::ClientIdentifierNotValid,
        Properties::from(PropertySet {
            reason_string: Some(s("no")),
            ..props()
        }),
    );
    assert_vector(V5, &bytes, &expected);
}

#[test]
fn connack_with_every_connack_property() {
    #[rustfmt::skip]
    let bytes = [
        0x20, 0x56, 0x00, 0x00, // CONNACK, remaining length 86, no session, Success
        0x53, // property length 83
        0x11, 0x00, 0x00, 0x01, 0x2C, // session expiry interval 300
        0x12, 0x00, 0x06, b'a', b'u', b't', b'o', b'-', b'1', // assigned client identifier
        0x13, 0x00, 0x3C, // server keep alive 60
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x01, 0x03, // authentication data
        0x1A, 0x00, 0x05, b'r', b'e', b's', b'p', b'/', // response information
        0x1C, 0x00, 0x0A, b'o', b't', b'h', b'e', b'r', b':', b'1', b'8', b'8', b'3',
        0x1F, 0x00, 0x02, b'o', b'k', // reason string
        0x21, 0x00, 0x64, // receive maximum 100
        0x22, 0x00, 0x10, // topic alias maximum 16
        0x24, 0x01, // maximum QoS 1
        0x25, 0x00, // retain not available
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y', // user property
        0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
        0x28, 0x01, // wildcard subscriptions available
        0x29, 0x00, // subscription identifiers not available
        0x2A, 0x01, // shared subscriptions available
    ];
    let expected = connack(
        ReasonCode::Success,
        Properties::from(PropertySet {
            session_expiry_interval: Some(300),
            assigned_client_identifier: Some(s("auto-1")),
            server_keep_alive: Some(60),
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(bin(&[3])),
            response_information: Some(s("resp/")),
            server_reference: Some(s("other:1883")),
            reason_string: Some(s("ok")),
            receive_maximum: Some(100),
            topic_alias_maximum: Some(16),
            maximum_qos: Some(1),
            retain_available: Some(false),
            user_properties: vec![(s("x"), s("y"))],
            maximum_packet_size: Some(65536),
            wildcard_subscription_available: Some(true),
            subscription_identifier_available: Some(false),
            shared_subscription_available: Some(true),
            ..props()
        }),
    );
    assert_vector(V5, &bytes, &expected);
}

#[test]
fn connack_properties_in_any_order() {
    // Properties may come in any order on the wire; encoding writes them by identifier.
    let bytes = [
        0x20, 0x0B, 0x00, 0x00, 0x08, 0x27, 0x00, 0x00, 0x04, 0x00, 0x21, 0x00, 0x0A,
    ];
    let canonical = [
        0x20, 0x0B, 0x00, 0x00, 0x08, 0x21, 0x00, 0x0A, 0x27, 0x00, 0x00, 0x04, 0x00,
    ];
    let expected = connack(
        ReasonCode::Success,
        Properties::from(PropertySet {
            receive_maximum: Some(10),
            maximum_packet_size: Some(1024),
            ..props()
        }),
    );
    assert_alternate(V5, &bytes, &expected, &canonical);
}

#[test]
fn publish_with_every_publish_property() {
    #[rustfmt::skip]
    let bytes = [
        0x33, 0x3E, // PUBLISH QoS 1 retain, remaining length 62
        0x00, 0x03, b's', b'/', b't', // topic name
        0x00, 0x07, // packet identifier 7
        0x34, // property length 52
        0x01, 0x01, // payload format indicator: UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry interval 60
        0x03, 0x00, 0x04, b'j', b's', b'o', b'n', // content type
        0x08, 0x00, 0x07, b'r', b'e', b'p', b'l', b'y', b'/', b's', // response topic
        0x09, 0x00, 0x01, 0x01, // correlation data
        0x0B, 0x01, // subscription identifier 1
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F, // subscription identifier 268,435,455 (the largest)
        0x23, 0x00, 0x03, // topic alias 3
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'w', // the same name again, kept in order
        b'{', b'}', // payload
    ];
    let expected = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: topic("s/t"),
        packet_id: Some(pid(7)),
        properties: Properties::from(PropertySet {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            content_type: Some(s("json")),
            response_topic: Some(s("reply/s")),
            correlation_data: Some(bin(&[1])),
            subscription_identifiers: vec![1, 268_435_455],
            topic_alias: Some(3),
            user_properties: vec![(s("k"), s("v")), (s("k"), s("w"))],
            ..props()
        }),
        payload: bin(b"{}"),
    };
    assert_vector(V5, &bytes, &Packet::Publish(expected));
}

#[test]
fn publish_short_forms() {
    let qos0 = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic("t"),
        packet_id: None,
        properties: Properties::default(),
        payload: bin(b"x"),
    };
    assert_vector(
        V5,
        &[0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x'],
        &Packet::Publish(qos0.clone()),
    );
    // DUP QoS 2, packet identifier 256, no payload.
    let qos2 = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        packet_id: Some(pid(256)),
        payload: Bytes::new(),
        ..qos0
    };
    assert_vector(
        V5,
        &[0x3C, 0x06, 0x00, 0x01, b't', 0x01, 0x00, 0x00],
        &Packet::Publish(qos2),
    );
}

#[test]
fn publish_with_empty_topic_and_topic_alias() {
    // 3.3.2.3.4: a zero-length Topic Name with a Topic Alias uses the aliased topic.
    let bytes = [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, b'p'];
    let expected = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::empty(),
        packet_id: None,
        properties: Properties::from(PropertySet {
            topic_alias: Some(5),
            ..props()
        }),
        payload: bin(b"p"),
    };
    assert_vector(V5, &bytes, &Packet::Publish(expected));
}

#[test]
fn acknowledgement_short_form() {
    // "The Reason Code and Property Length can be omitted if the Reason Code is 0x00 (Success)
    // and there are no Properties. In this case the PUBACK has a Remaining Length of 2."
    let success = |id| ack(id, ReasonCode::Success, Properties::default());
    assert_vector(V5, &[0x40, 0x02, 0x00, 0x01], &Packet::PubAck(success(1)));
    assert_vector(V5, &[0x50, 0x02, 0x00, 0x02], &Packet::PubRec(success(2)));
    assert_vector(V5, &[0x62, 0x02, 0x00, 0x03], &Packet::PubRel(success(3)));
    assert_vector(V5, &[0x70, 0x02, 0x00, 0x04], &Packet::PubComp(success(4)));
}

#[test]
fn acknowledgement_with_reason_code_only() {
    // "If the Remaining Length is less than 4 there is no Property Length and the value of 0
    // is used" (3.4.2.2): a reason code without properties takes 3 bytes.
    let bare = |id, code| ack(id, code, Properties::default());
    assert_vector(
        V5,
        &[0x40, 0x03, 0x00, 0x01, 0x10],
        &Packet::PubAck(bare(1, ReasonCode::NoMatchingSubscribers)),
    );
    assert_vector(
        V5,
        &[0x50, 0x03, 0x00, 0x02, 0x80],
        &Packet::PubRec(bare(2, ReasonCode::UnspecifiedError)),
    );
    assert_vector(
        V5,
        &[0x62, 0x03, 0x00, 0x03, 0x92],
        &Packet::PubRel(bare(3, ReasonCode::PacketIdentifierNotFound)),
    );
    assert_vector(
        V5,
        &[0x70, 0x03, 0x00, 0x04, 0x92],
        &Packet::PubComp(bare(4, ReasonCode::PacketIdentifierNotFound)),
    );
}

#[test]
fn acknowledgement_with_properties() {
    #[rustfmt::skip]
    let puback = [
        0x40, 0x13, 0x00, 0x01, 0x97, // packet identifier 1, Quota exceeded
        0x0F, // property length 15
        0x1F, 0x00, 0x05, b'q', b'u', b'o', b't', b'a', // reason string
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // user property
    ];
    let expected = ack(
        1,
        ReasonCode::QuotaExceeded,
        Properties::from(PropertySet {
            reason_string: Some(s("quota")),
            user_properties: vec![(s("a"), s("b"))],
            ..props()
        }),
    );
    assert_vector(V5, &puback, &Packet::PubAck(expected));

    let pubcomp = [
        0x70, 0x09, 0x00, 0x04, 0x92, 0x05, 0x1F, 0x00, 0x02, b'n', b'f',
    ];
    let expected = ack(
        4,
        ReasonCode::PacketIdentifierNotFound,
        Properties::from(PropertySet {
            reason_string: Some(s("nf")),
            ..props()
        }),
    );
    assert_vector(V5, &pubcomp, &Packet::PubComp(expected));
}

#[test]
fn acknowledgement_long_forms_decode_to_the_short_form() {
    // A Success with an explicit reason code, and with an empty property list, is the same
    // packet as the 2-byte form, which is how it is encoded.
    let success = Packet::PubAck(ack(1, ReasonCode::Success, Properties::default()));
    let short = [0x40, 0x02, 0x00, 0x01];
    assert_alternate(V5, &[0x40, 0x03, 0x00, 0x01, 0x00], &success, &short);
    assert_alternate(V5, &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00], &success, &short);
    let pubrel = Packet::PubRel(ack(9, ReasonCode::Success, Properties::default()));
    assert_alternate(
        V5,
        &[0x62, 0x04, 0x00, 0x09, 0x00, 0x00],
        &pubrel,
        &[0x62, 0x02, 0x00, 0x09],
    );
}

#[test]
fn subscribe_with_options_and_properties() {
    #[rustfmt::skip]
    let bytes = [
        0x82, 0x22, 0x00, 0x01, // SUBSCRIBE, remaining length 34, packet identifier 1
        0x0A, // property length 10
        0x0B, 0x80, 0x01, // subscription identifier 128 (two-byte variable byte integer)
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x03, b'a', b'/', b'+',
        0x2D, // QoS 1, No Local, Retain As Published, Retain Handling 2
        0x00, 0x0C, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x', b'/', b'#',
        0x12, // QoS 2, Retain Handling 1
    ];
    let expected = Subscribe {
        packet_id: pid(1),
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("$share/g/x/#"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendIfNew,
                },
            ),
        ],
        properties: Properties::from(PropertySet {
            subscription_identifiers: vec![128],
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::Subscribe(expected));
}

#[test]
fn subscribe_minimal() {
    let expected = Subscribe {
        packet_id: pid(2),
        filters: vec![(filter("#"), SubscriptionOptions::default())],
        properties: Properties::default(),
    };
    assert_vector(
        V5,
        &[0x82, 0x07, 0x00, 0x02, 0x00, 0x00, 0x01, b'#', 0x00],
        &Packet::Subscribe(expected),
    );
}

#[test]
fn suback_with_every_suback_reason_code() {
    #[rustfmt::skip]
    let bytes = [
        0x90, 0x1B, 0x00, 0x01, // SUBACK, remaining length 27, packet identifier 1
        0x0C, // property length 12
        0x1F, 0x00, 0x02, b'o', b'k', // reason string
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y', // user property
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    let reason_codes = [
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ]
    .map(|code| ReasonCode::from_u8(code).expect("defined"))
    .to_vec();
    let expected = SubAck {
        packet_id: pid(1),
        reason_codes,
        properties: Properties::from(PropertySet {
            reason_string: Some(s("ok")),
            user_properties: vec![(s("x"), s("y"))],
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::SubAck(expected));
}

#[test]
fn suback_minimal() {
    let expected = SubAck {
        packet_id: pid(1),
        reason_codes: vec![ReasonCode::GrantedQoS1],
        properties: Properties::default(),
    };
    assert_vector(
        V5,
        &[0x90, 0x04, 0x00, 0x01, 0x00, 0x01],
        &Packet::SubAck(expected),
    );
}

#[test]
fn unsubscribe_with_user_property() {
    #[rustfmt::skip]
    let bytes = [
        0xA2, 0x14, 0x00, 0x03, // UNSUBSCRIBE, remaining length 20, packet identifier 3
        0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x03, b'c', b'/', b'#',
    ];
    let expected = Unsubscribe {
        packet_id: pid(3),
        filters: vec![filter("a/b"), filter("c/#")],
        properties: Properties::from(PropertySet {
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::Unsubscribe(expected));
    let minimal = Unsubscribe {
        packet_id: pid(3),
        filters: vec![filter("#")],
        properties: Properties::default(),
    };
    assert_vector(
        V5,
        &[0xA2, 0x06, 0x00, 0x03, 0x00, 0x00, 0x01, b'#'],
        &Packet::Unsubscribe(minimal),
    );
}

#[test]
fn unsuback_with_every_unsuback_reason_code() {
    #[rustfmt::skip]
    let bytes = [
        0xB0, 0x0F, 0x00, 0x03, // UNSUBACK, remaining length 15, packet identifier 3
        0x05, 0x1F, 0x00, 0x02, b'o', b'k', // reason string
        0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91,
    ];
    let reason_codes = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
        .map(|code| ReasonCode::from_u8(code).expect("defined"))
        .to_vec();
    let expected = UnsubAck {
        packet_id: pid(3),
        reason_codes,
        properties: Properties::from(PropertySet {
            reason_string: Some(s("ok")),
            ..props()
        }),
    };
    assert_vector(V5, &bytes, &Packet::UnsubAck(expected));
    let minimal = UnsubAck {
        packet_id: pid(3),
        reason_codes: vec![ReasonCode::Success],
        properties: Properties::default(),
    };
    assert_vector(
        V5,
        &[0xB0, 0x04, 0x00, 0x03, 0x00, 0x00],
        &Packet::UnsubAck(minimal),
    );
}

#[test]
fn ping() {
    assert_vector(V5, &[0xC0, 0x00], &Packet::PingReq);
    assert_vector(V5, &[0xD0, 0x00], &Packet::PingResp);
}

#[test]
fn disconnect_short_forms() {
    // "The Reason Code and Property Length can be omitted if the Reason Code is 0x00 (Normal
    // disconnection) and there are no Properties. In this case the DISCONNECT has a Remaining
    // Length of 0" (3.14.2.1).
    assert_vector(
        V5,
        &[0xE0, 0x00],
        &Packet::Disconnect(Disconnect::default()),
    );
    // "If the Remaining Length is less than 2, a value of 0 is used" for the property length.
    assert_vector(
        V5,
        &[0xE0, 0x01, 0x04],
        &Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
    );
    let normal = Packet::Disconnect(Disconnect::default());
    assert_alternate(V5, &[0xE0, 0x01, 0x00], &normal, &[0xE0, 0x00]);
    assert_alternate(V5, &[0xE0, 0x02, 0x00, 0x00], &normal, &[0xE0, 0x00]);
}

#[test]
fn disconnect_with_every_disconnect_property() {
    #[rustfmt::skip]
    let from_client = [
        0xE0, 0x14, 0x04, // DISCONNECT, remaining length 20, Disconnect with Will Message
        0x12, // property length 18
        0x11, 0x00, 0x00, 0x00, 0x3C, // session expiry interval 60
        0x1F, 0x00, 0x03, b'b', b'y', b'e', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let expected = Disconnect {
        reason_code: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(60),
            reason_string: Some(s("bye")),
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    };
    assert_vector(V5, &from_client, &Packet::Disconnect(expected));

    let from_server = [
        0xE0, 0x0A, 0x9C, 0x08, 0x1C, 0x00, 0x05, b'o', b't', b'h', b'e', b'r',
    ];
    let expected = Disconnect {
        reason_code: ReasonCode::UseAnotherServer,
        properties: Properties::from(PropertySet {
            server_reference: Some(s("other")),
            ..props()
        }),
    };
    assert_vector(V5, &from_server, &Packet::Disconnect(expected));
}

#[test]
fn auth_short_form_and_exchange() {
    // "The Reason Code and Property Length can be omitted if the Reason Code is 0x00 (Success)
    // and there are no Properties. In this case the AUTH has a Remaining Length of 0."
    let success = Packet::Auth(Auth {
        reason_code: ReasonCode::Success,
        properties: Properties::default(),
    });
    assert_vector(V5, &[0xF0, 0x00], &success);

    #[rustfmt::skip]
    let continue_auth = [
        0xF0, 0x1B, 0x18, // AUTH, remaining length 27, Continue authentication
        0x19, // property length 25
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x03, 0x01, 0x02, 0x03, // authentication data
        0x1F, 0x00, 0x01, b'c', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let expected = Packet::Auth(Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Properties::from(PropertySet {
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(bin(&[1, 2, 3])),
            reason_string: Some(s("c")),
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    });
    assert_vector(V5, &continue_auth, &expected);

    let reauthenticate = [
        0xF0, 0x0A, 0x19, 0x08, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M',
    ];
    let expected = Packet::Auth(Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: Properties::from(PropertySet {
            authentication_method: Some(s("SCRAM")),
            ..props()
        }),
    });
    assert_vector(V5, &reauthenticate, &expected);
}

#[test]
fn two_packets_back_to_back_in_one_buffer() {
    let mut buf = BytesMut::from(
        &[
            0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x', // PUBLISH
            0x40, 0x03, 0x00, 0x01, 0x10, // PUBACK, No matching subscribers
        ][..],
    );
    let first = decode(&mut buf, V5, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(buf.len(), 5, "the PUBLISH consumed exactly its 7 bytes");
    assert!(matches!(first, Packet::Publish(ref p) if p.payload == b"x"[..]));
    let second = decode(&mut buf, V5, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(
        second,
        Packet::PubAck(ack(
            1,
            ReasonCode::NoMatchingSubscribers,
            Properties::default()
        ))
    );
    assert!(buf.is_empty());
}

#[test]
fn packet_exactly_at_the_size_limit_is_accepted() {
    // Maximum Packet Size counts the whole packet, fixed header included (3.1.2.11.4): this
    // PUBLISH is 7 bytes.
    let bytes = [0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x'];
    let mut buf = BytesMut::from(&bytes[..]);
    let packet = decode(&mut buf, V5, 7).expect("within the limit");
    assert!(packet.is_some());
}
