//! Codec throughput: encode and decode of MQTT 5 PUBLISH (64 B and 64 KiB payloads) and
//! CONNECT, ours beside rumqttc's v5 codec on the same packets in one run. Decoding reads the
//! same wire bytes with both codecs; encoding writes equivalent packets into a reused buffer.
//!
//! Run with `cargo bench -p mquictt-protocol --bench codec`.

use mquictt_protocol::PropertySet;
use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mquictt_protocol::properties::Properties;
use mquictt_protocol::{
    decode, Connect, MqttString, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName,
};
use rumqttc::v5::mqttbytes::v5 as theirs;
use rumqttc::v5::mqttbytes::QoS as TheirQoS;

const V5: ProtocolVersion = ProtocolVersion::V5;
const TOPIC: &str = "sensors/building-7/floor-3/temperature";
const CLIENT_ID: &str = "sensor-0042";

/// One benchmark case: the same packet in both libraries' types, and its wire bytes.
struct Case {
    name: &'static str,
    ours: Packet,
    theirs: theirs::Packet,
    wire: Bytes,
}

fn publish_case(name: &'static str, payload_len: usize) -> Case {
    let payload = Bytes::from(vec![0x5A; payload_len]);
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new(TOPIC).expect("valid topic"),
        packet_id: PacketId::new(42),
        properties: Properties::default(),
        payload: payload.clone(),
    });
    let mut publish = theirs::Publish::new(TOPIC, TheirQoS::AtLeastOnce, payload, None);
    publish.pkid = 42;
    case(name, ours, theirs::Packet::Publish(publish))
}

fn connect_case() -> Case {
    let ours = Packet::Connect(Box::new(Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 60,
        client_id: MqttString::new(CLIENT_ID).expect("valid client id"),
        will: None,
        username: Some(MqttString::new("device").expect("valid user name")),
        password: Some(Bytes::from_static(b"correct horse battery staple")),
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(32),
            maximum_packet_size: Some(1 << 20),
            ..PropertySet::default()
        }),
    }));
    let mut properties = theirs::ConnectProperties::new();
    properties.session_expiry_interval = Some(3600);
    properties.receive_maximum = Some(32);
    properties.max_packet_size = Some(1 << 20);
    let connect = theirs::Connect {
        keep_alive: 60,
        client_id: CLIENT_ID.to_string(),
        clean_start: true,
        properties: Some(properties),
    };
    let login = theirs::Login::new("device", "correct horse battery staple");
    case(
        "connect",
        ours,
        theirs::Packet::Connect(connect, None, Some(login)),
    )
}

/// Encodes with our codec and checks that rumqttc reads the bytes as the same packet, so that
/// both decoders benchmark the same input.
fn case(name: &'static str, ours: Packet, theirs: theirs::Packet) -> Case {
    let mut buf = BytesMut::new();
    ours.encode(V5, &mut buf).expect("benchmark packets encode");
    let wire = buf.freeze();
    let mut check = BytesMut::from(&wire[..]);
    let read = theirs::Packet::read(&mut check, None).expect("rumqttc reads our encoding");
    assert_eq!(read, theirs, "{name}: both codecs see the same packet");
    let mut their_wire = BytesMut::new();
    theirs
        .write(&mut their_wire, None)
        .expect("rumqttc encodes");
    assert_eq!(
        their_wire.len(),
        wire.len(),
        "{name}: both encodings have the same size"
    );
    Case {
        name,
        ours,
        theirs,
        wire,
    }
}

fn cases() -> Vec<Case> {
    vec![
        publish_case("publish_64B", 64),
        publish_case("publish_64KiB", 64 * 1024),
        connect_case(),
    ]
}

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
    const COUNT: usize = 1000;
    let case = publish_case("publish_64B", 64);
    let mut stream = BytesMut::new();
    for _ in 0..COUNT {
        stream.extend_from_slice(&case.wire);
    }
    let stream = stream.freeze();
    let mut group = c.benchmark_group("decode_stream");
    group.throughput(Throughput::Elements(COUNT as u64));
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
