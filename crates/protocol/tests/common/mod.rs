//! Shared by the codec test suites: checks that run one byte vector through decode, encode and
//! incremental decoding, and the error assertions of the malformed-input tests. The proptest
//! strategies live in `strategies`. Each test binary uses a different subset, hence the
//! `dead_code` allowance below.

#![allow(dead_code)]

pub(crate) mod strategies;

use bytes::{Bytes, BytesMut};
use mquictt_protocol::{
    decode, MqttString, Packet, PacketId, ProtocolError, ProtocolVersion, ReasonCode, TopicFilter,
    TopicName,
};

/// A limit that never gets in the way of a test that is not about limits.
pub(crate) const NO_LIMIT: u32 = u32::MAX;

pub(crate) fn s(text: &str) -> MqttString {
    MqttString::new(text).expect("test strings are valid MQTT strings")
}

pub(crate) fn topic(text: &str) -> TopicName {
    TopicName::new(text).expect("test topic names are valid")
}

pub(crate) fn filter(text: &str) -> TopicFilter {
    TopicFilter::new(text).expect("test topic filters are valid")
}

pub(crate) fn pid(value: u16) -> PacketId {
    PacketId::new(value).expect("test packet identifiers are non-zero")
}

pub(crate) fn bin(data: &[u8]) -> Bytes {
    Bytes::copy_from_slice(data)
}

/// Reads the fixed header of a hand-written vector and checks that its Remaining Length
/// matches the bytes that follow, so that a miscounted vector fails here, in the test's own
/// terms, before it is blamed on the codec.
pub(crate) fn check_framing(bytes: &[u8]) {
    let mut remaining = 0usize;
    let mut shift = 0;
    let mut header_len = 1;
    for &byte in bytes.iter().skip(1).take(4) {
        header_len += 1;
        remaining |= usize::from(byte & 0x7F) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    assert_eq!(
        bytes.len() - header_len,
        remaining,
        "vector {bytes:02X?} declares Remaining Length {remaining}"
    );
}

/// Decodes a whole buffer that must hold exactly one packet.
pub(crate) fn decode_one(version: ProtocolVersion, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, NO_LIMIT)
        .unwrap_or_else(|e| panic!("decoding {bytes:02X?} failed: {e:?}"))
        .unwrap_or_else(|| panic!("decoding {bytes:02X?} asked for more bytes"));
    assert!(
        buf.is_empty(),
        "decoding {bytes:02X?} left {} bytes",
        buf.len()
    );
    packet
}

/// The version a packet is encoded with: CONNECT names its own.
pub(crate) fn encoding_version(packet: &Packet, version: ProtocolVersion) -> ProtocolVersion {
    match packet {
        Packet::Connect(connect) => connect.protocol,
        _ => version,
    }
}

/// Encodes a packet and checks `encoded_len` against what was written.
pub(crate) fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let version = encoding_version(packet, version);
    let mut buf = BytesMut::new();
    packet
        .encode(version, &mut buf)
        .unwrap_or_else(|e| panic!("encoding {packet:?} failed: {e:?}"));
    assert_eq!(
        packet.encoded_len(version),
        buf.len(),
        "encoded_len of {packet:?}"
    );
    buf.to_vec()
}

/// Feeds `bytes` one at a time: every prefix must ask for more without consuming anything,
/// and the last byte must yield `expected` and leave the buffer empty.
pub(crate) fn assert_incremental(version: ProtocolVersion, bytes: &[u8], expected: &Packet) {
    let mut buf = BytesMut::new();
    for (i, &byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let result = decode(&mut buf, version, NO_LIMIT);
        if i + 1 < bytes.len() {
            match result {
                Ok(None) => assert_eq!(buf.len(), i + 1, "a prefix consumed bytes"),
                other => panic!("prefix of {} bytes of {bytes:02X?} gave {other:?}", i + 1),
            }
        } else {
            match result {
                Ok(Some(packet)) => assert_eq!(&packet, expected, "{bytes:02X?}"),
                other => panic!("the complete {bytes:02X?} gave {other:?}"),
            }
            assert!(
                buf.is_empty(),
                "the packet did not consume exactly its bytes"
            );
        }
    }
}

/// A canonical vector: decodes to `expected` (whole and byte by byte) and `expected` encodes
/// back to the same bytes.
pub(crate) fn assert_vector(version: ProtocolVersion, bytes: &[u8], expected: &Packet) {
    check_framing(bytes);
    assert_eq!(
        &decode_one(version, bytes),
        expected,
        "decoding {bytes:02X?}"
    );
    assert_incremental(version, bytes, expected);
    assert_eq!(
        encode(expected, version),
        bytes,
        "encoding {expected:?} (left: got, right: vector)"
    );
}

/// A valid but not canonical encoding (other property order, long form of an
/// acknowledgement): it decodes to `expected`, which encodes to `canonical`.
pub(crate) fn assert_alternate(
    version: ProtocolVersion,
    bytes: &[u8],
    expected: &Packet,
    canonical: &[u8],
) {
    check_framing(bytes);
    assert_eq!(
        &decode_one(version, bytes),
        expected,
        "decoding {bytes:02X?}"
    );
    assert_incremental(version, bytes, expected);
    assert_eq!(
        encode(expected, version),
        canonical,
        "encoding {expected:?}"
    );
}

/// Decodes bytes that must be rejected, with a limit on the packet size.
pub(crate) fn decode_error_with_limit(
    version: ProtocolVersion,
    bytes: &[u8],
    max_packet_size: u32,
) -> ProtocolError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, version, max_packet_size) {
        Err(e) => e,
        Ok(other) => panic!("{bytes:02X?} ({version}) should be rejected, got Ok({other:?})"),
    }
}

/// Asserts the reason code of the rejection and whether it names a conformance statement.
pub(crate) fn assert_rejected(
    version: ProtocolVersion,
    bytes: &[u8],
    reason: ReasonCode,
    has_conformance_id: bool,
) {
    check_framing(bytes);
    assert_rejected_unframed(version, bytes, reason, has_conformance_id);
}

/// [`assert_rejected`] for bytes whose fixed header is itself broken.
pub(crate) fn assert_rejected_unframed(
    version: ProtocolVersion,
    bytes: &[u8],
    reason: ReasonCode,
    has_conformance_id: bool,
) {
    let error = decode_error_with_limit(version, bytes, NO_LIMIT);
    assert_eq!(
        error.reason_code(),
        reason,
        "{bytes:02X?} ({version}): {error}"
    );
    if has_conformance_id {
        let id = error.conformance();
        assert!(
            id.is_some_and(|id| id.starts_with("MQTT-")),
            "{bytes:02X?} ({version}): {error} should name its conformance statement, got {id:?}"
        );
    }
}
