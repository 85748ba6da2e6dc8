//! Crash tests of the real `mquictt` binary with its default durable storage: the broker is
//! killed with SIGKILL while publishers send numbered QoS 1 and QoS 2 messages to persistent
//! subscribers (one online throughout, one offline until the end) and restarted on the same
//! data directory; every message that got its PUBACK or PUBREC must arrive, QoS 2 exactly
//! once, QoS 1 at least once, in order per publisher. Also: retained messages and sessions
//! survive a clean restart and a SIGKILL.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::{
    Connect, Disconnect, MqttString, Packet, PacketId, Properties, PropertySet, ProtocolVersion,
    PubAck, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Queues must hold everything the offline subscriber misses during the test.
const CONFIG: &str = "[limits]\nmax_queued_messages = 100000\n[sys]\ninterval = \"0s\"\n";

/// The broker as a child process on a fixed data directory.
struct Broker {
    child: Child,
    addr: SocketAddr,
}

impl Broker {
    fn start(data_dir: &Path) -> Self {
        let config = data_dir.join("test.toml");
        std::fs::write(&config, CONFIG).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mquictt"))
            .arg("broker")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "tcp://127.0.0.1:0", "--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the mquictt binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("broker printed its listener")
                .expect("stdout line");
            // "listening on tcp://127.0.0.1:0 (127.0.0.1:40123)"
            if let Some(rest) = line.strip_prefix("listening on ") {
                let (_, addr) = rest.split_once(" (").expect("url and address");
                break addr.trim_end_matches(')').parse().expect("socket address");
            }
        };
        // Keep reading so the broker never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Self { child, addr }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the broker");
        self.child.wait().expect("reap the broker");
    }

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        self.child.wait().expect("broker exits");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One MQTT connection spoken through the protocol crate's codec.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Conn {
    /// Connects with a persistent session; `None` while the broker is down.
    async fn open(
        addr: SocketAddr,
        version: ProtocolVersion,
        client_id: &str,
        clean_start: bool,
    ) -> Option<(Self, bool)> {
        let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
        stream.set_nodelay(true).ok()?;
        let mut conn = Self {
            stream,
            buf: BytesMut::new(),
            version,
        };
        let properties = Properties::from(PropertySet {
            session_expiry_interval: version.is_v5().then_some(3600),
            ..PropertySet::default()
        });
        conn.send(Packet::Connect(Box::new(Connect {
            protocol: version,
            clean_start,
            keep_alive: 30,
            client_id: MqttString::new(client_id).expect("client id"),
            will: None,
            username: None,
            password: None,
            properties,
        })))
        .await
        .ok()?;
        match conn.recv(Duration::from_secs(5)).await {
            Ok(Some(Packet::ConnAck(ack))) if ack.reason_code == ReasonCode::Success => {
                Some((conn, ack.session_present))
            }
            _ => None,
        }
    }

    async fn send(&mut self, packet: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .map_err(std::io::Error::other)?;
        self.stream.write_all(&out).await
    }

    /// The next packet; `Ok(None)` when nothing came within `limit`, `Err` when the
    /// connection is gone.
    async fn recv(&mut self, limit: Duration) -> std::io::Result<Option<Packet>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match mquictt_protocol::decode(&mut self.buf, self.version, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => return Ok(Some(packet)),
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Where the broker currently listens; changes at every restart.
type Address = Arc<Mutex<SocketAddr>>;

async fn reconnect(address: &Address, version: ProtocolVersion, client_id: &str) -> (Conn, bool) {
    let started = Instant::now();
    loop {
        let addr = *address.lock().expect("address");
        if let Some(pair) = Conn::open(addr, version, client_id, false).await {
            return pair;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{client_id} could not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn packet_id(seq: u64) -> PacketId {
    // Sequence numbers cycle through every identifier; one message is in flight at a time.
    PacketId::new((seq % 65_535 + 1) as u16).expect("non-zero")
}

/// Publishes numbered messages one at a time until `stop`, riding out broker crashes by
/// reconnecting to its session and resuming the exchange. Returns the highest sequence number
/// that got PUBACK (QoS 1) or PUBREC (QoS 2).
async fn publisher(
    name: &'static str,
    version: ProtocolVersion,
    qos: QoS,
    address: Address,
    stop: Arc<AtomicBool>,
) -> u64 {
    let topic = TopicName::new(format!("crash/{name}")).expect("topic");
    let (mut conn, _) = reconnect(&address, version, name).await;
    let mut acked = 0;
    let mut seq = 1;
    while !stop.load(Ordering::SeqCst) {
        let id = packet_id(seq);
        let mut received = false;
        let mut dup = false;
        loop {
            let packet = if received {
                Packet::PubRel(PubAck::success(id))
            } else {
                Packet::Publish(Publish {
                    dup,
                    qos,
                    retain: false,
                    topic: topic.clone(),
                    packet_id: Some(id),
                    properties: Properties::default(),
                    payload: Bytes::from(format!("{name}:{seq}")),
                })
            };
            let answer = match conn.send(packet).await {
                Ok(()) => conn.recv(Duration::from_secs(5)).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(Packet::PubAck(ack))) if !ack.reason_code.is_error() => {
                    acked = seq;
                    break;
                }
                Ok(Some(Packet::PubRec(ack))) if !ack.reason_code.is_error() => {
                    acked = seq;
                    received = true;
                }
                Ok(Some(Packet::PubComp(_))) if received => break,
                Ok(Some(Packet::PubAck(_) | Packet::PubRec(_))) => {
                    // Refused (not stored): the message is still ours to send again.
                    dup = false;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => {
                    (conn, _) = reconnect(&address, version, name).await;
                    dup = true;
                }
            }
        }
        seq += 1;
    }
    let _ = conn
        .send(Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
        .await;
    acked
}

/// What one subscriber received: payloads in arrival order, QoS 2 deduplicated the way a
/// receiver must (an identifier awaiting PUBREL is not delivered again [MQTT-4.3.3-10]).
#[derive(Debug, Default)]
struct Received {
    messages: Vec<String>,
}

async fn subscribe_persistent(address: &Address, client_id: &str) {
    let (mut conn, _) = reconnect(address, ProtocolVersion::V5, client_id).await;
    conn.send(Packet::Subscribe(Subscribe {
        packet_id: packet_id(0),
        filters: vec![(
            TopicFilter::new("crash/#").expect("filter"),
            SubscriptionOptions::with_qos(QoS::ExactlyOnce),
        )],
        properties: Properties::default(),
    }))
    .await
    .expect("SUBSCRIBE");
    match conn.recv(Duration::from_secs(5)).await {
        Ok(Some(Packet::SubAck(_))) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
    conn.send(Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
        .await
        .expect("DISCONNECT");
}

/// Receives until `done` says every acknowledged message has arrived (or 20 s pass once
/// `draining` is set), reconnecting to its session after every crash.
async fn subscriber(
    client_id: &'static str,
    address: Address,
    draining: Arc<AtomicBool>,
    done: impl Fn(&Received) -> bool,
) -> Received {
    let mut received = Received::default();
    let mut awaiting_release: HashSet<PacketId> = HashSet::new();
    let (mut conn, present) = reconnect(&address, ProtocolVersion::V5, client_id).await;
    assert!(present, "{client_id}: session present after connect");
    let mut drain_started: Option<Instant> = None;
    loop {
        if draining.load(Ordering::SeqCst) {
            let started = *drain_started.get_or_insert_with(Instant::now);
            if done(&received) || started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        let packet = match conn.recv(Duration::from_millis(200)).await {
            Ok(Some(packet)) => packet,
            Ok(None) => continue,
            Err(_) => {
                let (c, present) = reconnect(&address, ProtocolVersion::V5, client_id).await;
                assert!(present, "{client_id}: the session survived the crash");
                conn = c;
                continue;
            }
        };
        let reply = match packet {
            Packet::Publish(publish) => {
                let text = String::from_utf8_lossy(&publish.payload).into_owned();
                match (publish.qos, publish.packet_id) {
                    (QoS::ExactlyOnce, Some(id)) => {
                        if awaiting_release.insert(id) {
                            received.messages.push(text);
                        }
                        Some(Packet::PubRec(PubAck::success(id)))
                    }
                    (QoS::AtLeastOnce, Some(id)) => {
                        received.messages.push(text);
                        Some(Packet::PubAck(PubAck::success(id)))
                    }
                    _ => {
                        received.messages.push(text);
                        None
                    }
                }
            }
            Packet::PubRel(release) => {
                awaiting_release.remove(&release.packet_id);
                Some(Packet::PubComp(PubAck::success(release.packet_id)))
            }
            _ => None,
        };
        if let Some(reply) = reply {
            let _ = conn.send(reply).await;
        }
    }
    let _ = conn
        .send(Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
        .await;
    received
}

/// Sequence numbers received from `publisher`, in arrival order.
fn sequence(received: &Received, publisher: &str) -> Vec<u64> {
    received
        .messages
        .iter()
        .filter_map(|m| m.split_once(':'))
        .filter(|(p, _)| *p == publisher)
        .filter_map(|(_, n)| n.parse().ok())
        .collect()
}

/// Checks one subscriber's messages from one publisher against what was acknowledged and
/// returns (delivered, duplicates).
fn verify(
    subscriber: &str,
    received: &Received,
    publisher: &str,
    qos: QoS,
    acked: u64,
) -> (usize, usize) {
    let seqs = sequence(received, publisher);
    let mut seen = HashSet::new();
    let mut firsts = Vec::new();
    for &s in &seqs {
        if seen.insert(s) {
            firsts.push(s);
        }
    }
    let duplicates = seqs.len() - firsts.len();
    for n in 1..=acked {
        assert!(
            seen.contains(&n),
            "{subscriber}: {publisher} message {n} was acknowledged but never delivered"
        );
    }
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "{subscriber}: {publisher} messages out of order: {firsts:?}"
    );
    if qos == QoS::ExactlyOnce {
        assert_eq!(
            duplicates, 0,
            "{subscriber}: QoS 2 messages of {publisher} delivered more than once"
        );
    }
    (firsts.len(), duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_repeated_sigkill() {
    const KILLS: usize = 4;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut broker = Broker::start(data_dir.path());
    let address: Address = Arc::new(Mutex::new(broker.addr));

    subscribe_persistent(&address, "online").await;
    subscribe_persistent(&address, "offline").await;

    let stop = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));
    let publishers: [(&'static str, ProtocolVersion, QoS); 3] = [
        ("q1-v5", ProtocolVersion::V5, QoS::AtLeastOnce),
        ("q2-v5", ProtocolVersion::V5, QoS::ExactlyOnce),
        ("q1-v311", ProtocolVersion::V3_1_1, QoS::AtLeastOnce),
    ];
    let acked_so_far: Arc<Mutex<HashMap<&'static str, u64>>> = Arc::default();
    let online = {
        let (address, draining, acked) = (address.clone(), draining.clone(), acked_so_far.clone());
        tokio::spawn(subscriber("online", address, draining, move |r| {
            let acked = acked.lock().expect("acked");
            acked.iter().all(|(p, &n)| {
                let got: HashSet<u64> = sequence(r, p).into_iter().collect();
                (1..=n).all(|s| got.contains(&s))
            })
        }))
    };
    let tasks: Vec<_> = publishers
        .iter()
        .map(|&(name, version, qos)| {
            tokio::spawn(publisher(name, version, qos, address.clone(), stop.clone()))
        })
        .collect();

    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        broker.kill();
        broker = Broker::start(data_dir.path());
        *address.lock().expect("address") = broker.addr;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = HashMap::new();
    for (task, &(name, _, _)) in tasks.into_iter().zip(&publishers) {
        acked.insert(name, task.await.expect("publisher"));
    }
    *acked_so_far.lock().expect("acked") = acked.clone();
    draining.store(true, Ordering::SeqCst);
    let online = online.await.expect("online subscriber");

    // The offline subscriber comes back only now and drains its queue.
    let offline = subscriber(
        "offline",
        address.clone(),
        Arc::new(AtomicBool::new(true)),
        {
            let acked = acked.clone();
            move |r| {
                acked.iter().all(|(p, &n)| {
                    let got: HashSet<u64> = sequence(r, p).into_iter().collect();
                    (1..=n).all(|s| got.contains(&s))
                })
            }
        },
    )
    .await;

    println!("crash test: {KILLS} SIGKILLs of the broker");
    for &(name, _, qos) in &publishers {
        let n = acked[name];
        assert!(n > 0, "{name} got no message acknowledged");
        let (on_delivered, on_dup) = verify("online", &online, name, qos, n);
        let (off_delivered, off_dup) = verify("offline", &offline, name, qos, n);
        println!(
            "  {name} (QoS {}): acknowledged {n}; online subscriber got {on_delivered} \
             ({on_dup} duplicates); offline subscriber got {off_delivered} ({off_dup} duplicates)",
            qos as u8
        );
    }
    broker.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_and_sessions_survive_restart_and_sigkill() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data_dir.path());
    let address: Address = Arc::new(Mutex::new(broker.addr));
    subscribe_persistent(&address, "keeper").await;
    let (mut conn, _) = reconnect(&address, ProtocolVersion::V5, "retainer").await;
    for (n, topic) in ["status/a", "status/b"].iter().enumerate() {
        let id = packet_id(n as u64);
        conn.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: TopicName::new(*topic).expect("topic"),
            packet_id: Some(id),
            properties: Properties::default(),
            payload: Bytes::from_static(b"on"),
        }))
        .await
        .expect("PUBLISH");
        match conn.recv(Duration::from_secs(5)).await {
            Ok(Some(Packet::PubAck(_))) => {}
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    drop(conn);

    // A clean restart, then SIGKILL: both keep the retained messages and the session.
    broker.terminate();
    let broker = Broker::start(data_dir.path());
    *address.lock().expect("address") = broker.addr;
    broker.kill();
    let broker = Broker::start(data_dir.path());
    *address.lock().expect("address") = broker.addr;

    let (_, present) = reconnect(&address, ProtocolVersion::V5, "keeper").await;
    assert!(present, "the persistent session survived");
    let addr = broker.addr;
    let (mut fresh, present) = Conn::open(addr, ProtocolVersion::V5, "fresh", true)
        .await
        .expect("connect");
    assert!(!present);
    fresh
        .send(Packet::Subscribe(Subscribe {
            packet_id: packet_id(1),
            filters: vec![(
                TopicFilter::new("status/#").expect("filter"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            )],
            properties: Properties::default(),
        }))
        .await
        .expect("SUBSCRIBE");
    let mut topics = HashSet::new();
    while let Ok(Some(packet)) = fresh.recv(Duration::from_secs(2)).await {
        if let Packet::Publish(publish) = packet {
            assert!(
                publish.retain,
                "sent because of the subscription: RETAIN set"
            );
            topics.insert(publish.topic.as_str().to_owned());
        }
        if topics.len() == 2 {
            break;
        }
    }
    assert_eq!(
        topics,
        HashSet::from(["status/a".to_owned(), "status/b".to_owned()])
    );
    broker.terminate();
}

/// Subscribes `client_id` to `crash/#` and leaves, its session expiring `expiry` seconds
/// later (DISCONNECT may change a non-zero expiry, 3.14.2.2.2); returns once the broker
/// has closed the connection, so the session is offline.
async fn subscribe_then_leave(address: &Address, client_id: &str, expiry: u32) {
    let (mut conn, _) = reconnect(address, ProtocolVersion::V5, client_id).await;
    conn.send(Packet::Subscribe(Subscribe {
        packet_id: packet_id(0),
        filters: vec![(
            TopicFilter::new("crash/#").expect("filter"),
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        )],
        properties: Properties::default(),
    }))
    .await
    .expect("SUBSCRIBE");
    match conn.recv(Duration::from_secs(5)).await {
        Ok(Some(Packet::SubAck(_))) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
    let mut disconnect = Disconnect::new(ReasonCode::Success);
    disconnect.properties = Properties::from(PropertySet {
        session_expiry_interval: Some(expiry),
        ..PropertySet::default()
    });
    conn.send(Packet::Disconnect(disconnect))
        .await
        .expect("DISCONNECT");
    while let Ok(Some(_)) = conn.recv(Duration::from_secs(5)).await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_keeps_counting_while_the_broker_is_down() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data_dir.path());
    let address: Address = Arc::new(Mutex::new(broker.addr));
    subscribe_then_leave(&address, "short", 2).await;
    subscribe_then_leave(&address, "long", 3600).await;
    let (mut publisher, _) = reconnect(&address, ProtocolVersion::V5, "expiry-pub").await;
    publisher
        .send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("crash/expiry").expect("topic"),
            packet_id: Some(packet_id(1)),
            properties: Properties::default(),
            payload: Bytes::from_static(b"queued"),
        }))
        .await
        .expect("PUBLISH");
    match publisher.recv(Duration::from_secs(5)).await {
        // Committed after both sessions went offline: their deadlines are on disk.
        Ok(Some(Packet::PubAck(ack))) => assert_eq!(ack.reason_code, ReasonCode::Success),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    drop(publisher);

    // Down for longer than "short"'s expiry; SIGKILL, so nothing is written at shutdown.
    broker.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let broker = Broker::start(data_dir.path());
    *address.lock().expect("address") = broker.addr;

    let (mut short, present) = reconnect(&address, ProtocolVersion::V5, "short").await;
    assert!(
        !present,
        "the session expired while the broker was down and was purged at start"
    );
    match short.recv(Duration::from_secs(1)).await {
        Ok(None) => {}
        other => panic!("the expired session's queue went with it, got {other:?}"),
    }
    let (mut long, present) = reconnect(&address, ProtocolVersion::V5, "long").await;
    assert!(present, "a session within its expiry survives");
    match long.recv(Duration::from_secs(5)).await {
        Ok(Some(Packet::Publish(p))) => assert_eq!(&p.payload[..], b"queued"),
        other => panic!("expected the queued PUBLISH, got {other:?}"),
    }
    broker.terminate();
}
