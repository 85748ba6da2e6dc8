//! Fixtures of the MQTT-over-QUIC tests: a broker behind real listeners (QUIC, TCP, TLS,
//! WebSocket) on ephemeral loopback ports with development certificates in a temporary
//! directory, client connectors that trust them, and a small packet-level MQTT peer over any
//! byte stream (a QUIC control or data stream included), so tests see exactly which packet
//! arrives on which stream.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mquictt_broker::{AllowAll, Broker, BrokerConfig, MemoryStorage, QuicServing};
use mquictt_protocol::{
    ConnAck, Connect, Decoder, MqttString, Packet, PacketId, Properties, PropertySet,
    ProtocolVersion, Publish, QoS, SubAck, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use mquictt_transport::{
    ClientTlsSettings, ConnectOptions, Connected, Connector, DevCertificates, ListenUrl, Listener,
    ListenerOptions, QuicClientOptions, ServerTlsSettings, TransportKind, TransportUrl,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test waits before concluding that nothing is coming.
pub const QUIET: Duration = Duration::from_millis(400);

/// Threads of the QUIC listener's own: two, so that clients of one test land on different
/// threads and messages between them cross.
pub const QUIC_THREADS: usize = 2;

/// A broker listening on every transport the tests cross.
pub struct QuicBroker {
    pub broker: Broker,
    pub certs: DevCertificates,
    dir: tempfile::TempDir,
    urls: Vec<TransportUrl>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl QuicBroker {
    /// A broker with default settings and the default QUIC serving (0-RTT accepted with the
    /// idempotent replay policy).
    pub async fn start() -> Self {
        Self::with(BrokerConfig::default(), QuicServing::default()).await
    }

    pub async fn with(config: BrokerConfig, serving: QuicServing) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = DevCertificates::load_or_create(dir.path()).expect("dev certificates");
        let broker = Broker::new(config, Arc::new(MemoryStorage::new()), Arc::new(AllowAll))
            .expect("broker in a runtime");
        let tls = ServerTlsSettings::from_dev_certificates(&certs)
            .expect("server identity")
            .with_quic_zero_rtt(serving.early_data.accepts_zero_rtt());
        let mut urls = Vec::new();
        let mut tasks = Vec::new();
        for kind in [
            TransportKind::Quic,
            TransportKind::Tcp,
            TransportKind::Tls,
            TransportKind::Ws,
        ] {
            let mut url = ListenUrl::new(kind, "127.0.0.1:0".parse().expect("address"));
            if kind.is_websocket() {
                url.path = "/mqtt".to_owned();
            }
            let mut options = ListenerOptions::default();
            // As `mquictt broker` serves QUIC: on threads of the listener's own, each
            // connection on one of them.
            options.quic.threads = QUIC_THREADS;
            if let Some(idle) = serving.idle_timeout {
                options.quic.idle_timeout = idle;
            }
            let mut listener = Listener::bind_with_options(&url, &tls, options)
                .await
                .expect("bind loopback");
            urls.push(client_url(&listener));
            let broker = broker.clone();
            let serving = serving.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(accepted) = listener.accept().await {
                    drop(broker.spawn_accepted(accepted, None, &serving));
                }
            }));
        }
        QuicBroker {
            broker,
            certs,
            dir,
            urls,
            tasks,
        }
    }

    /// The URL of the listener of `kind`.
    pub fn url(&self, kind: TransportKind) -> TransportUrl {
        self.urls
            .iter()
            .find(|url| url.kind == kind)
            .cloned()
            .expect("a listener of every tested kind")
    }

    /// A connector trusting the broker's development CA.
    pub fn connector(&self) -> Connector {
        self.connector_with(QuicClientOptions::default())
    }

    /// A connector with QUIC options (0-RTT, keep alive).
    pub fn connector_with(&self, quic: QuicClientOptions) -> Connector {
        let tls = ClientTlsSettings::trusting_ca_file(&self.certs.ca_cert).expect("CA file");
        let options = ConnectOptions {
            quic,
            ..ConnectOptions::default()
        };
        Connector::with_options(&tls, options).expect("connector")
    }

    /// Connects over `kind` and returns the connection (for QUIC: its control stream).
    pub async fn open(&self, kind: TransportKind) -> Connected {
        self.connector()
            .connect(&self.url(kind))
            .await
            .expect("connect to the broker")
    }
}

