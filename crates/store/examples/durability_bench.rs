//! What durability costs: QoS 1 throughput and publish latency of the broker with durable
//! storage, the broker in memory, and Mosquitto (in memory, its default), side by side in one
//! run on loopback. Each broker runs in its own process. Publishers keep a window of QoS 1
//! messages in flight (PUBLISH to PUBACK is the latency measured); one subscriber with a
//! persistent session (so every message is stored for it before the PUBACK) receives and
//! acknowledges everything. Delivered msgs/s is counted from the first PUBLISH to the last
//! delivery.
//!
//! `cargo run --release -p mquictt-store --example durability_bench [messages per publisher]
//! [window] [rounds] [online|offline]`: each round runs the three brokers once, in turn; the
//! table shows every round and the median. `offline` keeps the subscriber away while the
//! publishers run, so every PUBACK waits for its message to be stored (no receiver can
//! acknowledge it first); the rate is then messages acknowledged per second, and the
//! subscriber drains its queue afterwards to check that nothing is missing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mquictt_broker::{AllowAll, Broker, BrokerConfig, NoStorage, Storage};
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::{
    Connect, MqttString, Packet, PacketId, Properties, PropertySet, ProtocolVersion, PubAck,
    Publish, QoS, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use mquictt_store::{DurableStorage, OnCorrupt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

const PUBLISHERS: usize = 4;
const PAYLOAD: usize = 64;
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve(args.get(2).map(String::as_str), args.get(3));
    }
    let per_publisher: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let window: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let offline = args.get(4).map(String::as_str) == Some("offline");
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "{PUBLISHERS} publishers x {per_publisher} QoS 1 messages of {PAYLOAD} bytes, window \
         {window} each; 1 persistent subscriber, {}; {rounds} rounds",
        if offline {
            "offline while publishing (acknowledged/s)"
        } else {
            "online (delivered/s)"
        }
    );
    println!(
        "{:<22} {:>14} {:>14} {:>14}",
        "broker", "delivered/s", "PUBACK p50", "PUBACK p99"
    );
    let exe = std::env::current_exe()?;
    let names = ["mquictt durable", "mquictt memory", "mosquitto (memory)"];
    let mut results: Vec<Vec<LoadResult>> = names.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        let dir = tempfile::tempdir()?;
        for (n, name) in names.iter().enumerate() {
            let mut child = match n {
                0 => spawn_self(&exe, "durable", &dir.path().join("durable"))?,
                1 => spawn_self(&exe, "memory", &dir.path().join("memory"))?,
                _ => spawn_mosquitto(dir.path())?,
            };
            let result = runtime.block_on(run_load(child.addr, per_publisher, window, offline));
            let _ = child.process.kill();
            let _ = child.process.wait();
            let result = result?;
            print_row(name, &result);
            if let Some(r) = results.get_mut(n) {
                r.push(result);
            }
        }
    }
    println!("median of {rounds} rounds:");
    for (name, mut rounds) in names.iter().zip(results) {
        rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        if let Some(median) = rounds.get(rounds.len() / 2) {
            print_row(name, median);
        }
    }
    Ok(())
}

fn print_row(name: &str, result: &LoadResult) {
    println!(
        "{name:<22} {:>14.0} {:>11.2} ms {:>11.2} ms",
        result.rate,
        result.p50.as_secs_f64() * 1e3,
        result.p99.as_secs_f64() * 1e3
    );
}

struct Spawned {
    process: Child,
    addr: SocketAddr,
}

fn spawn_self(exe: &std::path::Path, mode: &str, dir: &std::path::Path) -> Result<Spawned, Error> {
    let mut process = Command::new(exe)
        .args(["serve", mode])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let stdout = process.stdout.take().ok_or("no stdout")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let addr = line.trim().parse()?;
    Ok(Spawned { process, addr })
}

