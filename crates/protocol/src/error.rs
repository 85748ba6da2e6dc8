//! `ProtocolError`: every way a byte stream can break the MQTT rules, and every packet the codec
//! refuses to encode. Each variant knows the MQTT 5 reason code a server answers with (2.4,
//! 4.13) and, where the spec gives one, the conformance statement it breaks. This module only
//! names and classifies errors; the codec decides when to raise them.

use crate::codec::PropertyContext;
use crate::packet::PacketType;
use crate::properties::PropertyId;
use crate::reason::ReasonCode;
use crate::string::StringError;
use crate::topic::TopicError;
use crate::types::ProtocolVersion;

/// A violation of the MQTT rules found while decoding, or a packet that cannot be encoded.
///
/// On a decode error the connection is going to be closed: a server sends CONNACK or
/// DISCONNECT with [`ProtocolError::reason_code`] first when the protocol version allows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    // ----- framing -------------------------------------------------------------------------
    /// A Variable Byte Integer with a continuation bit on its fourth byte: "The maximum number
    /// of bytes in the Variable Byte Integer field is four" (1.5.5).
    #[error("variable byte integer longer than four bytes [MQTT-1.5.5-1]")]
    VarIntTooLong,
    /// A Variable Byte Integer that uses more bytes than its value needs (MQTT 5 only): "The
    /// encoded value MUST use the minimum number of bytes necessary to represent the value"
    /// [MQTT-1.5.5-1].
    #[error("variable byte integer is not minimally encoded [MQTT-1.5.5-1]")]
    VarIntNotMinimal,
    /// The packet (fixed header plus remaining length) exceeds the receiver's limit.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size the fixed header announces.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// Packet type 0, or 15 (AUTH) before MQTT 5: "Reserved" / "Forbidden" (2.1.2).
    #[error("packet type {packet_type} is reserved in MQTT {version}")]
    ReservedPacketType {
        /// The four high bits of the first byte.
        packet_type: u8,
        /// The protocol version in force.
        version: ProtocolVersion,
    },
    /// Fixed-header flag bits that differ from the value the spec fixes for this packet type.
    #[error("invalid fixed header flags {flags:#06b} for {packet_type:?}")]
    InvalidFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The four low bits of the first byte.
        flags: u8,
        /// The protocol version in force; the conformance id differs between versions.
        version: ProtocolVersion,
    },
    /// The remaining length ends before a field that must be there.
    #[error("packet ends before its {field}")]
    Truncated {
        /// The field that could not be read.
        field: &'static str,
    },
    /// Bytes left over after everything the packet declares.
    #[error("{extra} unexpected bytes at the end of {packet_type:?}")]
    TrailingBytes {
        /// The packet type.
        packet_type: PacketType,
        /// How many bytes were left.
        extra: usize,
    },
    /// A packet other than CONNECT arrived before the protocol version was known: "the first
    /// packet sent from the Client to the Server MUST be a CONNECT packet" [MQTT-3.1.0-1].
    #[error("expected CONNECT as the first packet, got packet type {packet_type} [MQTT-3.1.0-1]")]
    ExpectedConnect {
        /// The four high bits of the first byte.
        packet_type: u8,
    },

    // ----- strings and topics --------------------------------------------------------------
    /// A UTF-8 string field breaks the rules of 1.5.4.
    #[error("invalid {field}: {error}")]
    InvalidString {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        error: StringError,
    },
    /// A topic name that is not valid (4.7).
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A topic filter that is not valid (4.7, 4.8.2).
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A Response Topic that is not a valid topic name: "The Response Topic MUST NOT contain
    /// wildcard characters" [MQTT-3.3.2-14].
    #[error("invalid response topic: {0} [MQTT-3.3.2-14]")]
    InvalidResponseTopic(TopicError),

    // ----- CONNECT / CONNACK ---------------------------------------------------------------
    /// A protocol name or level this codec does not speak. The server may answer CONNACK 0x84
    /// (5.0) or return code 1 (3.1.1) before closing [MQTT-3.1.2-1] [MQTT-3.1.2-2].
    #[error("unsupported protocol {name:?} level {level}")]
    UnsupportedProtocol {
        /// The protocol name as sent (lossily decoded for display).
        name: String,
        /// The protocol level byte.
        level: u8,
    },
    /// "The Server MUST validate that the reserved flag in the CONNECT packet is set to 0"
    /// [MQTT-3.1.2-3].
    #[error("CONNECT reserved flag is set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    /// "If the Will Flag is set to 0, then the Will QoS MUST be set to 0": [MQTT-3.1.2-11] in
    /// 5.0, [MQTT-3.1.2-13] in 3.1.1. `v5` tells which numbering applies.
    #[error("will QoS set without the will flag [{}]", will_rule(*v5, 11, 13))]
    WillQoSWithoutWill {
        /// Whether the CONNECT was MQTT 5.
        v5: bool,
    },
    /// "If the Will Flag is set to 1, the value of Will QoS can be 0, 1, or 2": [MQTT-3.1.2-12]
    /// in 5.0, [MQTT-3.1.2-14] in 3.1.1.
    #[error("will QoS 3 [{}]", will_rule(*v5, 12, 14))]
    WillQoSInvalid {
        /// Whether the CONNECT was MQTT 5.
        v5: bool,
    },
    /// "If the Will Flag is set to 0, then Will Retain MUST be set to 0": [MQTT-3.1.2-13] in
    /// 5.0, [MQTT-3.1.2-15] in 3.1.1.
    #[error("will retain set without the will flag [{}]", will_rule(*v5, 13, 15))]
    WillRetainWithoutWill {
        /// Whether the CONNECT was MQTT 5.
        v5: bool,
    },
    /// MQTT 3.1.1: "If the User Name Flag is set to 0, the Password Flag MUST be set to 0"
    /// [MQTT-3.1.2-22]. MQTT 5 lifts this rule.
    #[error("password without user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// CONNACK acknowledge flags with a reserved bit set: "Bits 7-1 are reserved and MUST be
    /// set to 0" (3.2.2.1).
    #[error("CONNACK reserved flags set: {flags:#04x}")]
    ConnAckReservedFlags {
        /// The acknowledge flags byte.
        flags: u8,
        /// The protocol version in force.
        version: ProtocolVersion,
    },
    /// Session Present set on a refused connection: "If a Server sends a CONNACK packet
    /// containing a non-zero Reason Code it MUST set Session Present to 0".
    #[error("CONNACK refuses the connection but claims a session is present")]
    SessionPresentOnFailure {
        /// The protocol version in force; the conformance id differs between versions.
        version: ProtocolVersion,
    },

    // ----- PUBLISH and packet identifiers --------------------------------------------------
    /// "A PUBLISH Packet MUST NOT have both QoS bits set to 1" [MQTT-3.3.1-4].
    #[error("PUBLISH with QoS 3 [MQTT-3.3.1-4]")]
    PublishQoS3,
    /// "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
    #[error("PUBLISH with DUP set on QoS 0 [MQTT-3.3.1-2]")]
    DupOnQoS0,
    /// A packet identifier of zero, which is never valid.
    #[error("packet identifier 0 in {packet_type:?}")]
    ZeroPacketId {
        /// The packet type.
        packet_type: PacketType,
        /// The protocol version in force; the conformance id differs between versions.
        version: ProtocolVersion,
    },
    /// A PUBLISH whose QoS and packet identifier disagree (encoding only): QoS 1 and 2 need
    /// one [MQTT-2.2.1-3], QoS 0 must not have one [MQTT-2.2.1-2].
    #[error("PUBLISH QoS {qos} does not match packet identifier presence ({has_packet_id})")]
    PacketIdMismatch {
        /// The QoS of the PUBLISH.
        qos: u8,
        /// Whether a packet identifier was given.
        has_packet_id: bool,
    },
    /// "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias"
    /// (3.3.2.3.4).
    #[error("PUBLISH with an empty topic name and no topic alias")]
    EmptyTopicWithoutAlias,

    // ----- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------
    /// A SUBSCRIBE or UNSUBSCRIBE without a single topic filter.
    #[error("{packet_type:?} without topic filters")]
    NoTopicFilters {
        /// SUBSCRIBE or UNSUBSCRIBE.
        packet_type: PacketType,
        /// The protocol version in force; the conformance id differs between versions.
        version: ProtocolVersion,
    },
    /// Reserved bits set in a subscription options byte.
    #[error("reserved bits set in subscription options {options:#04x}")]
    SubscriptionOptionsReserved {
        /// The options byte.
        options: u8,
        /// The protocol version in force; the rule differs between versions.
        version: ProtocolVersion,
    },
    /// A subscription asking for QoS 3.
    #[error("subscription with maximum QoS 3")]
    SubscriptionQoS3 {
        /// The protocol version in force; 3.1.1 calls it malformed, 5.0 a protocol error.
        version: ProtocolVersion,
    },
    /// "It is a Protocol Error to send a Retain Handling value of 3" (3.8.3.1).
    #[error("subscription with retain handling 3")]
    RetainHandling3,
    /// "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
    /// [MQTT-3.8.3-4].
    #[error("no local set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription,

    // ----- reason codes --------------------------------------------------------------------
    /// A reason code (or 3.1.1 return code) that the packet type does not allow.
    #[error("reason code {code:#04x} is not allowed in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The byte as sent.
        code: u8,
    },

    // ----- properties ----------------------------------------------------------------------
    /// A property identifier the spec does not define (2.2.2.2).
    #[error("unknown property identifier {id:#04x}")]
    UnknownProperty {
        /// The identifier as sent.
        id: u32,
    },
    /// "A Control Packet which contains an Identifier which is not valid for its packet type
    /// ... is a Malformed Packet" (2.2.2.2).
    #[error("property {property:?} is not allowed in {context:?}")]
    PropertyNotAllowed {
        /// The property.
        property: PropertyId,
        /// Where it appeared.
        context: PropertyContext,
    },
    /// A property that may appear at most once appeared again ("It is a Protocol Error to
    /// include ... more than once").
    #[error("property {0:?} appears more than once")]
    DuplicateProperty(PropertyId),
    /// A property value the spec forbids: receive maximum 0, maximum packet size 0,
    /// subscription identifier 0, a boolean other than 0 or 1, maximum QoS above 1.
    #[error("property {property:?} has the invalid value {value}")]
    InvalidPropertyValue {
        /// The property.
        property: PropertyId,
        /// The value as sent.
        value: u32,
    },
    /// "A sender MUST NOT send a PUBLISH packet containing a Topic Alias which has the value
    /// 0" [MQTT-3.3.2-8].
    #[error("topic alias 0 [MQTT-3.3.2-8]")]
    TopicAliasZero,
    /// "It is a Protocol Error to include Authentication Data if there is no Authentication
    /// Method" (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3).
    #[error("authentication data without an authentication method")]
    AuthenticationDataWithoutMethod,
    /// The property length runs past the end of the packet.
    #[error("property length {declared} exceeds the {available} bytes left in the packet")]
    PropertyLengthExceeded {
        /// The property length as sent.
        declared: u32,
        /// Bytes left in the packet after the property length.
        available: usize,
    },

    // ----- encoding only -------------------------------------------------------------------
    /// A packet type that does not exist in this protocol version (AUTH before 5.0).
    #[error("{packet_type:?} does not exist in MQTT {version}")]
    PacketNotInVersion {
        /// The packet type.
        packet_type: PacketType,
        /// The protocol version asked for.
        version: ProtocolVersion,
    },
    /// A packet whose remaining length would exceed 268,435,455 bytes (2.1.4).
    #[error("remaining length {length} exceeds 268435455 bytes")]
    RemainingLengthTooLarge {
        /// The remaining length the packet would need.
        length: usize,
    },
    /// Binary data longer than the 65,535 bytes a two-byte length prefix allows (1.5.6).
    #[error("{field} is {len} bytes long; binary data is at most 65535 bytes")]
    BinaryTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

