//! The MQTT control packets (section 3) as one type set for every protocol version. Fields that
//! only exist in MQTT 5 (properties, most reason codes) keep their defaults before 5.0 and are
//! neither written nor read there.

use bytes::Bytes;

use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::string::MqttString;
use crate::topic::{TopicFilter, TopicName};
use crate::types::{PacketId, ProtocolVersion, QoS, SubscriptionOptions};

/// The control packet types (2.1.2), by their four-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (3.1).
    Connect(Box<Connect>),
    /// CONNACK (3.2).
    ConnAck(ConnAck),
    /// PUBLISH (3.3).
    Publish(Publish),
    /// PUBACK (3.4).
    PubAck(PubAck),
    /// PUBREC (3.5).
    PubRec(PubAck),
    /// PUBREL (3.6).
    PubRel(PubAck),
    /// PUBCOMP (3.7).
    PubComp(PubAck),
    /// SUBSCRIBE (3.8).
    Subscribe(Subscribe),
    /// SUBACK (3.9).
    SubAck(SubAck),
    /// UNSUBSCRIBE (3.10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (3.11).
    UnsubAck(UnsubAck),
    /// PINGREQ (3.12).
    PingReq,
    /// PINGRESP (3.13).
    PingResp,
    /// DISCONNECT (3.14).
    Disconnect(Disconnect),
    /// AUTH (3.15), MQTT 5 only.
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }
}

/// CONNECT: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol name and level.
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) or Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 switches the mechanism off.
    pub keep_alive: u16,
    /// Client identifier; may be empty (the server then assigns one or refuses).
    pub client_id: MqttString,
    /// The will message, if any.
    pub will: Option<Will>,
    /// User name, if any.
    pub username: Option<MqttString>,
    /// Password, if any (binary data).
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0).
    pub properties: Properties,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// Will payload.
    pub payload: Bytes,
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will is published as retained.
    pub retain: bool,
    /// Will properties (5.0): delay, expiry, content type, response topic, ...
    pub properties: Properties,
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// Outcome; 3.1.1 return codes are mapped onto reason codes.
    pub reason_code: ReasonCode,
    /// CONNACK properties (5.0).
    pub properties: Properties,
}

/// PUBLISH: an application message.
///
/// `packet_id` is `Some` exactly when `qos` is 1 or 2; the codec enforces it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery of an earlier attempt.
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; empty only when a topic alias stands for it (5.0).
    pub topic: TopicName,
    /// Packet identifier, for QoS 1 and 2.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (5.0).
    pub properties: Properties,
    /// Application payload; a slice of the receive buffer when decoded.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubAck {
    /// Identifier of the PUBLISH (or PUBREL) being acknowledged.
    pub packet_id: PacketId,
    /// Outcome (5.0); always Success before 5.0.
    pub reason_code: ReasonCode,
    /// Reason string and user properties (5.0).
    pub properties: Properties,
}

impl PubAck {
    /// A successful acknowledgement with no properties.
    pub fn success(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        }
    }
}

/// SUBSCRIBE: one or more topic filters with their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Filters with their options; never empty on the wire [MQTT-3.8.3-2].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// Subscription identifier and user properties (5.0).
    pub properties: Properties,
}

/// SUBACK: one reason code per filter of the SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Granted QoS or failure, one per filter, in order.
    pub reason_codes: Vec<ReasonCode>,
    /// Reason string and user properties (5.0).
    pub properties: Properties,
}

/// UNSUBSCRIBE: one or more topic filters to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Filters; never empty on the wire [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
    /// User properties (5.0).
    pub properties: Properties,
}

/// UNSUBACK: in 5.0 one reason code per filter; in 3.1.1 just the packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One per filter (5.0); empty before 5.0.
    pub reason_codes: Vec<ReasonCode>,
    /// Reason string and user properties (5.0).
    pub properties: Properties,
}

/// DISCONNECT, sent by either side in 5.0 and by the client only before.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends (5.0); Normal disconnection before 5.0.
    pub reason_code: ReasonCode,
    /// Session expiry, reason string, server reference, user properties (5.0).
    pub properties: Properties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: Properties::default(),
        }
    }
}

/// AUTH: a step of MQTT 5 enhanced authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// Authentication method and data, reason string, user properties.
    pub properties: Properties,
}
