//! [`ClientOptions`]: everything a client is configured with (broker URL and TLS, the CONNECT
//! packet's fields and properties, reconnect policy, queue limits), as a typed builder. The
//! values are checked once, when the client starts, and turned into the CONNECT packet and
//! session configuration the driver uses.

use std::time::Duration;

use bytes::Bytes;
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::session::ClientConfig;
use mquictt_protocol::{Connect, MqttString, Properties, ProtocolVersion, Will};
use mquictt_transport::{ClientTlsSettings, ConnectOptions, QuicClientOptions, TransportUrl};

use crate::backoff::ReconnectPolicy;
use crate::error::ClientError;
use crate::message::Message;

/// How to connect and behave. Built with [`ClientOptions::new`] and the builder methods.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    url: TransportUrl,
    tls: ClientTlsSettings,
    version: ProtocolVersion,
    client_id: String,
    keep_alive: Duration,
    clean_start: bool,
    credentials: Option<(String, Option<Bytes>)>,
    will: Option<Message>,
    properties: Properties,
    reconnect: ReconnectPolicy,
    offline_queue: usize,
    incoming_buffer: usize,
    connect_timeout: Duration,
    connack_timeout: Option<Duration>,
    max_packet_size: u32,
    outbound_topic_aliases: u16,
    quic: Option<QuicClientOptions>,
    quic_mtu_discovery: Option<bool>,
    quic_max_udp_payload: Option<u16>,
    quic_socket_buffer: Option<usize>,
}