fn spawn_mosquitto(dir: &std::path::Path) -> Result<Spawned, Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.join("mosquitto.conf");
    // Queues as large as ours, so neither broker drops what the subscriber has not taken yet.
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n\
             max_inflight_messages 64\npersistence false\n"
        ),
    )?;
    let process = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(Spawned { process, addr });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("mosquitto did not start".into())
}

/// The child process: one broker on an ephemeral port, until killed.
fn serve(mode: Option<&str>, dir: Option<&String>) -> Result<(), Error> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let storage: Arc<dyn Storage> = match (mode, dir) {
            (Some("durable"), Some(dir)) => {
                Arc::new(DurableStorage::open(std::path::Path::new(dir), OnCorrupt::Refuse)?.0)
            }
            _ => Arc::new(NoStorage),
        };
        // Like Mosquitto's defaults: no per-connection publish rate limit, and queues that
        // hold the whole run.
        let config = BrokerConfig {
            max_queued_messages: 100_000,
            max_queued_bytes: 64 * 1024 * 1024,
            publish_rate: None,
            sys_interval: None,
            ..BrokerConfig::default()
        };
        let broker = Broker::new(config, storage, Arc::new(AllowAll))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        broker
            .serve_tcp(listener, std::future::pending::<()>())
            .await?;
        Ok(())
    })
}

struct LoadResult {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn connect_packet(client_id: &str, clean_start: bool) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start,
        keep_alive: 60,
        client_id: MqttString::new(client_id).unwrap_or_default(),
        will: None,
        username: None,
        password: None,
        properties: Properties::from(PropertySet {
            session_expiry_interval: (!clean_start).then_some(3600),
            receive_maximum: Some(64),
            ..PropertySet::default()
        }),
    }))
}

async fn send(stream: &mut (impl AsyncWriteExt + Unpin), packet: &Packet) -> Result<(), Error> {
    let mut out = BytesMut::new();
    packet.encode(ProtocolVersion::V5, &mut out)?;
    stream.write_all(&out).await?;
    Ok(())
}

async fn recv(reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Packet, Error> {
    loop {
        if let Some(packet) = mquictt_protocol::decode(buf, ProtocolVersion::V5, MAX_PACKET_SIZE)? {
            return Ok(packet);
        }
        if reader.read_buf(buf).await? == 0 {
            return Err("connection closed".into());
        }
    }
}

async fn connect(addr: SocketAddr, client_id: &str, clean: bool) -> Result<TcpStream, Error> {
    Ok(connect_keeping_input(addr, client_id, clean).await?.0)
}

/// Connects and returns, with the stream, whatever arrived after the CONNACK (a resumed
/// session's queue starts flowing at once).
async fn connect_keeping_input(
    addr: SocketAddr,
    client_id: &str,
    clean: bool,
) -> Result<(TcpStream, BytesMut), Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    send(&mut stream, &connect_packet(client_id, clean)).await?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(packet) =
            mquictt_protocol::decode(&mut buf, ProtocolVersion::V5, MAX_PACKET_SIZE)?
        {
            return match packet {
                Packet::ConnAck(ack) if !ack.reason_code.is_error() => Ok((stream, buf)),
                other => Err(format!("CONNECT refused: {other:?}").into()),
            };
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("closed before CONNACK".into());
        }
    }
}

fn id(n: usize) -> PacketId {
    PacketId::new((n % 65_535 + 1) as u16).unwrap_or(PacketId::new(1).expect("1 is non-zero"))
}

