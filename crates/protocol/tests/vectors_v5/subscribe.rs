//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK, with every reason code.

use super::*;

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
