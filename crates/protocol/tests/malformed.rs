//! Malformed and forbidden input, one test per rule of the MQTT 3.1.1 and 5.0 specifications:
//! each asserts the MQTT 5 reason code the server would send (Malformed Packet 0x81, Protocol
//! Error 0x82, Unsupported Protocol Version 0x84, Topic Filter invalid 0x8F, Topic Name invalid
//! 0x90, Topic Alias invalid 0x94, Packet too large 0x95) and, where the spec gives the rule a
//! conformance id, that the error names it.

mod common;

use bytes::BytesMut;
use common::{assert_rejected, assert_rejected_unframed, decode_error_with_limit};
use mquictt_protocol::{decode, ProtocolVersion, ReasonCode};

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL: ReasonCode = ReasonCode::ProtocolError;

/// A valid 3.1.1 CONNECT with the given connect flags and payload after the variable header.
fn connect_v4(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x00];
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// A 5.0 CONNECT with the given properties (without their length) and payload.
fn connect_v5(flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, flags, 0x00, 0x00];
    body.push(u8::try_from(properties.len()).expect("short test property lists"));
    body.extend_from_slice(properties);
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// A fixed header with a one-byte Remaining Length in front of `body`.
fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![
        first_byte,
        u8::try_from(body.len()).expect("test bodies stay under 128 bytes"),
    ];
    bytes.extend_from_slice(body);
    bytes
}

/// A 5.0 PUBLISH QoS 0 to "t" with the given properties (without their length).
fn publish_v5(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, b't'];
    body.push(u8::try_from(properties.len()).expect("short test property lists"));
    body.extend_from_slice(properties);
    frame(0x30, &body)
}

// 2.1.3 Flags ---------------------------------------------------------------------------------