impl ProtocolError {
    /// The MQTT 5 reason code a server (or client) sends in CONNACK or DISCONNECT before
    /// closing the connection because of this error.
    pub fn reason_code(&self) -> ReasonCode {
        use ReasonCode as R;
        match self {
            Self::VarIntTooLong
            | Self::VarIntNotMinimal
            | Self::ReservedPacketType { .. }
            | Self::InvalidFlags { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::InvalidString { .. }
            | Self::ConnectReservedFlag
            | Self::WillQoSWithoutWill { .. }
            | Self::WillQoSInvalid { .. }
            | Self::WillRetainWithoutWill { .. }
            | Self::PasswordWithoutUsername
            | Self::ConnAckReservedFlags { .. }
            | Self::PublishQoS3
            | Self::DupOnQoS0
            | Self::SubscriptionOptionsReserved { .. }
            | Self::InvalidReasonCode { .. }
            | Self::UnknownProperty { .. }
            | Self::PropertyNotAllowed { .. }
            | Self::PropertyLengthExceeded { .. } => R::MalformedPacket,
            Self::SubscriptionQoS3 { version } => {
                if version.is_v5() {
                    R::ProtocolError
                } else {
                    R::MalformedPacket
                }
            }
            // A string that is not UTF-8 inside a topic is a malformed string first.
            Self::InvalidTopicName(TopicError::String(_))
            | Self::InvalidTopicFilter(TopicError::String(_))
            | Self::InvalidResponseTopic(TopicError::String(_)) => R::MalformedPacket,
            Self::InvalidTopicName(_) => R::TopicNameInvalid,
            Self::InvalidTopicFilter(_) => R::TopicFilterInvalid,
            Self::ExpectedConnect { .. }
            | Self::InvalidResponseTopic(_)
            | Self::SessionPresentOnFailure { .. }
            | Self::PacketIdMismatch { .. }
            // A zero identifier parses; it is data the protocol does not allow (4.13).
            | Self::ZeroPacketId { .. }
            | Self::EmptyTopicWithoutAlias
            | Self::NoTopicFilters { .. }
            | Self::RetainHandling3
            | Self::NoLocalOnSharedSubscription
            | Self::DuplicateProperty(_)
            | Self::InvalidPropertyValue { .. }
            | Self::AuthenticationDataWithoutMethod
            | Self::PacketNotInVersion { .. } => R::ProtocolError,
            Self::UnsupportedProtocol { .. } => R::UnsupportedProtocolVersion,
            Self::TopicAliasZero => R::TopicAliasInvalid,
            Self::PacketTooLarge { .. } | Self::RemainingLengthTooLarge { .. } => R::PacketTooLarge,
            Self::BinaryTooLong { .. } => R::ImplementationSpecificError,
        }
    }

    /// The conformance statement of the spec this error breaks, such as `"MQTT-3.1.2-3"`, or
    /// `None` where the rule has no number. Numbers follow the MQTT 5.0 text unless the error
    /// carries a version and MQTT 3.1.1 numbers the rule differently.
    pub fn conformance(&self) -> Option<&'static str> {
        let id = match self {
            Self::VarIntTooLong | Self::VarIntNotMinimal => "MQTT-1.5.5-1",
            Self::InvalidFlags {
                packet_type,
                version,
                ..
            } => match packet_type {
                PacketType::PubRel => "MQTT-3.6.1-1",
                PacketType::Subscribe => "MQTT-3.8.1-1",
                PacketType::Unsubscribe => "MQTT-3.10.1-1",
                PacketType::Publish => "MQTT-3.3.1-4",
                PacketType::Disconnect if version.is_v5() => "MQTT-3.14.1-1",
                PacketType::Auth => "MQTT-3.15.1-1",
                _ if version.is_v5() => "MQTT-2.1.3-1",
                _ => "MQTT-2.2.2-1",
            },
            Self::ExpectedConnect { .. } => "MQTT-3.1.0-1",
            Self::InvalidString { error, .. } => return string_conformance(*error),
            Self::InvalidTopicName(error) => match error {
                TopicError::String(e) => return string_conformance(*e),
                TopicError::WildcardInName => "MQTT-3.3.2-2",
                other => return topic_conformance(*other),
            },
            Self::InvalidTopicFilter(error) => return topic_conformance(*error),
            Self::InvalidResponseTopic(error) => match error {
                TopicError::String(e) => return string_conformance(*e),
                _ => "MQTT-3.3.2-14",
            },
            Self::UnsupportedProtocol { name, .. } => {
                if name == "MQTT" || name == "MQIsdp" {
                    "MQTT-3.1.2-2"
                } else {
                    "MQTT-3.1.2-1"
                }
            }
            Self::ConnectReservedFlag => "MQTT-3.1.2-3",
            Self::WillQoSWithoutWill { v5 } => will_rule(*v5, 11, 13),
            Self::WillQoSInvalid { v5 } => will_rule(*v5, 12, 14),
            Self::WillRetainWithoutWill { v5 } => will_rule(*v5, 13, 15),
            Self::PasswordWithoutUsername => "MQTT-3.1.2-22",
            Self::ConnAckReservedFlags { version, .. } => {
                // 3.1.1 states the same rule without a number.
                if version.is_v5() {
                    "MQTT-3.2.2-1"
                } else {
                    return None;
                }
            }
            Self::SessionPresentOnFailure { version } => {
                if version.is_v5() {
                    "MQTT-3.2.2-6"
                } else {
                    "MQTT-3.2.2-4"
                }
            }
            Self::PublishQoS3 => "MQTT-3.3.1-4",
            Self::DupOnQoS0 => "MQTT-3.3.1-2",
            Self::ZeroPacketId { version, .. } => {
                if version.is_v5() {
                    "MQTT-2.2.1-3"
                } else {
                    "MQTT-2.3.1-1"
                }
            }
            Self::PacketIdMismatch { qos, .. } => {
                if *qos == 0 {
                    "MQTT-2.2.1-2"
                } else {
                    "MQTT-2.2.1-3"
                }
            }
            Self::NoTopicFilters {
                packet_type,
                version,
            } => match packet_type {
                PacketType::Subscribe if version.is_v5() => "MQTT-3.8.3-2",
                PacketType::Subscribe => "MQTT-3.8.3-3",
                _ => "MQTT-3.10.3-2",
            },
            // The 3.1.1 text spells this identifier "MQTT-3-8.3-4"; it is kept as printed so
            // that it can be found in the spec.
            Self::SubscriptionOptionsReserved { version, .. } => {
                if version.is_v5() {
                    "MQTT-3.8.3-5"
                } else {
                    "MQTT-3-8.3-4"
                }
            }
            Self::SubscriptionQoS3 { version } => {
                if version.is_v5() {
                    return None;
                }
                "MQTT-3-8.3-4"
            }
            Self::NoLocalOnSharedSubscription => "MQTT-3.8.3-4",
            Self::InvalidReasonCode { packet_type, .. } => match packet_type {
                PacketType::ConnAck => "MQTT-3.2.2-8",
                PacketType::PubAck => "MQTT-3.4.2-1",
                PacketType::PubRec => "MQTT-3.5.2-1",
                PacketType::PubRel => "MQTT-3.6.2-1",
                PacketType::PubComp => "MQTT-3.7.2-1",
                PacketType::SubAck => "MQTT-3.9.3-2",
                PacketType::UnsubAck => "MQTT-3.11.3-2",
                PacketType::Disconnect => "MQTT-3.14.2-1",
                PacketType::Auth => "MQTT-3.15.2-1",
                _ => return None,
            },
            Self::TopicAliasZero => "MQTT-3.3.2-8",
            Self::PacketTooLarge { .. }
            | Self::ReservedPacketType { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::EmptyTopicWithoutAlias
            | Self::RetainHandling3
            | Self::UnknownProperty { .. }
            | Self::PropertyNotAllowed { .. }
            | Self::DuplicateProperty(_)
            | Self::InvalidPropertyValue { .. }
            | Self::AuthenticationDataWithoutMethod
            | Self::PropertyLengthExceeded { .. }
            | Self::PacketNotInVersion { .. }
            | Self::RemainingLengthTooLarge { .. }
            | Self::BinaryTooLong { .. } => return None,
        };
        Some(id)
    }
}

fn string_conformance(error: StringError) -> Option<&'static str> {
    match error {
        StringError::InvalidUtf8 => Some("MQTT-1.5.4-1"),
        StringError::NullCharacter => Some("MQTT-1.5.4-2"),
        StringError::TooLong(_) => None,
    }
}

