//! One byte stream at full speed on loopback through each transport, with nothing of MQTT on
//! top: what the transport itself allows, against which the broker's single-stream QUIC
//! throughput (docs/benchmarks.md, *QUIC throughput*) is read. One connection per transport,
//! made once; each iteration sends 1 MiB in 16 KiB writes and ends when the receiving task
//! has read all of it. Sender and receiver run in one process on a two-worker runtime, the
//! same way for every transport, so the ratios between transports are the result; QUIC runs
//! with the broker's default datagrams (1,452 bytes at most) and with the loopback ceiling of
//! 6,500 on both ends (`quic_max_udp_payload`). Two groups: the wall time of each MiB (what
//! a single stream carries) and the CPU time the process spent on it, all threads together
//! (what the stream costs, read from Linux's per-thread scheduler statistics).
//!
//! Run with `cargo bench -p mquictt-transport --bench stream`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mquictt_transport::quic::LOOPBACK_MAX_UDP_PAYLOAD;
use mquictt_transport::{
    BoxStream, ClientTlsSettings, ConnectOptions, Connector, DevCertificates, ListenUrl, Listener,
    ListenerOptions, QuicClientOptions, QuicServerOptions, ServerTlsSettings, TransportKind,
    TransportUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Bytes per write: what the broker hands a stream at a time is of this order.
const CHUNK: usize = 16 * 1024;
/// Bytes per iteration.
const PER_ITERATION: u64 = 1 << 20;

/// The sending end of one connection, and the count of bytes its peer has read.
struct Pipe {
    writer: BoxStream,
    received: watch::Receiver<u64>,
    sent: u64,
}

impl Pipe {
    /// Sends `bytes` and waits until the receiver has read them; returns the wall time it
    /// took and the CPU time the process spent meanwhile.
    async fn send(&mut self, bytes: u64) -> (Duration, Duration) {
        let chunk = vec![0x5a_u8; CHUNK];
        let cpu = cpu_time();
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.writer
                .write_all(chunk.get(..n).unwrap_or(&chunk))
                .await
                .unwrap_or_else(|e| panic!("write: {e}"));
            left -= n as u64;
        }
        self.writer
            .flush()
            .await
            .unwrap_or_else(|e| panic!("flush: {e}"));
        self.sent += bytes;
        let target = self.sent;
        self.received
            .wait_for(|&read| read >= target)
            .await
            .unwrap_or_else(|e| panic!("receiver gone: {e}"));
        (start.elapsed(), cpu_time().saturating_sub(cpu))
    }
}

/// The CPU time of every thread of this process so far: the first field of each thread's
/// `/proc/self/task/*/schedstat`, in nanoseconds, user and system together. The runtime's
/// threads live through the whole run, so differences between two readings are exact.
fn cpu_time() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap_or_else(|e| panic!("tasks: {e}"));
    let nanos = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Connects a client to a fresh listener of `kind` on 127.0.0.1 and starts a task that reads
/// everything the client sends.
async fn pipe(kind: TransportKind, ceiling: Option<u16>, certificates: &DevCertificates) -> Pipe {
    let server_tls = ServerTlsSettings::from_dev_certificates(certificates)
        .unwrap_or_else(|e| panic!("server TLS: {e}"));
    let client_tls = ClientTlsSettings::trusting_ca_file(&certificates.ca_cert)
        .unwrap_or_else(|e| panic!("client TLS: {e}"));
    let listen = ListenUrl::new(kind, ([127, 0, 0, 1], 0).into());
    let listener_options = ListenerOptions {
        quic: QuicServerOptions {
            mtu_discovery: ceiling.is_some(),
            max_udp_payload: ceiling,
            ..QuicServerOptions::default()
        },
        ..ListenerOptions::default()
    };
    let mut listener = Listener::bind_with_options(&listen, &server_tls, listener_options)
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let url = TransportUrl::parse(&format!(
        "{}://127.0.0.1:{}",
        kind.scheme(),
        listener.local_addr().port()
    ))
    .unwrap_or_else(|e| panic!("url: {e}"));
    let connect_options = ConnectOptions {
        quic: QuicClientOptions {
            max_udp_payload: ceiling,
            ..QuicClientOptions::default()
        },
        ..ConnectOptions::default()
    };
    let connector = Connector::with_options(&client_tls, connect_options)
        .unwrap_or_else(|e| panic!("connector: {e}"));
    // A QUIC listener hands over a connection once its first stream carries a byte: the
    // accept runs beside the connect, and one byte is sent and read before the runs.
    let accepting = tokio::spawn(async move { listener.accept().await });
    let mut writer = connector
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
        .stream;
    writer
        .write_all(&[1])
        .await
        .unwrap_or_else(|e| panic!("first byte: {e}"));
    writer
        .flush()
        .await
        .unwrap_or_else(|e| panic!("first byte: {e}"));
    let mut reader = accepting
        .await
        .unwrap_or_else(|e| panic!("accept task: {e}"))
        .unwrap_or_else(|e| panic!("accept: {e}"))
        .stream;
    let mut first = [0u8; 1];
    reader
        .read_exact(&mut first)
        .await
        .unwrap_or_else(|e| panic!("first byte: {e}"));
    let (count, received) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            total += n as u64;
            count.send_replace(total);
        }
    });
    Pipe {
        writer,
        received,
        sent: 0,
    }
}

fn bench_stream(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    let certificates =
        DevCertificates::load_or_create(dir.path()).unwrap_or_else(|e| panic!("certificates: {e}"));
    let cases = [
        ("TCP", TransportKind::Tcp, None),
        ("TLS", TransportKind::Tls, None),
        ("QUIC", TransportKind::Quic, None),
        (
            "QUIC, ceiling 6500",
            TransportKind::Quic,
            Some(LOOPBACK_MAX_UDP_PAYLOAD),
        ),
    ];
    let mut pipes: Vec<_> = cases
        .iter()
        .map(|(name, kind, ceiling)| {
            (
                *name,
                runtime.block_on(pipe(*kind, *ceiling, &certificates)),
            )
        })
        .collect();
    // Wall time first, then CPU time, each transport in turn within a group.
    for (group_name, cpu) in [
        ("one stream, wall time", false),
        ("one stream, CPU time", true),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Bytes(PER_ITERATION));
        for (name, pipe) in &mut pipes {
            group.bench_function(*name, |b| {
                b.iter_custom(|iterations| {
                    let (wall, used) = runtime.block_on(pipe.send(iterations * PER_ITERATION));
                    if cpu {
                        used
                    } else {
                        wall
                    }
                })
            });
        }
        group.finish();
    }
    drop(pipes);
    drop(runtime);
}

criterion_group!(benches, bench_stream);
criterion_main!(benches);
