//! CONNECT and CONNACK: the spec's example, every property, password without user name, refusals, property order.

use super::*;

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
