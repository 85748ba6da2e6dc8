//! Typed broker configuration: every limit the broker enforces, with a safe default and the
//! reason for it. Nothing here is parsed from text; the binary turns its config file and flags
//! into a `BrokerConfig`.

use std::time::Duration;

use mquictt_protocol::QoS;

/// A token bucket: `burst` events at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained events per second (at least 1).
    pub per_second: u32,
    /// Events allowed at once after a quiet period (at least 1).
    pub burst: u32,
}

/// What happens to a client that publishes faster than `publish_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishOverload {
    /// Stop reading from the client until the bucket refills: nothing is lost, the client's
    /// sends block (TCP and QUIC flow control push back), other clients are unaffected.
    #[default]
    Throttle,
    /// Close the connection: DISCONNECT 0x96 Message rate too high in 5.0, a plain close in
    /// 3.1.1. For deployments where a flooding client is a fault to surface, not to absorb.
    Disconnect,
}

/// Configuration of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// How long a new connection may take to send CONNECT before it is closed. 10 s: enough
    /// for a slow radio link and a TLS handshake, short enough that idle sockets cannot pile up.
    pub connect_timeout: Duration,
    /// Connections served at once; further ones are closed at once (5.0 clients get CONNACK
    /// 0x89 Server busy first). 10,000 fits in a few hundred MB for typical IoT sessions.
    pub max_connections: usize,
    /// Connections that have not completed CONNECT (and authentication) at once; further
    /// ones are closed at once. 1,000: a reconnect storm of that many devices is absorbed,
    /// while slow or silent sockets (SlowITe, slowloris) cannot take every slot.
    pub max_pending_connections: usize,
    /// New connections per source address (per /64 for IPv6); past it they are closed at
    /// once. Burst 1,000 then 200/s: a NAT gateway's fleet reconnecting after an outage gets
    /// in, one host opening sockets in a loop does not exhaust the broker. `None`: no limit.
    pub connection_rate: Option<RateLimit>,
    /// Sessions kept, connected or not; a CONNECT that would create one more is refused with
    /// 0x97 Quota exceeded. 100,000 bounds what clients that ask for long sessions and vanish
    /// can pin in memory.
    pub max_sessions: usize,
    /// Largest packet accepted from a client and the Maximum Packet Size sent in CONNACK.
    /// 1 MiB: far above sensor payloads, far below the 256 MiB the protocol allows.
    pub max_packet_size: u32,
    /// Receive Maximum sent in CONNACK: unacknowledged QoS 1/2 PUBLISHes a client may have in
    /// flight to us. 64 keeps a fast publisher busy without letting it buffer unboundedly.
    pub receive_maximum: u16,
    /// Outbound window for MQTT 3.1.1 clients, which announce no Receive Maximum. 32, the
    /// same order as common 3.1.1 brokers, so old clients are not flooded.
    pub v3_inflight: u16,
    /// Most QoS 1/2 messages in flight to one MQTT 5 client, whatever its Receive Maximum
    /// (up to 65,535) allows. 256 keeps a fast consumer busy and bounds per-session state.
    pub max_inflight: u16,
    /// Messages queued per session while it is offline or its window is full (in-flight
    /// messages, at most `max_inflight`, come on top). 1,000 absorbs a burst or a short
    /// outage. When a copy does not fit, the oldest queued QoS 0 copies are dropped to make
    /// room; failing that a QoS 0 copy is dropped and a QoS 1/2 copy is refused for that
    /// subscriber (see the `queue` module); counters record both.
    pub max_queued_messages: usize,
    /// Bytes (topic and payload) queued per session, under the same policy. 16 MiB: a
    /// thousand messages of 16 KiB, while a few thousand offline sessions cannot fill memory
    /// with large payloads. A copy always fits an empty queue.
    pub max_queued_bytes: usize,
    /// Upper bound on the Session Expiry Interval a client may ask for (5.0; the capped value
    /// is returned in CONNACK) and the expiry of 3.1.1 sessions with Clean Session 0. 1 day:
    /// a device that sleeps overnight keeps its session; clients asking for 0xFFFFFFFF
    /// ("never") and vanishing cannot hold memory forever.
    pub max_session_expiry: Duration,
    /// Longest topic name or filter accepted, in bytes. 4,096: far above real topic trees,
    /// far below the 65,535 the protocol allows.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter. 128: deep enough for any hierarchy, shallow
    /// enough that matching stays cheap and bounded.
    pub max_topic_levels: usize,
    /// Subscriptions one session may hold; more are refused with SUBACK 0x97 Quota exceeded
    /// (0x80 in 3.1.1). 1,000 covers a gateway's topics.
    pub max_subscriptions_per_client: usize,
    /// PUBLISH packets one connection may send; `publish_overload` says what happens beyond.
    /// Burst 1,000 then 1,000/s: well above any sensor, low enough that one client cannot fan
    /// out until the CPU is gone. `None`: no limit.
    pub publish_rate: Option<RateLimit>,
    /// What happens to a client that publishes faster than `publish_rate`.
    pub publish_overload: PublishOverload,
    /// Topic Alias Maximum sent in CONNACK: aliases a client may use towards us. 16 covers the
    /// handful of topics a device publishes to, at a few KiB of memory per connection.
    pub topic_alias_maximum: u16,
    /// Topic aliases the broker assigns on its own PUBLISHes to a 5.0 client, never more than
    /// the client's Topic Alias Maximum. 0 (off): aliases save bytes on repeated long topics
    /// but make a capture harder to read; links where it matters switch it on.
    pub outbound_topic_aliases: u16,
    /// How long a write to a client may block. A client that stops reading for 30 s is
    /// dropped, so it cannot pin its connection task (and its session) forever.
    pub write_timeout: Duration,
    /// Server Keep Alive (5.0): when set, replaces the client's keep alive in CONNACK. `None`
    /// accepts what the client asks for, which is the spec's default behaviour.
    pub server_keep_alive: Option<Duration>,
    /// Highest QoS the broker grants. 2: everything is supported.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported (Retain Available).
    pub retain_available: bool,
    /// Whether `+`/`#` may be used (Wildcard Subscription Available).
    pub wildcard_subscription_available: bool,
    /// Whether Subscription Identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether `$share/` subscriptions are supported.
    pub shared_subscription_available: bool,
    /// Longest client identifier accepted. 23 is the minimum every server must accept
    /// [MQTT-3.1.3-5]; we accept up to 256 as most brokers do, so UUIDs and MAC-derived ids fit.
    pub max_client_id_len: usize,
    /// How often `$SYS/broker/...` topics are published. 10 s, like Mosquitto's default;
    /// `None` switches them off.
    pub sys_interval: Option<Duration>,
    /// How long a graceful shutdown waits for connections to flush their DISCONNECT before
    /// dropping them. 5 s.
    pub shutdown_grace: Duration,
    /// Bytes of messages (queued, in flight, retained, wills) durable storage may hold; past
    /// it new QoS 1/2 messages are refused (MQTT 5: PUBACK/PUBREC 0x97 Quota exceeded; 3.1.1:
    /// the connection is closed) instead of filling the disk. 1 GiB: weeks of backlog for a
    /// typical sensor fleet, and still a fraction of the smallest SD cards sold. `None`: no
    /// limit.
    pub max_storage_bytes: Option<u64>,
    /// When an idle TCP connection's socket leaves the process's table of file descriptors
    /// while it is parked (Linux 6.8+, io_uring): a broker then holds more idle connections
    /// than its open-file limit. `Auto`: once 3/4 of the limit is in use, so a broker well
    /// under its limit parks as it always did.
    pub idle_without_descriptor: IdleWithoutDescriptor,
}

