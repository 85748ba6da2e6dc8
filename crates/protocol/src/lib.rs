//! MQTT 3.1, 3.1.1 and 5.0 without IO: packet types, the codec, topic names and filters, and
//! the client and server session state machines.
//!
//! Nothing in this crate opens a socket, spawns a task or reads a clock. Bytes and the current
//! time go in; packets, events and the next deadline come out. The async layers of the broker
//! and the client drive these types.

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod session;
pub mod string;
pub mod topic;
pub mod types;

pub use codec::{decode, Decoder};
pub use error::ProtocolError;
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, PubAck, Publish, SubAck, Subscribe,
    UnsubAck, Unsubscribe, Will,
};
pub use properties::{Properties, PropertyId, PropertySet};
pub use reason::ReasonCode;
pub use string::{MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};
pub use types::{PacketId, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
