//! Instruction counts of our codec beside rumqttc's, for `valgrind --tool=callgrind`: runs one
//! benchmark case (see `benches/common/mod.rs`) many times through small `measure_*` functions
//! that are never inlined, so that callgrind's inclusive cost of each function divided by the
//! number of calls is the cost of one decode or encode. Input copies are made, and decoded
//! packets dropped, outside those functions, as Criterion does outside its timed section.
//!
//! ```sh
//! cargo build --release -p mquictt-protocol --example codec_profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/codec_profile publish_64B 20000
//! callgrind_annotate --inclusive=yes cg.out | grep measure_
//! ```
//!
//! Cases: `publish_64B`, `publish_64KiB`, `connect`, `stream` (1,000 `publish_64B` packets
//! decoded from one buffer, each dropped in the loop, per call).

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use mquictt_protocol::{decode, Packet, ProtocolError};
use rumqttc::v5::mqttbytes::v5 as theirs;

use common::{cases, stream, STREAM_COUNT, V5};

#[inline(never)]
fn measure_ours_decode(buf: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
    decode(buf, V5, u32::MAX)
}

#[inline(never)]
fn measure_theirs_decode(
    buf: &mut BytesMut,
) -> Result<theirs::Packet, rumqttc::v5::mqttbytes::Error> {
    theirs::Packet::read(buf, None)
}

#[inline(never)]
fn measure_ours_encode(packet: &Packet, buf: &mut BytesMut) -> Result<(), ProtocolError> {
    packet.encode(V5, buf)
}

#[inline(never)]
fn measure_theirs_encode(
    packet: &theirs::Packet,
    buf: &mut BytesMut,
) -> Result<usize, rumqttc::v5::mqttbytes::Error> {
    packet.write(buf, None)
}

#[inline(never)]
fn measure_ours_stream(buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while let Ok(Some(packet)) = decode(buf, V5, u32::MAX) {
        black_box(packet);
        count += 1;
    }
    count
}

#[inline(never)]
fn measure_theirs_stream(buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while let Ok(packet) = theirs::Packet::read(buf, None) {
        black_box(packet);
        count += 1;
    }
    count
}

/// Fresh copies of `wire`, made before anything is measured.
fn inputs(wire: &Bytes, iterations: usize) -> Vec<BytesMut> {
    (0..iterations).map(|_| BytesMut::from(&wire[..])).collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "publish_64B".into());
    let iterations: usize = args
        .next()
        .map(|n| n.parse().expect("iterations is a number"))
        .unwrap_or(20_000);

    if name == "stream" {
        let wire = stream();
        let calls = iterations / 100;
        let mut ours = inputs(&wire, calls);
        let mut theirs_in = inputs(&wire, calls);
        let decoded: usize = ours.iter_mut().map(measure_ours_stream).sum();
        let decoded_theirs: usize = theirs_in.iter_mut().map(measure_theirs_stream).sum();
        assert_eq!(decoded, decoded_theirs);
        assert_eq!(decoded, calls * STREAM_COUNT);
        println!("stream: {calls} calls of {STREAM_COUNT} packets");
        return;
    }

    let case = cases()
        .into_iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("unknown case {name}"));

    let mut ours = inputs(&case.wire, iterations);
    let decoded: Vec<_> = ours.iter_mut().map(measure_ours_decode).collect();
    assert!(decoded.iter().all(|p| matches!(p, Ok(Some(_)))));
    drop(decoded);
    let mut theirs_in = inputs(&case.wire, iterations);
    let decoded: Vec<_> = theirs_in.iter_mut().map(measure_theirs_decode).collect();
    assert!(decoded.iter().all(Result::is_ok));
    drop(decoded);

    let mut buf = BytesMut::with_capacity(case.wire.len());
    for _ in 0..iterations {
        buf.clear();
        measure_ours_encode(&case.ours, &mut buf).expect("encodes");
        black_box(&buf);
    }
    assert_eq!(buf[..], case.wire[..]);
    for _ in 0..iterations {
        buf.clear();
        measure_theirs_encode(&case.theirs, &mut buf).expect("encodes");
        black_box(&buf);
    }
    println!("{name}: {iterations} calls each");
}