#[test]
fn reserved_flag_bits_of_every_packet_type() {
    // "Where a flag bit is marked as 'Reserved' ... it MUST be set to the value listed"; "If
    // invalid flags are received it is a Malformed Packet" [MQTT-2.1.3-1] (3.1.1:
    // [MQTT-2.2.2-1], [MQTT-2.2.2-2]). Each vector is a valid packet but for its flags.
    let cases: [(&str, &[u8]); 13] = [
        (
            "CONNECT",
            &[
                0x11, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        ("CONNACK", &[0x21, 0x02, 0x00, 0x00]),
        ("PUBACK", &[0x41, 0x02, 0x00, 0x01]),
        ("PUBREC", &[0x58, 0x02, 0x00, 0x01]),
        ("PUBREL", &[0x60, 0x02, 0x00, 0x01]),
        ("PUBCOMP", &[0x72, 0x02, 0x00, 0x01]),
        (
            "SUBSCRIBE",
            &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'#', 0x00],
        ),
        ("SUBACK", &[0x94, 0x03, 0x00, 0x01, 0x00]),
        ("UNSUBSCRIBE", &[0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b'#']),
        ("UNSUBACK", &[0xB2, 0x02, 0x00, 0x01]),
        ("PINGREQ", &[0xC1, 0x00]),
        ("PINGRESP", &[0xD8, 0x00]),
        ("DISCONNECT", &[0xE2, 0x00]),
    ];
    for (name, bytes) in cases {
        assert_rejected(V4, bytes, MALFORMED, true);
        // The same packets with 5.0 bodies, where they differ.
        let v5_bytes: Vec<u8> = match name {
            "CONNECT" => {
                let mut b = connect_v5(0x02, &[], &[0x00, 0x00]);
                b[0] = 0x11;
                b
            }
            "CONNACK" => vec![0x21, 0x03, 0x00, 0x00, 0x00],
            "SUBSCRIBE" => vec![0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'#', 0x00],
            "SUBACK" => vec![0x94, 0x04, 0x00, 0x01, 0x00, 0x00],
            "UNSUBSCRIBE" => vec![0xA0, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, b'#'],
            "UNSUBACK" => vec![0xB2, 0x04, 0x00, 0x01, 0x00, 0x00],
            _ => bytes.to_vec(),
        };
        assert_rejected(V5, &v5_bytes, MALFORMED, true);
    }
    assert_rejected(V5, &[0xF1, 0x00], MALFORMED, true);
}

#[test]
fn packet_type_zero_is_forbidden() {
    // Table 2.1: value 0 is "Reserved, Forbidden".
    assert_rejected(V4, &[0x00, 0x00], MALFORMED, false);
    assert_rejected(V5, &[0x00, 0x00], MALFORMED, false);
}

#[test]
fn auth_does_not_exist_before_5_0() {
    // In 3.1.1, type 15 is "Reserved, Forbidden".
    assert_rejected(V4, &[0xF0, 0x00], MALFORMED, false);
}

// 2.2.3 / 1.5.5 Remaining Length and Variable Byte Integers ------------------------------------

#[test]
fn five_byte_remaining_length() {
    // The Remaining Length is at most four bytes (1.5.5 / 2.2.3); a fifth is malformed, and
    // this is known as soon as the fourth byte arrives with its continuation bit set.
    assert_rejected_unframed(V4, &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MALFORMED, false);
    assert_rejected_unframed(V5, &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MALFORMED, false);
    assert_rejected_unframed(V5, &[0xC0, 0x80, 0x80, 0x80, 0x80], MALFORMED, false);
}

#[test]
fn five_byte_property_length() {
    let bytes = [0x20, 0x07, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert_rejected(V5, &bytes, MALFORMED, false);
}

#[test]
fn remaining_length_shorter_than_content() {
    // A PUBACK needs its two-byte packet identifier.
    assert_rejected(V4, &[0x40, 0x01, 0x00], MALFORMED, false);
    // A client identifier claiming 5 bytes with none left in the packet.
    let short_string = connect_v4(0x02, &[0x00, 0x05]);
    assert_rejected(V4, &short_string, MALFORMED, false);
    // A property length running past the end of the packet.
    assert_rejected(V5, &[0x20, 0x03, 0x00, 0x00, 0x05], MALFORMED, false);
    // A topic name longer than the PUBLISH.
    assert_rejected(V4, &[0x30, 0x03, 0x00, 0x05, b't'], MALFORMED, false);
}

#[test]
fn remaining_length_longer_than_content() {
    // Trailing bytes after a complete packet body.
    assert_rejected(V4, &[0x40, 0x03, 0x00, 0x01, 0x00], MALFORMED, false);
    assert_rejected(V4, &[0xC0, 0x01, 0x00], MALFORMED, false);
    assert_rejected(V5, &[0xD0, 0x01, 0x00], MALFORMED, false);
    assert_rejected(V4, &[0x20, 0x03, 0x00, 0x00, 0x00], MALFORMED, false);
    assert_rejected(V5, &[0xE0, 0x03, 0x00, 0x00, 0xFF], MALFORMED, false);
    let trailing = connect_v4(0x02, &[0x00, 0x00, 0xAA]);
    assert_rejected(V4, &trailing, MALFORMED, false);
}

// 1.5.4 UTF-8 strings --------------------------------------------------------------------------

#[test]
fn string_with_null_character() {
    // "A UTF-8 Encoded String MUST NOT include an encoding of the null character U+0000"
    // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]).
    let client_id = connect_v4(0x02, &[0x00, 0x03, b'a', 0x00, b'b']);
    assert_rejected(V4, &client_id, MALFORMED, true);
    let user_property = connect_v5(
        0x02,
        &[0x26, 0x00, 0x01, 0x00, 0x00, 0x01, b'v'],
        &[0x00, 0x00],
    );
    assert_rejected(V5, &user_property, MALFORMED, true);
}

#[test]
fn string_with_invalid_utf8() {
    // "The character data in a UTF-8 Encoded String MUST be well-formed UTF-8" [MQTT-1.5.4-1].
    let client_id = connect_v4(0x02, &[0x00, 0x02, 0xC3, 0x28]);
    assert_rejected(V4, &client_id, MALFORMED, true);
    // An overlong encoding of U+0000 in a topic name.
    assert_rejected(V4, &[0x30, 0x04, 0x00, 0x02, 0xC0, 0x80], MALFORMED, true);
    // A byte that never occurs in UTF-8 in a topic filter.
    let subscribe = [0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', 0xFF, 0x00];
    assert_rejected(V4, &subscribe, MALFORMED, true);
    let content_type = publish_v5(&[0x03, 0x00, 0x01, 0x80]);
    assert_rejected(V5, &content_type, MALFORMED, true);
}

#[test]
fn string_with_encoded_surrogate() {
    // "In particular, the character data MUST NOT include encodings of code points between
    // U+D800 and U+DFFF" [MQTT-1.5.4-1].
    let client_id = connect_v4(0x02, &[0x00, 0x03, 0xED, 0xA0, 0x80]);
    assert_rejected(V4, &client_id, MALFORMED, true);
    // U+DFFF (0xED 0xBF 0xBF) in a reason string.
    let surrogate_reason = [
        0x40, 0x0A, 0x00, 0x01, 0x80, 0x06, 0x1F, 0x00, 0x03, 0xED, 0xBF, 0xBF,
    ];
    assert_rejected(V5, &surrogate_reason, MALFORMED, true);
}

// 4.7 Topic names and filters ------------------------------------------------------------------

#[test]
fn wildcards_in_topic_names() {
    // "The Topic Name in the PUBLISH packet MUST NOT contain wildcard characters" [MQTT-3.3.2-2].
    assert_rejected(
        V4,
        &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'],
        ReasonCode::TopicNameInvalid,
        true,
    );
    assert_rejected(
        V4,
        &[0x30, 0x03, 0x00, 0x01, b'#'],
        ReasonCode::TopicNameInvalid,
        true,
    );
    assert_rejected(
        V5,
        &[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00],
        ReasonCode::TopicNameInvalid,
        true,
    );
    // The will topic is a topic name too.
    let will = connect_v4(0x06, &[0x00, 0x00, 0x00, 0x01, b'+', 0x00, 0x00]);
    assert_rejected(V4, &will, ReasonCode::TopicNameInvalid, true);
}

#[test]
fn bad_topic_filters() {
    let invalid = ReasonCode::TopicFilterInvalid;
    // '#' must be last and alone in its level [MQTT-4.7.1-1]; '+' must fill its level
    // [MQTT-4.7.1-2].
    let hash_inside = [
        0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
    ];
    assert_rejected(V4, &hash_inside, invalid, true);
    let plus_with_text = [0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'+', 0x01];
    assert_rejected(V4, &plus_with_text, invalid, true);
    let unsubscribe = [0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'a', b'#'];
    assert_rejected(V4, &unsubscribe, invalid, true);
    let v5 = [0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x02, b'a', b'#', 0x00];
    assert_rejected(V5, &v5, invalid, true);
    // "All Topic Names and Topic Filters MUST be at least one character long" [MQTT-4.7.3-1].
    let empty = [0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00];
    assert_rejected(V4, &empty, invalid, true);
    // A shared subscription needs a share name and a filter [MQTT-4.8.2-1].
    let share = [
        0x82, 0x0E, 0x00, 0x01, 0x00, 0x00, 0x08, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g',
        0x00,
    ];
    assert_rejected(V5, &share, invalid, true);
}

#[test]
fn empty_topic_without_topic_alias() {
    // "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias"
    // (3.3.2.1).
    assert_rejected(V5, &[0x30, 0x03, 0x00, 0x00, 0x00], PROTOCOL, false);
}

// 3.3 PUBLISH ----------------------------------------------------------------------------------

#[test]
fn publish_qos_3() {
    // "A PUBLISH Packet MUST NOT have both QoS bits set to 1" [MQTT-3.3.1-4].
    let bytes = [0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01];
    assert_rejected(V4, &bytes, MALFORMED, true);
    let bytes = [0x36, 0x06, 0x00, 0x01, b't', 0x00, 0x01, 0x00];
    assert_rejected(V5, &bytes, MALFORMED, true);
}

#[test]
fn dup_on_qos_0() {
    // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2]: a flag bit with
    // an invalid value, so a Malformed Packet as for any invalid flags (2.1.3).
    assert_rejected(V4, &[0x38, 0x03, 0x00, 0x01, b't'], MALFORMED, true);
    assert_rejected(V5, &[0x38, 0x04, 0x00, 0x01, b't', 0x00], MALFORMED, true);
}

#[test]
fn packet_identifier_zero() {
    // Packet identifiers are non-zero [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]); a zero is data
    // the protocol does not allow, a Protocol Error (4.13).
    let cases: [&[u8]; 4] = [
        &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
        &[0x40, 0x02, 0x00, 0x00],
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'#', 0x00],
        &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'#'],
    ];
    for bytes in cases {
        assert_rejected(V4, bytes, PROTOCOL, true);
    }
    assert_rejected(V5, &[0x62, 0x02, 0x00, 0x00], PROTOCOL, true);
}

// 3.8 / 3.10 SUBSCRIBE and UNSUBSCRIBE ---------------------------------------------------------

#[test]
fn subscribe_without_filters() {
    // "The payload of a SUBSCRIBE packet MUST contain at least one Topic Filter / QoS pair"
    // [MQTT-3.8.3-3] (5.0: [MQTT-3.8.3-2], "A SUBSCRIBE packet with no Payload is a Protocol
    // Error").
    assert_rejected(V4, &[0x82, 0x02, 0x00, 0x01], PROTOCOL, true);
    assert_rejected(V5, &[0x82, 0x03, 0x00, 0x01, 0x00], PROTOCOL, true);
}

#[test]
fn unsubscribe_without_filters() {
    // [MQTT-3.10.3-2]: "An UNSUBSCRIBE packet with no Payload is a Protocol Error".
    assert_rejected(V4, &[0xA2, 0x02, 0x00, 0x01], PROTOCOL, true);
    assert_rejected(V5, &[0xA2, 0x03, 0x00, 0x01, 0x00], PROTOCOL, true);
}

#[test]
fn subscription_options_reserved_bits() {
    // 3.1.1: "The upper 6 bits of the Requested QoS byte ... MUST be 0" and QoS 3 is
    // malformed [MQTT-3-8.3-4]; 5.0: bits 6 and 7 are reserved [MQTT-3.8.3-5].
    assert_rejected(
        V4,
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'#', 0x04],
        MALFORMED,
        true,
    );
    assert_rejected(
        V4,
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'#', 0x03],
        MALFORMED,
        true,
    );
    assert_rejected(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'#', 0x40],
        MALFORMED,
        true,
    );
}

