//! Fixtures of the security tests: a broker served over TCP and QUIC (and optionally TLS with
//! client certificates) through the real transport listeners on ephemeral loopback ports, a
//! raw MQTT client over any byte stream, and polling functions. Built like the binary builds
//! its listeners, so what these tests prove holds for `mquictt broker`.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mquictt_broker::auth::{certificate_username, CertificateField};
use mquictt_broker::{AllowAll, Authenticator, Broker, BrokerConfig, MemoryStorage, PeerInfo};
use mquictt_protocol::codec::{decode, MAX_PACKET_SIZE};
use mquictt_protocol::{
    Connect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubAck, Publish, QoS,
    ReasonCode, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use mquictt_transport::{
    BoxStream, CertificateAuthority, ClientAuth, ClientTlsSettings, Connected, Connector,
    IssuedCertificate, ListenUrl, Listener, ListenerOptions, ServerTlsSettings, TransportUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// A broker with a TCP, a QUIC and a TLS listener.
pub struct SecureBroker {
    pub broker: Broker,
    pub tcp: SocketAddr,
    pub quic: SocketAddr,
    pub tls: SocketAddr,
    pub authority: CertificateAuthority,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Listener options for tests: the given handshake timeout, room for many handshakes.
pub fn listener_options(handshake_timeout: Duration) -> ListenerOptions {
    ListenerOptions {
        handshake_timeout,
        max_pending_handshakes: 4096,
        ..ListenerOptions::default()
    }
}

impl SecureBroker {
    pub async fn start(config: BrokerConfig) -> Self {
        Self::with_auth(config, Arc::new(AllowAll)).await
    }

    pub async fn with_auth(config: BrokerConfig, authenticator: Arc<dyn Authenticator>) -> Self {
        let handshake_timeout = config.connect_timeout;
        let broker = Broker::new(config, Arc::new(MemoryStorage::new()), authenticator)
            .expect("broker starts inside the test runtime");
        let authority = CertificateAuthority::generate().expect("test CA");
        let server = authority
            .issue_server(&["localhost", "127.0.0.1"])
            .expect("server certificate");
        let tls = ServerTlsSettings::new(server.identity())
            .with_client_auth(ClientAuth::Optional(vec![authority.cert_der().clone()]));
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for url in [
            "tcp://127.0.0.1:0",
            "quic://127.0.0.1:0",
            "tls://127.0.0.1:0",
        ] {
            let listener = Listener::bind_with_options(
                &ListenUrl::parse(url).expect("listen url"),
                &tls,
                listener_options(handshake_timeout),
            )
            .await
            .expect("bind loopback");
            addrs.push(listener.local_addr());
            tasks.push(tokio::spawn(accept_loop(listener, broker.clone())));
        }
        Self {
            broker,
            tcp: addrs[0],
            quic: addrs[1],
            tls: addrs[2],
            authority,
            tasks,
        }
    }

    /// A connector trusting this broker's CA, presenting `identity` if given.
    pub fn connector(&self, identity: Option<&IssuedCertificate>) -> Connector {
        let mut settings = ClientTlsSettings::trusting(vec![self.authority.cert_der().clone()]);
        if let Some(identity) = identity {
            settings = settings.with_identity(identity.identity());
        }
        Connector::new(&settings).expect("connector")
    }

    pub fn quic_url(&self) -> TransportUrl {
        TransportUrl::parse(&format!("quic://127.0.0.1:{}", self.quic.port())).expect("quic url")
    }

    pub fn tls_url(&self) -> TransportUrl {
        TransportUrl::parse(&format!("tls://127.0.0.1:{}", self.tls.port())).expect("tls url")
    }
}

/// Serves accepted connections as the binary does, with certificate Common Names as user
/// names.
async fn accept_loop(mut listener: Listener, broker: Broker) {
    while let Ok(accepted) = listener.accept().await {
        let certificate_username = accepted
            .peer
            .client_cert_der
            .as_ref()
            .and_then(|der| certificate_username(der, CertificateField::CommonName));
        let peer = PeerInfo {
            remote_addr: Some(accepted.peer.remote),
            transport: accepted.peer.transport.scheme(),
            certificate_username,
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            let _quic = accepted.quic;
            broker.serve_connection(accepted.stream, peer).await;
        });
    }
}

/// A raw MQTT client over any byte stream.
pub struct Peer {
    pub stream: BoxStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
    /// Keeps a QUIC connection open while its stream is used.
    _quic: Option<mquictt_transport::QuicClientConnection>,
}

impl Peer {
    pub async fn tcp(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        Self::over(Box::new(stream), version)
    }

    pub fn over(stream: BoxStream, version: ProtocolVersion) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            version,
            _quic: None,
        }
    }

    pub async fn quic(broker: &SecureBroker, version: ProtocolVersion) -> Self {
        let connected = broker
            .connector(None)
            .connect(&broker.quic_url())
            .await
            .expect("QUIC connect");
        Self::from_connected(connected, version)
    }

    pub fn from_connected(connected: Connected, version: ProtocolVersion) -> Self {
        Self {
            stream: connected.stream,
            buf: BytesMut::new(),
            version,
            _quic: connected.quic,
        }
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .expect("test packet encodes");
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the connection; tests check that separately.
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// The next packet within `limit`; `None` when the broker closed or sent nothing.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match decode(&mut self.buf, self.version, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(e) => panic!("broker sent a malformed packet: {e}"),
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(Duration::from_secs(5)).await
    }

    /// Reads until the broker closes the connection (within 5 s); returns what it sent.
    pub async fn until_closed(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(packet) = self.recv().await {
            packets.push(packet);
        }
        packets
    }

    /// Whether the broker closed the connection within `limit` (bytes sent before are
    /// ignored).
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut scratch = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    pub async fn connect_with(&mut self, connect: Connect) -> mquictt_protocol::ConnAck {
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with a plain CONNECT and checks that it is accepted.
    pub async fn connect(&mut self, client_id: &str) {
        let ack = self
            .connect_with(connect_packet(self.version, client_id))
            .await;
        assert_eq!(ack.reason_code, ReasonCode::Success, "{ack:?}");
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS, id: u16) -> ReasonCode {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(id),
            filters: vec![(
                TopicFilter::new(filter).expect("test filter"),
                SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            )],
            properties: Properties::default(),
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(ack)) => ack.reason_codes.first().copied().expect("one code"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes at QoS 1 and returns the PUBACK reason code.
    pub async fn publish_qos1(&mut self, topic: &str, payload: &[u8], id: u16) -> ReasonCode {
        self.send(&Packet::Publish(publish(
            topic,
            payload,
            QoS::AtLeastOnce,
            id,
        )))
        .await;
        match self.recv().await {
            Some(Packet::PubAck(ack)) => {
                assert_eq!(ack.packet_id, pid(id));
                ack.reason_code
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// The next PUBLISH, acknowledged if QoS 1.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    self.send(&Packet::PubAck(PubAck::success(id))).await;
                }
                p
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: MqttString::new(client_id).expect("test client id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub fn publish(topic: &str, payload: &[u8], qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::new(topic).expect("test topic"),
        packet_id: if qos == QoS::AtMostOnce {
            None
        } else {
            PacketId::new(id)
        },
        properties: Properties::default(),
        payload: bytes::Bytes::copy_from_slice(payload),
    }
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero test packet id")
}

/// Polls `condition` every 20 ms until it holds, failing after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A counter or gauge of the broker.
pub fn metric(
    broker: &Broker,
    pick: fn(&mquictt_broker::Metrics) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    mquictt_broker::Metrics::get(pick(broker.metrics()))
}