/// Topic rules as numbered in the MQTT 5.0 text (4.7, 4.8.2).
fn topic_conformance(error: TopicError) -> Option<&'static str> {
    Some(match error {
        TopicError::String(e) => return string_conformance(e),
        TopicError::Empty => "MQTT-4.7.3-1",
        TopicError::WildcardInName => "MQTT-4.7.0-1",
        TopicError::MultiLevelWildcardMisplaced => "MQTT-4.7.1-1",
        TopicError::SingleLevelWildcardMisplaced => "MQTT-4.7.1-2",
        TopicError::InvalidShare => "MQTT-4.8.2-1",
    })
}

impl From<StringError> for ProtocolError {
    fn from(error: StringError) -> Self {
        Self::InvalidString {
            field: "string",
            error,
        }
    }
}

/// The will rules of 3.1.2 are numbered differently in the two specs.
fn will_rule(v5: bool, in_v5: u8, in_v311: u8) -> &'static str {
    match if v5 { in_v5 } else { in_v311 } {
        11 => "MQTT-3.1.2-11",
        12 => "MQTT-3.1.2-12",
        13 => "MQTT-3.1.2-13",
        14 => "MQTT-3.1.2-14",
        _ => "MQTT-3.1.2-15",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_protocol_errors_carry_their_reason_codes() {
        assert_eq!(
            ProtocolError::ConnectReservedFlag.reason_code(),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            ProtocolError::DuplicateProperty(PropertyId::ReceiveMaximum).reason_code(),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            ProtocolError::InvalidTopicName(TopicError::WildcardInName).reason_code(),
            ReasonCode::TopicNameInvalid
        );
        assert_eq!(
            ProtocolError::InvalidTopicFilter(TopicError::String(StringError::NullCharacter))
                .reason_code(),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            ProtocolError::TopicAliasZero.reason_code(),
            ReasonCode::TopicAliasInvalid
        );
    }

    #[test]
    fn conformance_ids_follow_the_version() {
        let v5 = ProtocolError::ZeroPacketId {
            packet_type: PacketType::Subscribe,
            version: ProtocolVersion::V5,
        };
        let v311 = ProtocolError::ZeroPacketId {
            packet_type: PacketType::Subscribe,
            version: ProtocolVersion::V3_1_1,
        };
        assert_eq!(v5.conformance(), Some("MQTT-2.2.1-3"));
        assert_eq!(v311.conformance(), Some("MQTT-2.3.1-1"));
        assert_eq!(
            ProtocolError::InvalidFlags {
                packet_type: PacketType::PubRel,
                flags: 0,
                version: ProtocolVersion::V5
            }
            .conformance(),
            Some("MQTT-3.6.1-1")
        );
        assert_eq!(ProtocolError::RetainHandling3.conformance(), None);
    }
}
