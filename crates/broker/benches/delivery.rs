//! The per-delivery step of the broker: turning a routed message into the PUBLISH for one
//! subscriber (`Message::to_publish`), with and without subscription identifiers. It runs once
//! for every copy delivered, so a few nanoseconds here are a few per cent of the broker's CPU
//! at full speed (docs/benchmarks.md, *An empty comparison that cost a microcode assist*).
//!
//! Run with `cargo bench -p mquictt-broker --bench delivery`.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use mquictt_broker::message::Message;
use mquictt_protocol::{QoS, TopicName};

fn bench_to_publish(c: &mut Criterion) {
    let topic = TopicName::new("bench/delivery/1").unwrap_or_else(|e| panic!("{e}"));
    let message = Message::new(topic, Bytes::from(vec![7u8; 64]), QoS::AtMostOnce, false);
    let now = Instant::now();
    let mut group = c.benchmark_group("to_publish");
    group.bench_function("no subscription identifiers", |b| {
        b.iter(|| black_box(&message).to_publish(QoS::AtMostOnce, false, Vec::new(), now))
    });
    group.bench_function("one subscription identifier", |b| {
        b.iter(|| black_box(&message).to_publish(QoS::AtMostOnce, false, vec![3], now))
    });
    group.finish();
}

criterion_group!(benches, bench_to_publish);
criterion_main!(benches);
