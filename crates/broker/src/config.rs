//! Typed broker configuration: every limit the broker enforces, with a safe default and the
//! reason for it. Nothing here is parsed from text; the binary turns its config file and flags
//! into a `BrokerConfig`.

use std::time::Duration;

use mquictt_protocol::QoS;

/// What to do when a session's queue of messages waiting for delivery is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropPolicy {
    /// Drop the new message: what is already queued is older and was promised first.
    #[default]
    DropNewest,
    /// Drop the oldest queued message to make room: for clients that only want recent data.
    DropOldest,
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
    /// Largest packet accepted from a client and the Maximum Packet Size sent in CONNACK.
    /// 1 MiB: far above sensor payloads, far below the 256 MiB the protocol allows.
    pub max_packet_size: u32,
    /// Receive Maximum sent in CONNACK: unacknowledged QoS 1/2 PUBLISHes a client may have in
    /// flight to us. 64 keeps a fast publisher busy without letting it buffer unboundedly.
    pub receive_maximum: u16,
    /// Outbound window for MQTT 3.1.1 clients, which announce no Receive Maximum. 32, the
    /// same order as common 3.1.1 brokers, so old clients are not flooded.
    pub v3_inflight: u16,
    /// Messages queued per session while it is offline or its window is full. 1,000 absorbs
    /// a burst or a short outage; past it `drop_policy` applies and a counter records drops.
    pub max_queued_messages: usize,
    /// Which message goes when the queue is full.
    pub drop_policy: DropPolicy,
    /// Upper bound on the Session Expiry Interval a client may ask for (5.0) and the expiry
    /// of 3.1.1 sessions with Clean Session 0. 7 days: a device that sleeps over a weekend
    /// keeps its session, an abandoned one does not hold memory forever.
    pub max_session_expiry: Duration,
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
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 64,
            v3_inflight: 32,
            max_queued_messages: 1_000,
            drop_policy: DropPolicy::DropNewest,
            max_session_expiry: Duration::from_secs(7 * 24 * 60 * 60),
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
        assert!(config.connect_timeout > Duration::ZERO);
    }
}
