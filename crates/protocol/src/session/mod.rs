//! Sans-IO MQTT session state machines: [`ClientSession`] for the client side of one network
//! connection and [`ServerSession`] for the server side. They speak [`Packet`] values, not
//! bytes (the codec turns one into the other), and read no clock: time comes in as `now`.
//!
//! Each machine has four kinds of methods, in the manner of `quinn-proto`'s `Connection`:
//!
//! - getters (`is_closed`, `connection`, `send_quota`, ...);
//! - `handle_packet(packet, now)` and `handle_timeout(now)` for what happens to the machine;
//! - requests of the application (`publish`, `subscribe`, `ack_incoming`, `accept`,
//!   `disconnect`, ...), refused with a [`RequestError`] that leaves the connection intact;
//! - `poll_transmit(now)` (the next packet to write), `poll_event()` (the next thing for the
//!   application) and `poll_timeout()` (when `handle_timeout` must be called next).
//!
//! A peer's protocol violation, or a timeout, is a [`SessionError`]: `handle_*` return it
//! once, after queueing the DISCONNECT that reports it (MQTT 5, and for the server only after
//! a successful CONNACK [MQTT-3.14.0-1]); `is_closed()` is then true and the driver closes the
//! connection once `poll_transmit` is drained.
//!
//! Incoming QoS 1 and 2 messages are acknowledged by the application, not by the machine:
//! a broker calls `ack_incoming` once the message is stored durably, a client once it has
//! handled it. Outgoing QoS 1 and 2 publishes get a packet identifier at once and enter the
//! inflight window while the peer's Receive Maximum allows (4.9); beyond it they wait in the
//! machine, in order, up to `max_queued_publishes`; past that, `publish` hands the message
//! back in [`RequestError::QueueFull`] so the caller can keep its own queue (set the limit to
//! 0 to get that back-pressure right at the window). Completion is reported per packet
//! identifier with [`ClientEvent::PublishAcknowledged`] / [`ServerEvent::PublishAcknowledged`].
//!
//! [`SessionState`] is what survives the connection (4.1): `take_state()` takes it out of a
//! closed machine, and the next machine for the same session gets it back (client: at
//! construction; server: in [`Accept`]); it then re-sends PUBLISH with DUP=1 and PUBREL in their
//! original order [MQTT-4.4.0-1]. Clean Start discards it.
//!
//! The poll loop of a driver, here with both machines wired together in memory:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use mquictt_protocol::session::{
//!     Accept, ClientConfig, ClientEvent, ClientSession, ServerConfig, ServerEvent, ServerSession,
//! };
//! use mquictt_protocol::{Connect, MqttString, Properties, ProtocolVersion, Publish, QoS, ReasonCode, TopicName};
//!
//! let now = Instant::now();
//! let connect = Connect {
//!     protocol: ProtocolVersion::V5,
//!     clean_start: true,
//!     keep_alive: 30,
//!     client_id: MqttString::from_static("sensor-1"),
//!     will: None,
//!     username: None,
//!     password: None,
//!     properties: Properties::default(),
//! };
//! let mut client = ClientSession::new(ClientConfig::new(connect), None, now);
//! let mut server = ServerSession::new(ServerConfig::default(), now);
//!
//! let mut published = false;
//! let mut delivered = None;
//! for _ in 0..10 {
//!     // Transmit: what one side writes, the other reads (a real driver encodes and decodes).
//!     while let Some(packet) = client.poll_transmit(now) {
//!         server.handle_packet(packet, now).expect("client follows the protocol");
//!     }
//!     while let Some(packet) = server.poll_transmit(now) {
//!         client.handle_packet(packet, now).expect("server follows the protocol");
//!     }
//!     // Events: the application's turn.
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::Connect(_) => server.accept(Accept::default(), now).unwrap(),
//!             ServerEvent::Publish(publish) => {
//!                 // Store it durably, then acknowledge (PUBACK goes out).
//!                 server.ack_incoming(publish.packet_id.unwrap(), ReasonCode::Success).unwrap();
//!                 delivered = Some(publish.payload);
//!             }
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = client.poll_event() {
//!         if let ClientEvent::Connected(_) = event {
//!             let publish = Publish {
//!                 dup: false,
//!                 qos: QoS::AtLeastOnce,
//!                 retain: false,
//!                 topic: TopicName::new("sensors/1/temp").unwrap(),
//!                 packet_id: None,
//!                 properties: Properties::default(),
//!                 payload: Bytes::from_static(b"21.5"),
//!             };
//!             client.publish(publish).unwrap();
//!             published = true;
//!         }
//!     }
//!     // Timers: sleep until `poll_timeout()`, then call `handle_timeout`.
//!     if let Some(deadline) = client.poll_timeout() {
//!         if deadline <= now {
//!             client.handle_timeout(now).unwrap();
//!         }
//!     }
//! }
//! assert!(published);
//! assert_eq!(delivered, Some(Bytes::from_static(b"21.5")));
//! ```
//!
//! [`Packet`]: crate::packet::Packet

mod alias;
mod client;
mod config;
mod delivery;
mod error;
mod events;
mod inbound;
mod keep_alive;
mod outbound;
mod packet_ids;
mod packet_size;
mod server;
mod state;

pub use client::{ClientSession, ClientStreamTemplate};
pub use config::{
    Accept, ClientConfig, ServerConfig, DEFAULT_MAX_QUEUED_PUBLISHES, DEFAULT_SEND_WINDOW_V3,
};
pub use error::{RequestError, SessionError};
pub use events::{ClientEvent, ConnectionInfo, ServerEvent};
pub use server::{DataStreamTemplate, IdleServerSession, ServerSession};
pub use state::{OutboundMessage, SessionState};

/// The two ends of an MQTT connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that sent CONNECT.
    Client,
    /// The side that answered with CONNACK.
    Server,
}

impl Role {
    /// The other end.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}
