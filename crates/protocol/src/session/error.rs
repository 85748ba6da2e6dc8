//! The two error types of the session machines: [`SessionError`], a fault of the peer (or of the
//! link) that ends the connection, tagged like the codec's errors with its MQTT 5 reason code
//! and conformance id; and [`RequestError`], a request of the local application that the
//! machine refuses without harming the connection.

use std::time::Duration;

use crate::packet::{PacketType, Publish};
use crate::reason::ReasonCode;
use crate::types::{PacketId, QoS};

use super::Role;

/// Why the connection must close. Returned by `handle_packet` and `handle_timeout`; by then
/// the machine has queued the DISCONNECT that reports it (where the protocol allows one) and
/// `is_closed()` is true.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// "After a Network Connection is established by a Client to a Server, the first packet
    /// sent from the Client to the Server MUST be a CONNECT packet" [MQTT-3.1.0-1].
    #[error("first packet is {0:?}, not CONNECT [MQTT-3.1.0-1]")]
    FirstPacketNotConnect(PacketType),
    /// "The Server MUST process a second CONNECT packet sent from a Client as a Protocol Error
    /// and close the Network Connection" [MQTT-3.1.0-2].
    #[error("second CONNECT on one connection [MQTT-3.1.0-2]")]
    SecondConnect,
    /// "The Server MUST send a CONNACK with a 0x00 (Success) Reason Code before sending any
    /// Packet other than AUTH" [MQTT-3.2.0-1].
    #[error("{0:?} received before CONNACK [MQTT-3.2.0-1]")]
    PacketBeforeConnAck(PacketType),
    /// "The Server MUST NOT send more than one CONNACK in a Network Connection" [MQTT-3.2.0-2].
    #[error("second CONNACK on one connection [MQTT-3.2.0-2]")]
    SecondConnAck,
    /// A packet the peer's role never sends (a PINGREQ sent to a client, a SUBACK sent to a
    /// server, a DISCONNECT from an MQTT 3.1.1 server, an AUTH before MQTT 5).
    #[error("{packet:?} may not be sent by the {sender:?}")]
    WrongDirection {
        /// The offending packet.
        packet: PacketType,
        /// Who sent it.
        sender: Role,
    },
    /// "If the Client does not have Session State and receives Session Present set to 1 it
    /// MUST close the Network Connection" [MQTT-3.2.2-4].
    #[error("CONNACK says session present but the client has no session state [MQTT-3.2.2-4]")]
    UnexpectedSessionPresent,
    /// More unacknowledged QoS 1 and 2 PUBLISH packets than our Receive Maximum allows
    /// ([MQTT-3.3.4-7] for a client, [MQTT-3.3.4-9] for a server).
    #[error("more than {maximum} unacknowledged QoS 1/2 publishes received (Receive Maximum)")]
    ReceiveMaximumExceeded {
        /// Our Receive Maximum.
        maximum: u16,
        /// Who exceeded it.
        sender: Role,
    },
    /// A Topic Alias of 0 or above the maximum we announced (3.3.2.3.4): [MQTT-3.3.2-8],
    /// [MQTT-3.3.2-9], [MQTT-3.3.2-11].
    #[error("topic alias {alias} is outside 1..={maximum}")]
    TopicAliasInvalid {
        /// The alias the peer sent.
        alias: u16,
        /// Our Topic Alias Maximum.
        maximum: u16,
        /// Who sent it.
        sender: Role,
    },
    /// An empty topic name with a Topic Alias that has no mapping on this connection (3.3.2.3.4).
    #[error("topic alias {0} has no topic on this connection")]
    UnknownTopicAlias(u16),
    /// "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias"
    /// (3.3.2.3.4).
    #[error("PUBLISH with an empty topic name and no topic alias")]
    MissingTopicName,
    /// A PUBLISH above the Maximum QoS we announced in CONNACK (3.2.2.3.4) [MQTT-3.2.2-11].
    #[error("PUBLISH at {qos:?} exceeds the maximum QoS {maximum:?} [MQTT-3.2.2-11]")]
    QoSNotSupported {
        /// QoS of the PUBLISH.
        qos: QoS,
        /// Our Maximum QoS.
        maximum: QoS,
    },
    /// A retained PUBLISH although we announced Retain Available = 0 [MQTT-3.2.2-14].
    #[error("retained PUBLISH although retain is not available [MQTT-3.2.2-14]")]
    RetainNotSupported,
    /// A QoS 1 or 2 PUBLISH without a packet identifier; the codec never produces one.
    #[error("QoS 1/2 PUBLISH without a packet identifier")]
    MissingPacketId,
    /// A packet identifier already used by an unfinished exchange of another kind.
    #[error("packet identifier {0} is already in use [MQTT-2.2.1-3]")]
    PacketIdInUse(PacketId),
    /// An acknowledgement that does not fit the exchange its packet identifier belongs to
    /// (a PUBACK for a QoS 2 message, a PUBCOMP before PUBREL, a PUBREL before our PUBREC, ...)
    /// [MQTT-2.2.1-5].
    #[error(
        "{packet:?} for packet identifier {packet_id} does not fit its exchange [MQTT-2.2.1-5]"
    )]
    UnexpectedAck {
        /// The acknowledgement.
        packet: PacketType,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// A SUBACK or UNSUBACK whose identifier matches no request we sent [MQTT-2.2.1-6].
    #[error("{packet:?} for packet identifier {packet_id} matches no request [MQTT-2.2.1-6]")]
    UnknownRequest {
        /// SUBACK or UNSUBACK.
        packet: PacketType,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// A SUBACK or UNSUBACK that does not carry one reason code per topic filter
    /// ([MQTT-3.8.4-6], [MQTT-3.11.3-1]).
    #[error("{packet:?} carries {got} reason codes for {expected} topic filters")]
    ReasonCodeCount {
        /// SUBACK or UNSUBACK.
        packet: PacketType,
        /// Number of topic filters in the request.
        expected: usize,
        /// Number of reason codes in the answer.
        got: usize,
    },
    /// "If the Session Expiry Interval in the CONNECT packet was zero, then it is a Protocol
    /// Error to set a non-zero Session Expiry Interval in the DISCONNECT packet sent by the
    /// Client" (3.14.2.2.2).
    #[error("DISCONNECT sets a session expiry although CONNECT had none (3.14.2.2.2)")]
    SessionExpiryAfterZero,
    /// An AUTH packet although CONNECT carried no Authentication Method ([MQTT-4.12.0-6],
    /// [MQTT-4.12.0-7]).
    #[error("AUTH without an authentication method in CONNECT [MQTT-4.12.0-6]")]
    AuthWithoutMethod,
    /// Nothing arrived from the client within one and a half times the Keep Alive
    /// [MQTT-3.1.2-24].
    #[error("nothing received for 1.5 x keep alive ({keep_alive:?}) [MQTT-3.1.2-24]")]
    KeepAliveTimeout {
        /// The Keep Alive in force.
        keep_alive: Duration,
    },
    /// No PINGRESP arrived in time after our PINGREQ (3.1.2.10: the client "SHOULD close the
    /// Network Connection").
    #[error("no PINGRESP within {0:?}")]
    PingTimeout(Duration),
    /// The client sent no CONNECT within the configured connect timeout.
    #[error("no CONNECT within {0:?}")]
    ConnectTimeout(Duration),
    /// The server sent no CONNACK within the configured timeout.
    #[error("no CONNACK within {0:?}")]
    ConnAckTimeout(Duration),
    /// The client sent more packets after CONNECT than the server holds while the application
    /// decides whether to accept it.
    #[error("more than {0} packets received while the CONNECT awaited an answer")]
    TooManyPacketsBeforeConnAck(usize),
    /// A packet that belongs on the control stream of a multi-stream QUIC connection
    /// (CONNECT, PINGREQ, DISCONNECT, AUTH) arrived on a data stream.
    #[error("{0:?} may only be sent on the control stream, not on a data stream")]
    ControlPacketOnDataStream(PacketType),
}

impl SessionError {
    /// The MQTT 5 reason code that reports this error, in a DISCONNECT where one is sent.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::MissingPacketId => ReasonCode::MalformedPacket,
            Self::ReceiveMaximumExceeded { .. } => ReasonCode::ReceiveMaximumExceeded,
            Self::TopicAliasInvalid { .. } => ReasonCode::TopicAliasInvalid,
            Self::QoSNotSupported { .. } => ReasonCode::QoSNotSupported,
            Self::RetainNotSupported => ReasonCode::RetainNotSupported,
            Self::KeepAliveTimeout { .. } | Self::PingTimeout(_) => ReasonCode::KeepAliveTimeout,
            Self::ConnectTimeout(_) | Self::ConnAckTimeout(_) => ReasonCode::UnspecifiedError,
            Self::TooManyPacketsBeforeConnAck(_) => ReasonCode::QuotaExceeded,
            Self::FirstPacketNotConnect(_)
            | Self::SecondConnect
            | Self::PacketBeforeConnAck(_)
            | Self::SecondConnAck
            | Self::WrongDirection { .. }
            | Self::UnexpectedSessionPresent
            | Self::UnknownTopicAlias(_)
            | Self::MissingTopicName
            | Self::PacketIdInUse(_)
            | Self::UnexpectedAck { .. }
            | Self::UnknownRequest { .. }
            | Self::ReasonCodeCount { .. }
            | Self::SessionExpiryAfterZero
            | Self::AuthWithoutMethod
            | Self::ControlPacketOnDataStream(_) => ReasonCode::ProtocolError,
        }
    }

    /// The conformance statement the peer broke, where the spec numbers it.
    pub fn conformance(&self) -> Option<&'static str> {
        Some(match self {
            Self::FirstPacketNotConnect(_) => "MQTT-3.1.0-1",
            Self::SecondConnect => "MQTT-3.1.0-2",
            Self::PacketBeforeConnAck(_) => "MQTT-3.2.0-1",
            Self::SecondConnAck => "MQTT-3.2.0-2",
            Self::UnexpectedSessionPresent => "MQTT-3.2.2-4",
            Self::ReceiveMaximumExceeded { sender, .. } => match sender {
                Role::Client => "MQTT-3.3.4-7",
                Role::Server => "MQTT-3.3.4-9",
            },
            Self::TopicAliasInvalid { alias: 0, .. } => "MQTT-3.3.2-8",
            Self::TopicAliasInvalid { sender, .. } => match sender {
                Role::Client => "MQTT-3.3.2-9",
                Role::Server => "MQTT-3.3.2-11",
            },
            Self::QoSNotSupported { .. } => "MQTT-3.2.2-11",
            Self::RetainNotSupported => "MQTT-3.2.2-14",
            Self::PacketIdInUse(_) => "MQTT-2.2.1-3",
            Self::UnexpectedAck { .. } => "MQTT-2.2.1-5",
            Self::UnknownRequest { .. } => "MQTT-2.2.1-6",
            Self::ReasonCodeCount { packet, .. } => match packet {
                PacketType::UnsubAck => "MQTT-3.11.3-1",
                _ => "MQTT-3.8.4-6",
            },
            Self::AuthWithoutMethod => "MQTT-4.12.0-6",
            Self::KeepAliveTimeout { .. } => "MQTT-3.1.2-24",
            Self::WrongDirection { .. }
            | Self::UnknownTopicAlias(_)
            | Self::MissingTopicName
            | Self::MissingPacketId
            | Self::SessionExpiryAfterZero
            | Self::PingTimeout(_)
            | Self::ConnectTimeout(_)
            | Self::ConnAckTimeout(_)
            | Self::TooManyPacketsBeforeConnAck(_)
            | Self::ControlPacketOnDataStream(_) => return None,
        })
    }

    /// Whether the peer is still worth a DISCONNECT: after a timeout the link is presumed
    /// dead, except for the server's Keep Alive timeout, which MQTT 5 reports with 0x8D.
    pub(crate) fn is_reported_to_peer(&self) -> bool {
        !matches!(
            self,
            Self::PingTimeout(_) | Self::ConnectTimeout(_) | Self::ConnAckTimeout(_)
        )
    }
}