/// When a parked TCP socket is held without a file descriptor (see the `parking` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleWithoutDescriptor {
    /// Once the socket's descriptor is in the top quarter of the open-file limit. Descriptors
    /// are handed out lowest first, so such a number means at least 3/4 of the limit was in
    /// use when it was opened.
    #[default]
    Auto,
    /// Every parked TCP socket.
    Always,
    /// None: every connection keeps its descriptor, and the open-file limit caps connections.
    Never,
}

impl BrokerConfig {
    /// The bounds of each session's queue.
    pub fn queue_limits(&self) -> crate::session::QueueLimits {
        crate::session::QueueLimits {
            messages: self.max_queued_messages,
            bytes: self.max_queued_bytes,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_pending_connections: 1_000,
            connection_rate: Some(RateLimit {
                per_second: 200,
                burst: 1_000,
            }),
            max_sessions: 100_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 64,
            v3_inflight: 32,
            max_inflight: 256,
            max_queued_messages: 1_000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_session_expiry: Duration::from_secs(24 * 60 * 60),
            max_topic_length: 4_096,
            max_topic_levels: 128,
            max_subscriptions_per_client: 1_000,
            publish_rate: Some(RateLimit {
                per_second: 1_000,
                burst: 1_000,
            }),
            publish_overload: PublishOverload::Throttle,
            topic_alias_maximum: 16,
            outbound_topic_aliases: 0,
            write_timeout: Duration::from_secs(30),
            server_keep_alive: None,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            max_client_id_len: 256,
            sys_interval: Some(Duration::from_secs(10)),
            shutdown_grace: Duration::from_secs(5),
            max_storage_bytes: Some(1024 * 1024 * 1024),
            idle_without_descriptor: IdleWithoutDescriptor::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bounded_and_spec_compliant() {
        let config = BrokerConfig::default();
        assert!(
            config.receive_maximum > 0,
            "Receive Maximum 0 is a protocol error"
        );
        assert!(
            config.max_packet_size > 0,
            "Maximum Packet Size 0 is a protocol error"
        );
        assert!(config.max_client_id_len >= 23, "[MQTT-3.1.3-5]");
        assert!(config.max_queued_messages > 0);
        assert!(config.max_queued_bytes >= usize::try_from(config.max_packet_size).unwrap());
        assert!(config.connect_timeout > Duration::ZERO);
        assert!(config.max_pending_connections <= config.max_connections);
        assert!(config.max_sessions >= config.max_connections);
        assert_eq!(config.max_session_expiry, Duration::from_secs(86_400));
        assert_eq!(config.max_packet_size, 1024 * 1024);
        assert!(config.max_topic_length <= usize::from(u16::MAX));
    }
}
