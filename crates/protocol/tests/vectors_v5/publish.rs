//! PUBLISH and its acknowledgements: every property, short forms, topic aliases, and the acknowledgements' short and long forms.

use super::*;

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