/// A request of the local application that the machine refused. The connection is unharmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The connection is not established yet (no successful CONNACK).
    #[error("the connection is not established yet")]
    NotConnected,
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// The peer's Receive Maximum is reached and the queue of waiting publishes is full; the
    /// publish is handed back so the caller can keep it in its own queue.
    #[error("send quota and publish queue are full")]
    QueueFull(Box<Publish>),
    /// Every packet identifier is in use [MQTT-2.2.1-3].
    #[error("all 65535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The packet is larger than the peer's Maximum Packet Size ([MQTT-3.1.2-27],
    /// [MQTT-3.2.2-15]); it was not sent.
    #[error("packet of {size} bytes exceeds the peer's maximum packet size {maximum}")]
    PacketTooLarge {
        /// Encoded size of the packet.
        size: usize,
        /// The peer's Maximum Packet Size.
        maximum: u32,
    },
    /// The server's Maximum QoS is lower than the publish asks for [MQTT-3.2.2-11].
    #[error("QoS {requested:?} exceeds the server's maximum QoS {maximum:?} [MQTT-3.2.2-11]")]
    QoSNotSupported {
        /// QoS of the publish.
        requested: QoS,
        /// The server's Maximum QoS.
        maximum: QoS,
    },
    /// The server does not support retained messages [MQTT-3.2.2-14].
    #[error("the server does not support retained messages [MQTT-3.2.2-14]")]
    RetainNotSupported,
    /// A publish needs a topic name; topic aliases are chosen by the machine.
    #[error("publish has an empty topic name")]
    EmptyTopic,
    /// A SUBSCRIBE or UNSUBSCRIBE needs at least one topic filter ([MQTT-3.8.3-2],
    /// [MQTT-3.10.3-2]).
    #[error("no topic filter given")]
    NoTopicFilters,
    /// No incoming message, SUBSCRIBE or UNSUBSCRIBE awaits an answer under this identifier.
    #[error("nothing awaits an answer under packet identifier {0}")]
    UnknownPacketId(PacketId),
    /// The answer does not carry one reason code per topic filter of the request.
    #[error("answer has {got} reason codes for {expected} topic filters")]
    ReasonCodeCount {
        /// Number of topic filters in the request.
        expected: usize,
        /// Number of reason codes given.
        got: usize,
    },
    /// The reason code is not one the packet may carry.
    #[error("reason code {reason_code} is not allowed in {packet:?}")]
    InvalidReasonCode {
        /// The packet being built.
        packet: PacketType,
        /// The refused code.
        reason_code: ReasonCode,
    },
    /// A non-zero Session Expiry Interval in DISCONNECT after a CONNECT with zero (3.14.2.2.2).
    #[error("cannot set a session expiry on DISCONNECT after connecting with none")]
    SessionExpiryAfterZero,
    /// The feature exists only in MQTT 5 (AUTH, for example).
    #[error("{0} requires MQTT 5")]
    RequiresV5(&'static str),
    /// AUTH needs an Authentication Method in CONNECT ([MQTT-4.12.0-6], [MQTT-4.12.0-7]).
    #[error("AUTH needs an authentication method in CONNECT [MQTT-4.12.0-7]")]
    NoAuthenticationMethod,
    /// The server has no CONNECT waiting for an answer (none yet, or already answered).
    #[error("no CONNECT awaits an answer")]
    NoPendingConnect,
    /// The client sent an empty client identifier, so CONNACK must carry an Assigned Client
    /// Identifier [MQTT-3.2.2-16].
    #[error("CONNACK must assign a client identifier [MQTT-3.2.2-16]")]
    MissingAssignedClientId,
    /// A CONNACK refusing a connection needs a reason code of 0x80 or more.
    #[error("reason code {0} does not refuse a connection")]
    NotARefusal(ReasonCode),
    /// The packet belongs on the control stream of a multi-stream QUIC connection (AUTH), not
    /// on the data stream this machine serves.
    #[error("{0:?} may only be sent on the control stream, not on a data stream")]
    ControlStreamOnly(PacketType),
}