#[test]
fn subscription_options_forbidden_values() {
    // 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3" and "It is a
    // Protocol Error to send a Retain Handling value of 3".
    assert_rejected(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'#', 0x03],
        PROTOCOL,
        false,
    );
    assert_rejected(
        V5,
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'#', 0x30],
        PROTOCOL,
        false,
    );
    // "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
    // [MQTT-3.8.3-4].
    let shared_no_local = [
        0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g',
        b'/', b'#', 0x04,
    ];
    assert_rejected(V5, &shared_no_local, PROTOCOL, true);
}

// 3.1 CONNECT ----------------------------------------------------------------------------------

#[test]
fn connect_reserved_flag() {
    // "The Server MUST validate that the reserved flag in the CONNECT packet is set to 0"
    // [MQTT-3.1.2-3]; "If the reserved flag is not 0 it is a Malformed Packet".
    assert_rejected(V4, &connect_v4(0x03, &[0x00, 0x00]), MALFORMED, true);
    assert_rejected(V5, &connect_v5(0x03, &[], &[0x00, 0x00]), MALFORMED, true);
}

#[test]
fn will_qos_3() {
    // "If the Will Flag is set to 1, the value of Will QoS can be 0, 1, or 2. A value of 3 is
    // a Malformed Packet" [MQTT-3.1.2-12] (3.1.1: [MQTT-3.1.2-14]).
    let will = [0x00, 0x00, 0x00, 0x01, b't', 0x00, 0x00];
    assert_rejected(V4, &connect_v4(0x1E, &will), MALFORMED, true);
    let will_v5 = [0x00, 0x00, 0x00, 0x00, 0x01, b't', 0x00, 0x00];
    assert_rejected(V5, &connect_v5(0x1E, &[], &will_v5), MALFORMED, true);
}

