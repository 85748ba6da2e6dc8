//! What to run and where: [`Target`] (the broker's URL, TLS trust, MQTT version, keep alive,
//! local source addresses) and [`LoadSpec`] (the [`Scenario`], client count, topic pattern with
//! `%i`, QoS, payload size, per-client rate, duration, connect rate). Owns the rules that turn a
//! scenario into publisher and subscriber counts, topics and expected deliveries; no IO.

use std::net::IpAddr;
use std::time::Duration;

use mquictt_protocol::{ProtocolVersion, QoS, TopicFilter, TopicName};
use mquictt_transport::{
    ClientTlsSettings, ConnectOptions, Connector, QuicClientOptions, TransportKind, TransportUrl,
};

use crate::error::BenchError;
use crate::payload::HEADER_LEN;

/// The built-in load shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// N connections opened at the connect rate and held for the duration.
    Conn,
    /// Like `Conn`, for memory measurements: long keep alive, nothing but PINGREQ on the wire.
    Idle,
    /// N publishers, nobody subscribed by the bench.
    Pub,
    /// N subscribers, waiting for publishers elsewhere (for example `mquictt bench pub`).
    Sub,
    /// N publishers on `topic/%i`, one subscriber on `topic/+`.
    FanIn,
    /// One publisher, N subscribers on the same topic.
    FanOut,
    /// N pairs: publisher i to subscriber i on `topic/%i`.
    P2p,
}

