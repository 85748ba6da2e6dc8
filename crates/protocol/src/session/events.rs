//! What the machines tell the application: [`ClientEvent`] and [`ServerEvent`], polled with
//! `poll_event()`, and [`ConnectionInfo`], what a client learned from CONNACK.

use std::time::Duration;

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::string::MqttString;
use crate::types::{PacketId, QoS};

/// What a successful CONNACK established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server resumed the stored session.
    pub session_present: bool,
    /// The identifier the server assigned, if the client sent none (3.2.2.3.7).
    pub assigned_client_id: Option<MqttString>,
    /// The Keep Alive in force: the Server Keep Alive if the server sent one
    /// [MQTT-3.1.2-23], otherwise ours; `None` when switched off.
    pub keep_alive: Option<Duration>,
    /// The server's Receive Maximum: our initial send quota.
    pub receive_maximum: u16,
    /// The highest QoS the server accepts [MQTT-3.2.2-11].
    pub maximum_qos: QoS,
    /// Whether the server accepts retained messages [MQTT-3.2.2-14].
    pub retain_available: bool,
    /// How many topic aliases the server accepts from us.
    pub topic_alias_maximum: u16,
    /// The largest packet the server accepts [MQTT-3.2.2-15].
    pub maximum_packet_size: Option<u32>,
    /// All CONNACK properties, for what this summary leaves out.
    pub properties: Properties,
}

/// Something the application must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// CONNACK accepted the connection.
    Connected(ConnectionInfo),
    /// CONNACK refused the connection; the machine is closed [MQTT-3.2.2-7].
    ConnectionRefused(ConnAck),
    /// The server had no session although we resumed one, so ours is discarded
    /// [MQTT-3.2.2-5]: these publishes were never confirmed and may be published again as
    /// new messages.
    SessionDiscarded(Vec<Publish>),
    /// An application message. QoS 1 and 2 messages must be answered with `ack_incoming`.
    Publish(Publish),
    /// An outgoing QoS 1 or 2 exchange ended: PUBACK, PUBCOMP, or a PUBREC with a failure.
    PublishAcknowledged {
        /// The identifier `publish` returned.
        packet_id: PacketId,
        /// The receiver's reason code; 0x80 or more means it refused the message.
        reason_code: ReasonCode,
        /// Reason string and user properties of the acknowledgement.
        properties: Properties,
    },
    /// A publish from the resumed session no longer fits the server's Maximum Packet Size
    /// and was dropped without being sent.
    PublishDropped {
        /// The message.
        publish: Publish,
        /// Its encoded size.
        size: usize,
        /// The server's Maximum Packet Size.
        maximum: u32,
    },
    /// The answer to `subscribe`, one reason code per filter in order [MQTT-3.9.3-1].
    SubAck(SubAck),
    /// The answer to `unsubscribe`.
    UnsubAck(UnsubAck),
    /// An AUTH packet of an enhanced authentication exchange.
    Auth(Auth),
    /// The server closed the connection with DISCONNECT (MQTT 5).
    Disconnected(Disconnect),
}

/// Something the application must act on or know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client asks to connect: answer with `accept` or `refuse`.
    Connect(Box<Connect>),
    /// An application message. QoS 1 and 2 messages must be answered with `ack_incoming`
    /// once the message is safe.
    Publish(Publish),
    /// An outgoing QoS 1 or 2 exchange ended: PUBACK, PUBCOMP, or a PUBREC with a failure
    /// (then the message is discarded for this client [MQTT-4.8.2-6]).
    PublishAcknowledged {
        /// The identifier `publish` returned.
        packet_id: PacketId,
        /// The client's reason code.
        reason_code: ReasonCode,
        /// Reason string and user properties of the acknowledgement.
        properties: Properties,
    },
    /// A publish from the resumed session no longer fits the client's Maximum Packet Size and
    /// was discarded without being sent [MQTT-3.1.2-28].
    PublishDropped {
        /// The message.
        publish: Publish,
        /// Its encoded size.
        size: usize,
        /// The client's Maximum Packet Size.
        maximum: u32,
    },
    /// SUBSCRIBE: answer with `suback` [MQTT-3.8.4-1].
    Subscribe(Subscribe),
    /// UNSUBSCRIBE: answer with `unsuback` [MQTT-3.10.4-4].
    Unsubscribe(Unsubscribe),
    /// An AUTH packet of an enhanced authentication exchange.
    Auth(Auth),
    /// The client closed with DISCONNECT. With 0x00 the will is discarded [MQTT-3.14.4-3];
    /// a Session Expiry Interval here replaces the one from CONNECT.
    Disconnected(Disconnect),
}
