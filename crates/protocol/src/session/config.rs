//! How the machines are configured: [`ClientConfig`] and [`ServerConfig`] for their local
//! behaviour, and [`Accept`], the server application's answer to a CONNECT. Every default is
//! explained where it is set.

use std::time::Duration;

use crate::packet::Connect;
use crate::properties::Properties;

use super::state::SessionState;

/// How a client machine behaves. What is negotiated with the server (protocol version, Keep
/// Alive, Receive Maximum, Topic Alias Maximum, ...) is read from `connect`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The CONNECT packet to send.
    pub connect: Connect,
    /// Publishes that may wait for send quota; default [`DEFAULT_MAX_QUEUED_PUBLISHES`].
    pub max_queued_publishes: usize,
    /// Inflight window towards an MQTT 3.1.1 server; default [`DEFAULT_SEND_WINDOW_V3`].
    pub send_window_v3: u16,
    /// How many topic aliases to assign to outgoing publishes (never more than the server
    /// allows). Default 0: aliases are off, every PUBLISH carries its topic.
    pub outbound_topic_aliases: u16,
    /// How long to wait for PINGRESP; `None` (the default) waits one Keep Alive, by when a
    /// live server has answered and a dead one has already dropped us (it waits 1.5).
    pub ping_timeout: Option<Duration>,
    /// How long to wait for CONNACK; default 30 s, long enough for a slow radio link and
    /// an enhanced authentication exchange. `None` waits forever.
    pub connack_timeout: Option<Duration>,
}

impl ClientConfig {
    /// The defaults for everything but the CONNECT packet.
    pub fn new(connect: Connect) -> Self {
        Self {
            connect,
            max_queued_publishes: DEFAULT_MAX_QUEUED_PUBLISHES,
            send_window_v3: DEFAULT_SEND_WINDOW_V3,
            outbound_topic_aliases: 0,
            ping_timeout: None,
            connack_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// How a server machine behaves. What it announces to the client goes in [`Accept`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a new connection may take to send CONNECT; default 10 s, enough for a slow
    /// handshake on a radio link, short enough that idle sockets do not pile up. `None`
    /// waits forever.
    pub connect_timeout: Option<Duration>,
    /// Publishes that may wait for send quota; default [`DEFAULT_MAX_QUEUED_PUBLISHES`]. With
    /// 0, `publish` refuses as soon as the client's Receive Maximum is reached.
    pub max_queued_publishes: usize,
    /// Inflight window towards an MQTT 3.1.1 client; default [`DEFAULT_SEND_WINDOW_V3`].
    pub send_window_v3: u16,
    /// How many topic aliases to assign to publishes sent to the client (never more than it
    /// allows). Default 0: off.
    pub outbound_topic_aliases: u16,
    /// Packets a client may send after CONNECT while the application decides; they are
    /// processed after `accept` and dropped after `refuse` [MQTT-3.1.4-6]. Default 64:
    /// a client pipelining a few publishes and subscriptions fits.
    pub max_packets_before_accept: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            max_queued_publishes: DEFAULT_MAX_QUEUED_PUBLISHES,
            send_window_v3: DEFAULT_SEND_WINDOW_V3,
            outbound_topic_aliases: 0,
            max_packets_before_accept: 64,
        }
    }
}

/// The application's acceptance of a CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// CONNACK properties (MQTT 5): Receive Maximum, Topic Alias Maximum, Maximum QoS,
    /// Retain Available, Server Keep Alive, Assigned Client Identifier, ... The machine
    /// enforces the limits it announces here.
    pub properties: Properties,
    /// The stored session for this client, if the broker has one. Session Present is set
    /// exactly when it is given and the client did not ask for Clean Start
    /// ([MQTT-3.2.2-2], [MQTT-3.2.2-3]); with Clean Start it is discarded.
    pub resumed: Option<SessionState>,
}

/// Publishes that may wait in a machine for send quota before `publish` refuses more. Small
/// on purpose: a broker keeps its own per-session queue with its own drop policy, and a
/// device keeps few messages in memory.
pub const DEFAULT_MAX_QUEUED_PUBLISHES: usize = 32;

/// The inflight window towards an MQTT 3.1.1 peer, which announces no Receive Maximum. 32
/// keeps a 3.1.1 peer busy on a long-latency link without flooding a small device.
pub const DEFAULT_SEND_WINDOW_V3: u16 = 32;