impl Scenario {
    /// The name used on the command line, in tables and in CSV.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Conn => "conn",
            Scenario::Idle => "idle",
            Scenario::Pub => "pub",
            Scenario::Sub => "sub",
            Scenario::FanIn => "fanin",
            Scenario::FanOut => "fanout",
            Scenario::P2p => "p2p",
        }
    }

    /// The topic pattern used when the user gives none.
    pub fn default_topic(self) -> &'static str {
        match self {
            Scenario::Conn | Scenario::Idle => "bench/idle",
            Scenario::Pub => "bench/pub/%i",
            Scenario::Sub => "bench/#",
            Scenario::FanIn => "bench/fanin/%i",
            Scenario::FanOut => "bench/fanout",
            Scenario::P2p => "bench/p2p/%i",
        }
    }

    /// Publishers for `clients`.
    pub fn publishers(self, clients: usize) -> usize {
        match self {
            Scenario::Pub | Scenario::FanIn | Scenario::P2p => clients,
            Scenario::FanOut => 1,
            Scenario::Conn | Scenario::Idle | Scenario::Sub => 0,
        }
    }

    /// Subscribers for `clients`.
    pub fn subscribers(self, clients: usize) -> usize {
        match self {
            Scenario::Sub | Scenario::FanOut | Scenario::P2p => clients,
            Scenario::FanIn => 1,
            Scenario::Conn | Scenario::Idle | Scenario::Pub => 0,
        }
    }

    /// Connections that neither publish nor subscribe.
    pub fn idle_connections(self, clients: usize) -> usize {
        match self {
            Scenario::Conn | Scenario::Idle => clients,
            _ => 0,
        }
    }

    /// How many subscribers receive each message a publisher sends; `None` when the bench
    /// cannot know (nobody subscribed, or the publishers are elsewhere).
    pub fn receivers_per_message(self, clients: usize) -> Option<u64> {
        match self {
            Scenario::FanIn | Scenario::P2p => Some(1),
            Scenario::FanOut => Some(clients as u64),
            Scenario::Pub | Scenario::Sub | Scenario::Conn | Scenario::Idle => None,
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The broker under test and how every client connects to it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the broker listens; the scheme selects the transport.
    pub url: TransportUrl,
    /// Opens transport connections (TLS trust lives here).
    pub connector: Connector,
    /// Local addresses to connect from, client i using entry `i % len`: several 127.0.0.x
    /// addresses multiply the ~28,000 ephemeral ports Linux has per source address. Empty: the
    /// system picks. Plain TCP (`mqtt://`) only.
    pub source_addrs: Vec<IpAddr>,
    /// MQTT version of every client. 3.1.1 by default: every broker speaks it.
    pub version: ProtocolVersion,
    /// Keep alive announced in CONNECT; clients send PINGREQ when they have been quiet for
    /// half of it.
    pub keep_alive: Duration,
    /// Transport handshakes plus CONNECT/CONNACK must finish within this.
    pub connect_timeout: Duration,
    /// User name sent in CONNECT.
    pub username: Option<String>,
    /// Password sent in CONNECT.
    pub password: Option<String>,
    /// Start of every client identifier; unique per process so that two benches against one
    /// broker do not take over each other's sessions.
    pub client_id_prefix: String,
}

impl Target {
    /// A target with MQTT 3.1.1, keep alive 60 s and a 10 s connect timeout.
    pub fn new(url: TransportUrl, tls: &ClientTlsSettings) -> Result<Self, BenchError> {
        Self::with_quic(url, tls, QuicClientOptions::default())
    }

    /// Like [`Self::new`], with these QUIC settings for `quic://` targets (the datagram
    /// ceiling and socket buffers of every client's endpoint, for example).
    pub fn with_quic(
        url: TransportUrl,
        tls: &ClientTlsSettings,
        quic: QuicClientOptions,
    ) -> Result<Self, BenchError> {
        let connect_timeout = Duration::from_secs(10);
        let options = ConnectOptions {
            timeout: connect_timeout,
            quic,
        };
        Ok(Self {
            url,
            connector: Connector::with_options(tls, options)?,
            source_addrs: Vec::new(),
            version: ProtocolVersion::V3_1_1,
            keep_alive: Duration::from_secs(60),
            connect_timeout,
            username: None,
            password: None,
            client_id_prefix: format!("mqb{}", std::process::id()),
        })
    }

    /// Parses `url` and connects with `tls`.
    pub fn parse(url: &str, tls: &ClientTlsSettings) -> Result<Self, BenchError> {
        let url = TransportUrl::parse(url).map_err(|e| BenchError::InvalidSpec(e.to_string()))?;
        Self::new(url, tls)
    }

    fn check(&self) -> Result<(), BenchError> {
        if !self.source_addrs.is_empty() && self.url.kind != TransportKind::Tcp {
            return Err(BenchError::InvalidSpec(format!(
                "local source addresses work with mqtt:// (plain TCP) only, not {}",
                self.url.kind.scheme()
            )));
        }
        if self.keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(BenchError::InvalidSpec(
                "keep alive is at most 65535 s".to_owned(),
            ));
        }
        Ok(())
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The shape of the load.
    pub scenario: Scenario,
    /// N: connections, publishers, subscribers or pairs, depending on the scenario.
    pub clients: usize,
    /// Publishers' topic; `%i` becomes the client index. Subscribers use it with `%i` as `+`
    /// (fan-in), as is (fan-out), or with their own index (point-to-point, sub).
    pub topic: String,
    /// QoS of publishes and subscriptions.
    pub qos: QoS,
    /// Payload bytes per message, at least the 20-byte timestamp header.
    pub payload_size: usize,
    /// Messages per second per publisher; `None` is as fast as the broker takes them.
    pub rate: Option<f64>,
    /// How long publishers publish, or connections are held.
    pub duration: Duration,
    /// New connections per second across all clients; `None` opens them all at once.
    pub connect_rate: Option<f64>,
    /// QoS 1/2 publishes a publisher keeps unacknowledged (also capped by an MQTT 5 broker's
    /// Receive Maximum). 32, the outbound window of common 3.1.1 brokers.
    pub inflight: u16,
    /// After the publishers stop, how long subscribers may keep receiving stragglers before
    /// the count is final. The wait ends earlier when every expected message has arrived or
    /// nothing arrived for half a second.
    pub drain: Duration,
}

impl LoadSpec {
    /// A spec with the scenario's default topic, QoS 0, 64-byte payloads, unlimited rate and
    /// 10 s duration.
    pub fn new(scenario: Scenario, clients: usize) -> Self {
        Self {
            scenario,
            clients,
            topic: scenario.default_topic().to_owned(),
            qos: QoS::AtMostOnce,
            payload_size: 64,
            rate: None,
            duration: Duration::from_secs(10),
            connect_rate: None,
            inflight: 32,
            drain: Duration::from_secs(5),
        }
    }

    /// The topic publisher `index` publishes to.
    pub(crate) fn publish_topic(&self, index: usize) -> Result<TopicName, BenchError> {
        let topic = self.topic.replace("%i", &index.to_string());
        TopicName::new(&topic).map_err(|e| BenchError::InvalidSpec(format!("topic `{topic}`: {e}")))
    }

    /// The filter subscriber `index` subscribes to.
    pub(crate) fn subscribe_filter(&self, index: usize) -> Result<TopicFilter, BenchError> {
        let filter = match self.scenario {
            Scenario::FanIn => self.topic.replace("%i", "+"),
            Scenario::FanOut => self.topic.replace("%i", "0"),
            _ => self.topic.replace("%i", &index.to_string()),
        };
        TopicFilter::new(&filter)
            .map_err(|e| BenchError::InvalidSpec(format!("topic filter `{filter}`: {e}")))
    }

    pub(crate) fn check(&self, target: &Target) -> Result<(), BenchError> {
        target.check()?;
        if self.clients == 0 {
            return Err(BenchError::InvalidSpec(
                "at least one client is needed".into(),
            ));
        }
        let publishes = self.scenario.publishers(self.clients) > 0;
        if publishes && self.payload_size < HEADER_LEN {
            return Err(BenchError::InvalidSpec(format!(
                "payloads carry a {HEADER_LEN}-byte timestamp header; --size must be at least \
                 {HEADER_LEN}"
            )));
        }
        if matches!(self.rate, Some(rate) if !(rate > 0.0 && rate.is_finite())) {
            return Err(BenchError::InvalidSpec("the rate must be positive".into()));
        }
        if matches!(self.connect_rate, Some(rate) if !(rate > 0.0 && rate.is_finite())) {
            return Err(BenchError::InvalidSpec(
                "the connect rate must be positive".into(),
            ));
        }
        if self.inflight == 0 {
            return Err(BenchError::InvalidSpec(
                "the inflight window must be at least 1".into(),
            ));
        }
        if publishes {
            self.publish_topic(0)?;
        }
        if self.scenario.subscribers(self.clients) > 0 {
            self.subscribe_filter(0)?;
        }
        Ok(())
    }
}
