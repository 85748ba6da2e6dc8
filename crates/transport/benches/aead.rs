//! The AEAD behind every QUIC packet and TLS record, as rustls' ring provider runs it: sealing
//! one packet's worth of bytes (1,100, a 1 KiB MQTT message with its headers) with each of the
//! two AES-GCM cipher suites TLS 1.3 offers. rustls prefers AES-256-GCM; the difference says
//! what preferring AES-128-GCM would save (docs/benchmarks.md, *QUIC throughput*).
//!
//! Run with `cargo bench -p mquictt-transport --bench aead`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, Algorithm, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

const PACKET: usize = 1100;

fn bench_seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(PACKET as u64));
    for (name, algorithm) in [("AES-128-GCM", &AES_128_GCM), ("AES-256-GCM", &AES_256_GCM)] {
        let key = key(algorithm);
        let mut packet = vec![1u8; PACKET];
        let mut counter = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let tag = key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from([0u8; 20]),
                    black_box(&mut packet),
                );
                black_box(tag.is_ok())
            })
        });
    }
    group.finish();
}

fn key(algorithm: &'static Algorithm) -> LessSafeKey {
    let bytes = vec![7u8; algorithm.key_len()];
    let key = UnboundKey::new(algorithm, &bytes).unwrap_or_else(|e| panic!("{e}"));
    LessSafeKey::new(key)
}

criterion_group!(benches, bench_seal);
criterion_main!(benches);
