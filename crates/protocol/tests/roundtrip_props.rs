//! Property tests of the codec: every valid packet of each protocol version survives
//! encode-then-decode unchanged with `encoded_len` equal to the bytes written, and no byte
//! string (random, or a valid packet with a byte changed) makes the decoder panic, loop, or
//! report a packet without consuming it.

mod common;

use bytes::BytesMut;
use common::strategies::arb_packet;
use common::{encode, encoding_version};
use mquictt_protocol::{decode, Packet, ProtocolVersion};
use proptest::collection::vec;
use proptest::prelude::*;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// Limits for the "never panics" properties: none, a typical small one, and one smaller than
/// most packets.
const LIMITS: [u32; 3] = [u32::MAX, 256, 8];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn assert_round_trip(packet: &Packet, version: ProtocolVersion) -> Result<(), TestCaseError> {
    let bytes = encode(packet, version);
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = decode(&mut buf, encoding_version(packet, version), u32::MAX);
    match decoded {
        Ok(Some(decoded)) => prop_assert_eq!(&decoded, packet, "bytes {:02X?}", bytes),
        other => prop_assert!(false, "{:02X?} decoded to {:?}", bytes, other),
    }
    prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(())
}

/// Decodes until the buffer needs more bytes or an error stops it. Every packet must consume
/// bytes, so the loop ends.
fn decode_everything(bytes: &[u8], version: ProtocolVersion, limit: u32) {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.len();
        match decode(&mut buf, version, limit) {
            Ok(Some(_)) => assert!(buf.len() < before, "a packet was decoded from no bytes"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                break;
            }
            Err(error) => {
                // Every error can be turned into what a server sends.
                let _ = (error.reason_code(), error.conformance());
                break;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn v3_1_packets_round_trip(packet in arb_packet(ProtocolVersion::V3_1)) {
        assert_round_trip(&packet, ProtocolVersion::V3_1)?;
    }

    #[test]
    fn v3_1_1_packets_round_trip(packet in arb_packet(ProtocolVersion::V3_1_1)) {
        assert_round_trip(&packet, ProtocolVersion::V3_1_1)?;
    }

    #[test]
    fn v5_packets_round_trip(packet in arb_packet(ProtocolVersion::V5)) {
        assert_round_trip(&packet, ProtocolVersion::V5)?;
    }

    #[test]
    fn consecutive_packets_split_anywhere(
        packets in vec(arb_packet(ProtocolVersion::V5), 1..4),
        split in any::<prop::sample::Index>(),
    ) {
        // The stream is cut at an arbitrary point, as a socket read would cut it.
        let version = ProtocolVersion::V5;
        let wire: Vec<u8> = packets.iter().flat_map(|p| encode(p, version)).collect();
        let cut = split.index(wire.len() + 1);
        let (head, tail) = wire.split_at(cut);
        let mut buf = BytesMut::from(head);
        let mut decoded = Vec::new();
        for next in [Some(tail), None] {
            loop {
                match decode(&mut buf, version, u32::MAX) {
                    Ok(Some(packet)) => decoded.push(packet),
                    Ok(None) => break,
                    Err(e) => return Err(TestCaseError::fail(format!("{e:?} in {wire:02X?}"))),
                }
            }
            if let Some(rest) = next {
                buf.extend_from_slice(rest);
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert!(buf.is_empty());
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..96)) {
        for version in VERSIONS {
            for limit in LIMITS {
                decode_everything(&bytes, version, limit);
            }
        }
    }

    #[test]
    fn random_bytes_behind_a_plausible_header_never_panic(
        first in any::<u8>(),
        body in vec(any::<u8>(), 0..96),
    ) {
        // A well-formed fixed header gets the decoder past the first checks into the body.
        let mut bytes = vec![first, u8::try_from(body.len()).unwrap_or(0x7F)];
        bytes.extend_from_slice(&body);
        for version in VERSIONS {
            for limit in LIMITS {
                decode_everything(&bytes, version, limit);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_packets_never_panic(
        packet in arb_packet(ProtocolVersion::V5),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = encode(&packet, ProtocolVersion::V5);
        let i = at.index(bytes.len());
        if let Some(byte) = bytes.get_mut(i) {
            *byte = value;
        }
        if truncate {
            bytes.truncate(i);
        }
        for version in VERSIONS {
            decode_everything(&bytes, version, u32::MAX);
        }
    }

    #[test]
    fn mutated_v3_packets_never_panic(
        packet in arb_packet(ProtocolVersion::V3_1_1),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = encode(&packet, ProtocolVersion::V3_1_1);
        let i = at.index(bytes.len());
        if let Some(byte) = bytes.get_mut(i) {
            *byte = value;
        }
        for version in VERSIONS {
            decode_everything(&bytes, version, u32::MAX);
        }
    }
}