#[test]
fn will_qos_without_will_flag() {
    // "If the Will Flag is set to 0, then the Will QoS MUST be set to 0" [MQTT-3.1.2-11]
    // (3.1.1: [MQTT-3.1.2-13]).
    assert_rejected(V4, &connect_v4(0x0A, &[0x00, 0x00]), MALFORMED, true);
    assert_rejected(V5, &connect_v5(0x0A, &[], &[0x00, 0x00]), MALFORMED, true);
}

#[test]
fn will_retain_without_will_flag() {
    // "If the Will Flag is set to 0, then Will Retain MUST be set to 0" [MQTT-3.1.2-13]
    // (3.1.1: [MQTT-3.1.2-15]).
    assert_rejected(V4, &connect_v4(0x22, &[0x00, 0x00]), MALFORMED, true);
    assert_rejected(V5, &connect_v5(0x22, &[], &[0x00, 0x00]), MALFORMED, true);
}

#[test]
fn will_rules_name_the_statement_of_their_version() {
    // The will rules are numbered differently: 5.0 [MQTT-3.1.2-11] Will QoS without will,
    // [MQTT-3.1.2-12] Will QoS values, [MQTT-3.1.2-13] Will Retain without will; 3.1.1 numbers
    // the same rules 3.1.2-13, 3.1.2-14 and 3.1.2-15.
    let will_v4 = [0x00, 0x00, 0x00, 0x01, b't', 0x00, 0x00];
    let will_v5 = [0x00, 0x00, 0x00, 0x00, 0x01, b't', 0x00, 0x00];
    let cases = [
        (connect_v4(0x0A, &[0x00, 0x00]), "MQTT-3.1.2-13"),
        (connect_v4(0x1E, &will_v4), "MQTT-3.1.2-14"),
        (connect_v4(0x22, &[0x00, 0x00]), "MQTT-3.1.2-15"),
        (connect_v5(0x0A, &[], &[0x00, 0x00]), "MQTT-3.1.2-11"),
        (connect_v5(0x1E, &[], &will_v5), "MQTT-3.1.2-12"),
        (connect_v5(0x22, &[], &[0x00, 0x00]), "MQTT-3.1.2-13"),
    ];
    for (bytes, id) in cases {
        let error = decode_error_with_limit(V4, &bytes, u32::MAX);
        assert_eq!(error.conformance(), Some(id), "{bytes:02X?}: {error}");
    }
}