async fn run_load(
    addr: SocketAddr,
    per_publisher: usize,
    window: usize,
    offline: bool,
) -> Result<LoadResult, Error> {
    let total = PUBLISHERS * per_publisher;
    // The subscriber's persistent session: subscribed, then connected for the run.
    let sub = connect(addr, "bench-sub", false).await?;
    let (mut sub_read, mut sub_write) = sub.into_split();
    send(
        &mut sub_write,
        &Packet::Subscribe(Subscribe {
            packet_id: id(0),
            filters: vec![(
                TopicFilter::new("bench/#")?,
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            )],
            properties: Properties::default(),
        }),
    )
    .await?;
    let mut sub_buf = BytesMut::new();
    loop {
        if let Packet::SubAck(_) = recv(&mut sub_read, &mut sub_buf).await? {
            break;
        }
    }
    if offline {
        send(
            &mut sub_write,
            &Packet::Disconnect(mquictt_protocol::Disconnect::new(
                mquictt_protocol::ReasonCode::Success,
            )),
        )
        .await?;
        drop((sub_read, sub_write));
        return run_offline(addr, per_publisher, window).await;
    }
    let subscriber = tokio::spawn(async move {
        let mut received = 0;
        while received < total {
            match recv(&mut sub_read, &mut sub_buf).await? {
                Packet::Publish(p) => {
                    received += 1;
                    if let Some(id) = p.packet_id {
                        send(&mut sub_write, &Packet::PubAck(PubAck::success(id))).await?;
                    }
                }
                _ => continue,
            }
        }
        Ok::<Instant, Error>(Instant::now())
    });
    let started = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let stream = connect(addr, &format!("bench-pub-{p}"), true).await?;
        publishers.push(tokio::spawn(publish_all(stream, p, per_publisher, window)));
    }
    let mut latencies = Vec::with_capacity(total);
    for publisher in publishers {
        latencies.extend(publisher.await??);
    }
    let finished = tokio::time::timeout(Duration::from_secs(120), subscriber).await???;
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(LoadResult {
        rate: total as f64 / (finished - started).as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    })
}

/// Publishers run while the subscriber is away; the rate counts acknowledged messages. The
/// subscriber then takes its queue, which must hold every acknowledged message.
async fn run_offline(
    addr: SocketAddr,
    per_publisher: usize,
    window: usize,
) -> Result<LoadResult, Error> {
    let total = PUBLISHERS * per_publisher;
    let started = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let stream = connect(addr, &format!("bench-pub-{p}"), true).await?;
        publishers.push(tokio::spawn(publish_all(stream, p, per_publisher, window)));
    }
    let mut latencies = Vec::with_capacity(total);
    for publisher in publishers {
        latencies.extend(publisher.await??);
    }
    let elapsed = started.elapsed();
    let (stream, mut buf) = connect_keeping_input(addr, "bench-sub", false).await?;
    let (mut read, mut write) = stream.into_split();
    let mut received = 0;
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while received < total {
            if let Packet::Publish(p) = recv(&mut read, &mut buf).await? {
                received += 1;
                if let Some(id) = p.packet_id {
                    send(&mut write, &Packet::PubAck(PubAck::success(id))).await?;
                }
            }
        }
        Ok::<(), Error>(())
    })
    .await;
    if !matches!(drained, Ok(Ok(()))) {
        return Err(format!("the subscriber got {received} of {total} messages").into());
    }
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(LoadResult {
        rate: total as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    })
}

async fn publish_all(
    stream: TcpStream,
    p: usize,
    count: usize,
    window: usize,
) -> Result<Vec<Duration>, Error> {
    let (mut read, mut write) = stream.into_split();
    let topic = TopicName::new(format!("bench/{p}"))?;
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let mut in_flight: HashMap<PacketId, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    let mut buf = BytesMut::new();
    let mut next = 0;
    while latencies.len() < count {
        let mut out = BytesMut::new();
        while in_flight.len() < window && next < count {
            let packet_id = id(next);
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: topic.clone(),
                packet_id: Some(packet_id),
                properties: Properties::default(),
                payload: payload.clone(),
            })
            .encode(ProtocolVersion::V5, &mut out)?;
            in_flight.insert(packet_id, Instant::now());
            next += 1;
        }
        if !out.is_empty() {
            write.write_all(&out).await?;
        }
        if let Packet::PubAck(ack) = recv(&mut read, &mut buf).await? {
            if let Some(sent) = in_flight.remove(&ack.packet_id) {
                latencies.push(sent.elapsed());
            }
        }
    }
    Ok(latencies)
}