impl Drop for QuicBroker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn client_url(listener: &Listener) -> TransportUrl {
    let url = listener.url();
    let path = if url.kind.is_websocket() {
        url.path.as_str()
    } else {
        ""
    };
    TransportUrl::parse(&format!(
        "{}://localhost:{}{}",
        url.kind.scheme(),
        listener.local_addr().port(),
        path
    ))
    .expect("client URL")
}

/// What a read brought.
#[derive(Debug, PartialEq)]
pub enum Received {
    Packet(Box<Packet>),
    /// End of stream, or the stream or connection was reset.
    Closed,
    /// Nothing within the time given.
    Quiet,
}

/// MQTT packets over one byte stream, exactly as the test sends and receives them.
pub struct PacketStream<S> {
    pub stream: S,
    buf: BytesMut,
    decoder: Decoder,
    pub version: ProtocolVersion,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    pub fn new(stream: S, version: ProtocolVersion) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::with_version(version, 16 * 1024 * 1024),
            version,
        }
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut bytes = BytesMut::new();
        packet.encode(self.version, &mut bytes).expect("encodable");
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// The next packet within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Received {
        let read = async {
            loop {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(packet)) => return Received::Packet(Box::new(packet)),
                    Ok(None) => {}
                    Err(e) => panic!("broker sent a malformed packet: {e}"),
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return Received::Closed,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or(Received::Quiet)
    }

    /// The next packet; fails the test if none comes.
    pub async fn recv(&mut self) -> Packet {
        match self.next_within(PATIENCE).await {
            Received::Packet(packet) => *packet,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// Asserts that nothing arrives for a while.
    pub async fn expect_quiet(&mut self) {
        let next = self.next_within(QUIET).await;
        assert_eq!(next, Received::Quiet, "expected nothing on this stream");
    }

    /// Asserts that the stream ends.
    pub async fn expect_closed(&mut self) {
        loop {
            match self.next_within(PATIENCE).await {
                Received::Closed => return,
                Received::Packet(_) => continue,
                Received::Quiet => panic!("the stream stayed open"),
            }
        }
    }

    /// Sends CONNECT and returns the CONNACK.
    pub async fn connect(&mut self, connect: Connect) -> ConnAck {
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Packet::ConnAck(connack) => connack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Subscribes `filter` at `qos` and returns the SUBACK.
    pub async fn subscribe(&mut self, id: u16, filter: &str, qos: QoS) -> SubAck {
        self.send(&subscribe(id, filter, qos)).await;
        match self.recv().await {
            Packet::SubAck(suback) => suback,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// The next PUBLISH; fails the test on anything else.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

/// A CONNECT: clean start, keep alive 60 s, session expiry `expiry` seconds in 5.0.
pub fn connect(
    version: ProtocolVersion,
    client_id: &str,
    clean_start: bool,
    expiry: u32,
) -> Connect {
    Connect {
        protocol: version,
        clean_start,
        keep_alive: 60,
        client_id: MqttString::new(client_id).expect("client id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::from(PropertySet {
            session_expiry_interval: (version == ProtocolVersion::V5 && expiry > 0)
                .then_some(expiry),
            ..PropertySet::default()
        }),
    }
}

pub fn subscribe(id: u16, filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        filters: vec![(
            TopicFilter::new(filter).expect("filter"),
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        )],
        properties: Properties::default(),
    })
}

pub fn publish(topic: &str, payload: impl Into<Bytes>, qos: QoS, id: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::new(topic).expect("topic"),
        packet_id: if qos == QoS::AtMostOnce {
            None
        } else {
            PacketId::new(id)
        },
        properties: Properties::default(),
        payload: payload.into(),
    })
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

/// Polls `condition` every 10 ms until it holds, failing the test after [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
