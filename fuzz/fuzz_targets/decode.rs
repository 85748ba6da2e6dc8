//! Fuzz target for the codec: arbitrary bytes are decoded as MQTT 3.1, 3.1.1 and 5.0. Decoding
//! must never panic; every packet it yields must consume bytes, encode without error to
//! exactly `encoded_len` bytes, and decode from those bytes to an equal packet.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mquictt_protocol::{decode, Packet, ProtocolVersion};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// Large enough for anything the fuzzer produces, small enough to exercise the check.
const MAX_PACKET_SIZE: u32 = 1 << 20;

fn assert_round_trip(packet: &Packet, version: ProtocolVersion) {
    // CONNECT carries its own protocol version.
    let version = match packet {
        Packet::Connect(connect) => connect.protocol,
        _ => version,
    };
    let mut encoded = BytesMut::new();
    if let Err(e) = packet.encode(version, &mut encoded) {
        panic!("decoded packet does not encode: {e:?}\n{packet:?}");
    }
    assert_eq!(packet.encoded_len(version), encoded.len(), "{packet:?}");
    let wire = encoded.clone();
    match decode(&mut encoded, version, u32::MAX) {
        Ok(Some(again)) => assert_eq!(&again, packet, "re-decoding {wire:02X?}"),
        other => panic!("re-decoding {wire:02X?} gave {other:?} for {packet:?}"),
    }
    assert!(encoded.is_empty(), "re-decoding left bytes over");
}

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode(&mut buf, version, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => {
                    assert!(buf.len() < before, "a packet was decoded from no bytes");
                    assert_round_trip(&packet, version);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
