//! Codec throughput: encode and decode of MQTT 5 PUBLISH (64 B and 64 KiB payloads) and
//! CONNECT, ours beside rumqttc's v5 codec on the same packets in one run. Decoding reads the
//! same wire bytes with both codecs; encoding writes equivalent packets into a reused buffer.
//!
//! Run with `cargo bench -p mquictt-protocol --bench codec`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mquictt_protocol::decode;
use rumqttc::v5::mqttbytes::v5 as theirs;

use common::{cases, stream, STREAM_COUNT, V5};

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        group.bench_with_input(BenchmarkId::new("mquictt", case.name), &case, |b, case| {
            b.iter_batched_ref(
                || BytesMut::from(&case.wire[..]),
                |buf| decode(buf, V5, u32::MAX),
                BatchSize::SmallInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("rumqttc", case.name), &case, |b, case| {
            b.iter_batched_ref(
                || BytesMut::from(&case.wire[..]),
                |buf| theirs::Packet::read(buf, None),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        let mut buf = BytesMut::with_capacity(case.wire.len());
        group.bench_with_input(BenchmarkId::new("mquictt", case.name), &case, |b, case| {
            b.iter(|| {
                buf.clear();
                let result = case.ours.encode(V5, &mut buf);
                black_box(&buf);
                result
            })
        });
        group.bench_with_input(BenchmarkId::new("rumqttc", case.name), &case, |b, case| {
            b.iter(|| {
                buf.clear();
                let result = case.theirs.write(&mut buf, None);
                black_box(&buf);
                result
            })
        });
    }
    group.finish();
}

fn bench_decode_stream(c: &mut Criterion) {
    // Many small packets back to back in one buffer, as a busy connection delivers them.
    let stream = stream();
    let mut group = c.benchmark_group("decode_stream");
    group.throughput(Throughput::Elements(STREAM_COUNT as u64));
    group.bench_function("mquictt/publish_64B_x1000", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                while let Ok(Some(packet)) = decode(buf, V5, u32::MAX) {
                    black_box(packet);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rumqttc/publish_64B_x1000", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                while let Ok(packet) = theirs::Packet::read(buf, None) {
                    black_box(packet);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the whole comparison finishes in a few minutes on two cores.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = codec;
    config = config();
    targets = bench_decode, bench_encode, bench_decode_stream
}
criterion_main!(codec);