#[test]
fn password_without_user_name_before_5_0() {
    // "If the User Name Flag is set to 0, the Password Flag MUST be set to 0" [MQTT-3.1.2-22].
    let bytes = connect_v4(0x42, &[0x00, 0x00, 0x00, 0x01, b'p']);
    assert_rejected(V4, &bytes, MALFORMED, true);
}

#[test]
fn flags_promise_fields_the_payload_lacks() {
    // User name flag set, no user name [MQTT-3.1.2-19 / 3.1.2-17].
    assert_rejected(V4, &connect_v4(0x82, &[0x00, 0x00]), MALFORMED, false);
    // Will flag set, no will topic [MQTT-3.1.2-9].
    assert_rejected(V4, &connect_v4(0x06, &[0x00, 0x00]), MALFORMED, false);
}

#[test]
fn unsupported_protocol_level() {
    // "The Server MUST respond to the CONNECT Packet with a CONNACK return code 0x01
    // (unacceptable protocol level) ... if the Protocol Level is not supported"
    // [MQTT-3.1.2-2]: reason code 0x84 Unsupported Protocol Version.
    let unsupported = ReasonCode::UnsupportedProtocolVersion;
    for level in [0x00, 0x02, 0x06, 0xFF] {
        let bytes = [
            0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', level, 0x02, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_rejected(V4, &bytes, unsupported, true);
        assert_rejected(V5, &bytes, unsupported, true);
    }
}

#[test]
fn protocol_name_that_does_not_match_the_level() {
    // "MQIsdp" is only level 3 and "MQTT" only levels 4 and 5 [MQTT-3.1.2-1].
    let unsupported = ReasonCode::UnsupportedProtocolVersion;
    let mqtt_level_3 = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x03, 0x02, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_rejected(V4, &mqtt_level_3, unsupported, true);
    let mqisdp_level_4 = [
        0x10, 0x11, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x04, 0x02, 0x00, 0x3C, 0x00,
        0x03, b'a', b'b', b'c',
    ];
    assert_rejected(V4, &mqisdp_level_4, unsupported, true);
}

// 3.2 CONNACK ----------------------------------------------------------------------------------

#[test]
fn connack_reserved_flags() {
    // "Bits 7-1 are reserved and MUST be set to 0" [MQTT-3.2.2-1] (3.1.1 states the rule in
    // 3.2.2.1 without a number).
    assert_rejected(V4, &[0x20, 0x02, 0x02, 0x00], MALFORMED, false);
    assert_rejected(V5, &[0x20, 0x03, 0x80, 0x00, 0x00], MALFORMED, true);
}

#[test]
fn undefined_return_and_reason_codes() {
    // 3.1.1 CONNACK return codes stop at 5; 0x03 is no MQTT 5 reason code at all.
    assert_rejected(V4, &[0x20, 0x02, 0x00, 0x06], MALFORMED, false);
    assert_rejected(V5, &[0x40, 0x03, 0x00, 0x01, 0x03], MALFORMED, false);
    // A 3.1.1 SUBACK return code is 0, 1, 2 or 0x80 (3.9.3).
    assert_rejected(V4, &[0x90, 0x03, 0x00, 0x01, 0x03], MALFORMED, false);
}

// 2.2.2 Properties -----------------------------------------------------------------------------

#[test]
fn duplicate_properties() {
    // "It is a Protocol Error to include the Session Expiry Interval more than once"
    // (3.1.2.11.2), and likewise for every property but User Property (and Subscription
    // Identifier in PUBLISH).
    let session_twice = [0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
    assert_rejected(
        V5,
        &connect_v5(0x02, &session_twice, &[0x00, 0x00]),
        PROTOCOL,
        false,
    );
    let format_twice = [0x01, 0x00, 0x01, 0x01];
    assert_rejected(V5, &publish_v5(&format_twice), PROTOCOL, false);
    let reason_twice = [
        0x40, 0x0C, 0x00, 0x01, 0x80, 0x08, 0x1F, 0x00, 0x01, b'a', 0x1F, 0x00, 0x01, b'b',
    ];
    assert_rejected(V5, &reason_twice, PROTOCOL, false);
    // More than one Subscription Identifier in SUBSCRIBE (3.8.2.1.2).
    let two_ids = [
        0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'#', 0x00,
    ];
    assert_rejected(V5, &two_ids, PROTOCOL, false);
}

#[test]
fn property_not_allowed_in_the_packet() {
    // "A Control Packet which contains an Identifier which is not valid for its packet type
    // ... is a Malformed Packet" (2.2.2.2).
    let topic_alias_in_connect = [0x23, 0x00, 0x01];
    assert_rejected(
        V5,
        &connect_v5(0x02, &topic_alias_in_connect, &[0x00, 0x00]),
        MALFORMED,
        false,
    );
    let session_expiry_in_publish = [0x11, 0x00, 0x00, 0x00, 0x01];
    assert_rejected(
        V5,
        &publish_v5(&session_expiry_in_publish),
        MALFORMED,
        false,
    );
    let topic_alias_in_puback = [0x40, 0x07, 0x00, 0x01, 0x80, 0x03, 0x23, 0x00, 0x01];
    assert_rejected(V5, &topic_alias_in_puback, MALFORMED, false);
    // Session Expiry Interval is a CONNECT property, not a will property.
    let will = [
        0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, b't', 0x00, 0x00,
    ];
    assert_rejected(V5, &connect_v5(0x06, &[], &will), MALFORMED, false);
}

#[test]
fn unknown_property_identifier() {
    for id in [0x00, 0x04, 0x2B, 0x7F] {
        let bytes = publish_v5(&[id, 0x00]);
        assert_rejected(V5, &bytes, MALFORMED, false);
    }
}

#[test]
fn receive_maximum_zero() {
    // "It is a Protocol Error to include the Receive Maximum value more than once or for it to
    // have the value 0" (3.1.2.11.3, 3.2.2.3.3).
    let zero = [0x21, 0x00, 0x00];
    assert_rejected(V5, &connect_v5(0x02, &zero, &[0x00, 0x00]), PROTOCOL, false);
    assert_rejected(
        V5,
        &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00],
        PROTOCOL,
        false,
    );
}

#[test]
fn maximum_packet_size_zero() {
    // "It is a Protocol Error to include the Maximum Packet Size more than once, or for the
    // value to be set to zero" (3.1.2.11.4).
    let zero = [0x27, 0x00, 0x00, 0x00, 0x00];
    assert_rejected(V5, &connect_v5(0x02, &zero, &[0x00, 0x00]), PROTOCOL, false);
}

#[test]
fn topic_alias_zero() {
    // "A Topic Alias of 0 is not permitted" [MQTT-3.3.2-8]; the receiver answers with 0x94
    // Topic Alias invalid.
    let bytes = [0x30, 0x08, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00, b'p'];
    assert_rejected(V5, &bytes, ReasonCode::TopicAliasInvalid, true);
}

#[test]
fn subscription_identifier_zero() {
    // "It is a Protocol Error if the Subscription Identifier has a value of 0" (3.3.2.3.8,
    // 3.8.2.1.2).
    assert_rejected(V5, &publish_v5(&[0x0B, 0x00]), PROTOCOL, false);
    let subscribe = [
        0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'#', 0x00,
    ];
    assert_rejected(V5, &subscribe, PROTOCOL, false);
}

#[test]
fn boolean_properties_other_than_0_or_1() {
    // "It is a Protocol Error to include the Request Problem Information more than once, or to
    // have a value other than 0 or 1" (3.1.2.11.7); same for Maximum QoS (3.2.2.3.4).
    let request_problem = [0x17, 0x02];
    assert_rejected(
        V5,
        &connect_v5(0x02, &request_problem, &[0x00, 0x00]),
        PROTOCOL,
        false,
    );
    assert_rejected(
        V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
        PROTOCOL,
        false,
    );
}

#[test]
fn authentication_data_without_method() {
    // "It is a Protocol Error to include Authentication Data if there is no Authentication
    // Method" (3.1.2.11.10).
    let data_only = [0x16, 0x00, 0x01, 0xAA];
    assert_rejected(
        V5,
        &connect_v5(0x02, &data_only, &[0x00, 0x00]),
        PROTOCOL,
        false,
    );
}

// Maximum Packet Size --------------------------------------------------------------------------

#[test]
fn packet_too_large_is_refused_before_the_body_arrives() {
    // Only the fixed header of a 65,539-byte PUBLISH is in the buffer; the decoder must refuse
    // it now rather than wait for (and buffer) the body.
    for version in [ProtocolVersion::V3_1, V4, V5] {
        let error = decode_error_with_limit(version, &[0x30, 0xFF, 0xFF, 0x03], 1024);
        assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge, "{version}");
    }
}

#[test]
fn packet_one_byte_over_the_limit() {
    // Maximum Packet Size is "the total number of bytes in an MQTT Control Packet" (3.1.2.11.4):
    // this PUBLISH is 7 bytes, so a limit of 6 refuses it and 7 accepts it.
    let bytes = [0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x'];
    let error = decode_error_with_limit(V5, &bytes, 6);
    assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(decode(&mut buf, V5, 7), Ok(Some(_))));
    let mut header_only = BytesMut::from(&bytes[..2]);
    assert!(
        decode(&mut header_only, V5, 6).is_err(),
        "the fixed header alone is enough to refuse"
    );
}