impl ClientOptions {
    /// Options for the broker at `url` (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `quic://`)
    /// with every default.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(Self::with_url(TransportUrl::parse(url)?))
    }

    /// Options for an already parsed URL.
    pub fn with_url(url: TransportUrl) -> Self {
        ClientOptions {
            url,
            tls: ClientTlsSettings::default(),
            // MQTT 5 by default: reason codes on every acknowledgement, and every broker in
            // use today speaks it.
            version: ProtocolVersion::V5,
            // Empty: the broker assigns one (MQTT 5 [MQTT-3.1.3-6]; a 3.1.1 broker accepts it
            // with Clean Session only [MQTT-3.1.3-7]).
            client_id: String::new(),
            // 30 s: well under the common 60 s+ NAT and load-balancer idle timeouts for TCP,
            // and cheap (a 2-byte PINGREQ).
            keep_alive: Duration::from_secs(30),
            clean_start: true,
            credentials: None,
            will: None,
            properties: Properties::default(),
            reconnect: ReconnectPolicy::default(),
            // 1000 messages: a device offline for minutes keeps its readings, a bounded
            // amount of memory is at stake.
            offline_queue: 1000,
            // 256 messages received and not yet taken by the application, after which the
            // client stops reading and TCP/QUIC flow control pushes back on the broker.
            incoming_buffer: 256,
            // 10 s for resolving, connecting and every handshake, as the transport defaults.
            connect_timeout: Duration::from_secs(10),
            // 30 s for CONNACK, the session machine's default.
            connack_timeout: Some(Duration::from_secs(30)),
            max_packet_size: MAX_PACKET_SIZE,
            outbound_topic_aliases: 0,
            quic: None,
            // As the QUIC options say (on unless switched off there).
            quic_mtu_discovery: None,
            // As the QUIC options say (quinn's ceiling and 4 MiB unless set there).
            quic_max_udp_payload: None,
            quic_socket_buffer: None,
        }
    }

    /// The broker URL.
    pub fn url(&self) -> &TransportUrl {
        &self.url
    }

    /// The MQTT version.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The TLS settings for `mqtts://`, `wss://` and `quic://`: trusted CAs, a client
    /// certificate, the server name.
    pub fn tls(mut self, tls: ClientTlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// The MQTT version: 5.0 (default), 3.1.1 or 3.1.
    pub fn protocol(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// The client identifier; empty (the default) lets the broker assign one.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// The Keep Alive: the longest silence before the client sends PINGREQ; zero switches it
    /// off. Whole seconds, at most 65,535.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Clean Start (MQTT 5) / Clean Session (3.1.1) of the first connection; true by
    /// default. Later connections resume the session when it outlives a connection: with
    /// MQTT 5 when a [`session_expiry`](Self::session_expiry) is set, with 3.1.1 when Clean
    /// Session is false.
    pub fn clean_start(mut self, clean_start: bool) -> Self {
        self.clean_start = clean_start;
        self
    }

    /// Session Expiry Interval (MQTT 5): how long the broker keeps the session after the
    /// connection ends; `Duration::MAX` means never. Whole seconds.
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        self.properties.session_expiry_interval = Some(if expiry == Duration::MAX {
            u32::MAX
        } else {
            u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX)
        });
        self
    }

    /// User name and optional password.
    pub fn credentials(mut self, username: impl Into<String>, password: Option<Bytes>) -> Self {
        self.credentials = Some((username.into(), password));
        self
    }

    /// The will message, published by the broker if the connection ends without a normal
    /// DISCONNECT. Its properties are the will properties (Will Delay Interval included).
    pub fn will(mut self, will: Message) -> Self {
        self.will = Some(will);
        self
    }

    /// Replaces every CONNECT property (MQTT 5): Session Expiry Interval, Receive Maximum,
    /// Maximum Packet Size, Topic Alias Maximum, Request Response/Problem Information, User
    /// Properties, Authentication Method and Data. The builder methods below set single ones.
    pub fn connect_properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// The CONNECT properties as they stand.
    pub fn properties_mut(&mut self) -> &mut Properties {
        &mut self.properties
    }

    /// Receive Maximum (MQTT 5): QoS 1 and 2 messages the broker may have in flight to us.
    pub fn receive_maximum(mut self, maximum: u16) -> Self {
        self.properties.receive_maximum = Some(maximum);
        self
    }

    /// Topic Alias Maximum (MQTT 5): aliases the broker may use towards us.
    pub fn topic_alias_maximum(mut self, maximum: u16) -> Self {
        self.properties.topic_alias_maximum = Some(maximum);
        self
    }

    /// How many topic aliases to use for our publishes (MQTT 5, never more than the broker
    /// allows); 0 (default) sends every topic in full.
    pub fn outbound_topic_aliases(mut self, count: u16) -> Self {
        self.outbound_topic_aliases = count;
        self
    }

    /// The largest packet we accept, announced as Maximum Packet Size in MQTT 5.
    pub fn max_packet_size(mut self, maximum: u32) -> Self {
        self.max_packet_size = maximum;
        self
    }

    /// Reconnect policy; [`ReconnectPolicy::disabled`] switches reconnecting off.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// How many publishes may wait while the client is disconnected (or the broker's receive
    /// window is full) before `publish` refuses more with
    /// [`ClientError::OfflineQueueFull`].
    pub fn offline_queue(mut self, limit: usize) -> Self {
        self.offline_queue = limit;
        self
    }

    /// How many received messages may wait for the application before the client stops
    /// reading from the connection (at least 1).
    pub fn incoming_buffer(mut self, capacity: usize) -> Self {
        self.incoming_buffer = capacity.max(1);
        self
    }

    /// Time allowed for resolving, connecting and the TLS/WebSocket/QUIC handshakes.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for CONNACK; `None` waits forever.
    pub fn connack_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connack_timeout = timeout;
        self
    }

    /// QUIC transport settings; by default derived from the Keep Alive
    /// ([`QuicClientOptions::for_keep_alive`]).
    pub fn quic(mut self, quic: QuicClientOptions) -> Self {
        self.quic = Some(quic);
        self
    }

    /// QUIC path MTU discovery, whichever QUIC options are in use (the default ones derived
    /// from the Keep Alive, or those given to [`Self::quic`]). On by default; switch it off on
    /// narrowband links (802.15.4, LoRa, NB-IoT) to keep every datagram at 1,200 bytes and
    /// save the probes' airtime ([`QuicClientOptions::mtu_discovery`]).
    pub fn quic_mtu_discovery(mut self, enabled: bool) -> Self {
        self.quic_mtu_discovery = Some(enabled);
        self
    }

    /// The ceiling of QUIC path MTU discovery in UDP payload bytes, whichever QUIC options
    /// are in use ([`QuicClientOptions::max_udp_payload`]; clamped to 1200..=65527). Datagrams
    /// grow beyond 1,452 bytes only where discovery confirms the path carries them and the
    /// broker sets a ceiling too; `mquictt_transport::quic::LOOPBACK_MAX_UDP_PAYLOAD` suits
    /// loopback.
    pub fn quic_max_udp_payload(mut self, size: u16) -> Self {
        self.quic_max_udp_payload = Some(size);
        self
    }

    /// Receive and send buffer requested for the QUIC connection's UDP socket, in bytes,
    /// whichever QUIC options are in use ([`QuicClientOptions::socket_buffer`]; 4 MiB by
    /// default, capped by the system).
    pub fn quic_socket_buffer(mut self, bytes: usize) -> Self {
        self.quic_socket_buffer = Some(bytes);
        self
    }

    pub(crate) fn reconnect_policy(&self) -> &ReconnectPolicy {
        &self.reconnect
    }

    pub(crate) fn offline_queue_limit(&self) -> usize {
        self.offline_queue
    }

    pub(crate) fn incoming_capacity(&self) -> usize {
        self.incoming_buffer
    }

    pub(crate) fn tls_settings(&self) -> &ClientTlsSettings {
        &self.tls
    }

    pub(crate) fn transport_options(&self) -> ConnectOptions {
        let mut quic = self
            .quic
            .clone()
            .unwrap_or_else(|| QuicClientOptions::for_keep_alive(self.keep_alive));
        if let Some(enabled) = self.quic_mtu_discovery {
            quic.mtu_discovery = enabled;
        }
        if let Some(size) = self.quic_max_udp_payload {
            quic.max_udp_payload = Some(size);
        }
        if let Some(bytes) = self.quic_socket_buffer {
            quic.socket_buffer = bytes;
        }
        ConnectOptions {
            timeout: self.connect_timeout,
            quic,
        }
    }

    /// Whether the session outlives a connection, so that reconnecting resumes it.
    pub(crate) fn session_persists(&self) -> bool {
        if self.version.is_v5() {
            self.properties
                .session_expiry_interval
                .is_some_and(|expiry| expiry > 0)
        } else {
            !self.clean_start
        }
    }

    /// Checks every value and builds the session configuration of the first connection.
    pub(crate) fn session_config(&self) -> Result<ClientConfig, ClientError> {
        let keep_alive =
            u16::try_from(self.keep_alive.as_secs()).map_err(|_| ClientError::InvalidOption {
                option: "keep_alive",
                reason: format!(
                    "{} s is longer than MQTT's maximum of 65535 s",
                    self.keep_alive.as_secs()
                ),
            })?;
        let mut properties = self.properties.clone();
        if self.max_packet_size < MAX_PACKET_SIZE {
            properties.maximum_packet_size = Some(self.max_packet_size);
        }
        if properties.receive_maximum == Some(0) {
            return Err(ClientError::InvalidOption {
                option: "receive_maximum",
                reason: "0 is a Protocol Error (3.1.2.11.3); use at least 1".into(),
            });
        }
        if !self.version.is_v5() && !properties.is_empty() {
            // MQTT 3.1.1 has no properties; dropping them silently would hide a mistake.
            return Err(ClientError::InvalidOption {
                option: "connect_properties",
                reason: format!("MQTT {} has no properties; use MQTT 5", self.version),
            });
        }
        let (username, password) = match &self.credentials {
            Some((username, password)) => (Some(MqttString::new(username)?), password.clone()),
            None => (None, None),
        };
        let will = self.will.as_ref().map(|will| Will {
            topic: will.topic.clone(),
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            properties: if self.version.is_v5() {
                will.properties.clone()
            } else {
                Properties::default()
            },
        });
        let connect = Connect {
            protocol: self.version,
            clean_start: self.clean_start,
            keep_alive,
            client_id: MqttString::new(&self.client_id)?,
            will,
            username,
            password,
            properties,
        };
        let mut config = ClientConfig::new(connect);
        // The client keeps its own bounded queue (the offline queue), so the machine hands
        // back every publish beyond the broker's receive window instead of queueing it.
        config.max_queued_publishes = 0;
        config.outbound_topic_aliases = self.outbound_topic_aliases;
        config.connack_timeout = self.connack_timeout;
        Ok(config)
    }

    pub(crate) fn max_incoming_packet_size(&self) -> u32 {
        self.max_packet_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let options = ClientOptions::new("mqtt://127.0.0.1").unwrap();
        assert_eq!(options.url().port, 1883);
        let config = options.session_config().unwrap();
        assert!(config.connect.clean_start);
        assert_eq!(config.connect.keep_alive, 30);
        assert!(!options.session_persists());

        let persistent = options.clone().session_expiry(Duration::from_secs(60));
        assert!(persistent.session_persists());
        let v3 = ClientOptions::new("mqtt://h")
            .unwrap()
            .protocol(ProtocolVersion::V3_1_1)
            .clean_start(false);
        assert!(v3.session_persists());
        assert!(v3
            .clone()
            .receive_maximum(10)
            .session_config()
            .unwrap_err()
            .to_string()
            .contains("MQTT 3.1.1 has no properties"));

        let too_long = options.keep_alive(Duration::from_secs(70_000));
        assert!(matches!(
            too_long.session_config(),
            Err(ClientError::InvalidOption {
                option: "keep_alive",
                ..
            })
        ));
        assert!(ClientOptions::new("http://h").is_err());
    }

    #[test]
    fn mtu_discovery_switch_applies_to_any_quic_options() {
        let options = ClientOptions::new("quic://127.0.0.1").unwrap();
        assert!(options.transport_options().quic.mtu_discovery);
        let off = options.clone().quic_mtu_discovery(false);
        assert!(!off.transport_options().quic.mtu_discovery);
        // The keep-alive-derived settings stay as they were.
        assert_eq!(
            off.transport_options().quic.idle_timeout,
            options.transport_options().quic.idle_timeout
        );
        // Explicit QUIC options keep their own setting unless the switch is used too.
        let explicit = QuicClientOptions {
            mtu_discovery: false,
            ..QuicClientOptions::default()
        };
        let given = options.clone().quic(explicit.clone());
        assert!(!given.transport_options().quic.mtu_discovery);
        let overridden = options.quic(explicit).quic_mtu_discovery(true);
        assert!(overridden.transport_options().quic.mtu_discovery);
    }

    #[test]
    fn datagram_settings_apply_to_any_quic_options() {
        let options = ClientOptions::new("quic://127.0.0.1").unwrap();
        let quic = options.transport_options().quic;
        assert_eq!(quic.max_udp_payload, None);
        assert_eq!(
            quic.socket_buffer,
            QuicClientOptions::default().socket_buffer
        );
        let set = options
            .clone()
            .quic_max_udp_payload(6500)
            .quic_socket_buffer(1 << 20);
        assert_eq!(set.transport_options().quic.max_udp_payload, Some(6500));
        assert_eq!(set.transport_options().quic.socket_buffer, 1 << 20);
        // On top of explicit QUIC options, whichever order they come in.
        let explicit = QuicClientOptions {
            max_udp_payload: Some(9000),
            socket_buffer: 256 << 10,
            ..QuicClientOptions::default()
        };
        let given = options.clone().quic(explicit.clone());
        assert_eq!(given.transport_options().quic.max_udp_payload, Some(9000));
        assert_eq!(given.transport_options().quic.socket_buffer, 256 << 10);
        let overridden = options.quic_socket_buffer(2 << 20).quic(explicit);
        assert_eq!(
            overridden.transport_options().quic.max_udp_payload,
            Some(9000)
        );
        assert_eq!(overridden.transport_options().quic.socket_buffer, 2 << 20);
    }
}
