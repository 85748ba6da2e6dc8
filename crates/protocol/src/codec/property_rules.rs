//! Which MQTT 5 property may appear where (table 2-4 of 2.2.2.2) and which may repeat. These
//! rules are data about the spec, separate from reading and writing the values, so that a
//! session layer can consult them too.

use crate::properties::PropertyId;

/// Where a property set sits: the packet that carries it, or the will of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PropertyContext {
    Connect,
    /// The will properties inside the CONNECT payload (3.1.3.2).
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl PropertyId {
    /// Every property identifier, in numeric order.
    pub const ALL: [Self; 27] = [
        Self::PayloadFormatIndicator,
        Self::MessageExpiryInterval,
        Self::ContentType,
        Self::ResponseTopic,
        Self::CorrelationData,
        Self::SubscriptionIdentifier,
        Self::SessionExpiryInterval,
        Self::AssignedClientIdentifier,
        Self::ServerKeepAlive,
        Self::AuthenticationMethod,
        Self::AuthenticationData,
        Self::RequestProblemInformation,
        Self::WillDelayInterval,
        Self::RequestResponseInformation,
        Self::ResponseInformation,
        Self::ServerReference,
        Self::ReasonString,
        Self::ReceiveMaximum,
        Self::TopicAliasMaximum,
        Self::TopicAlias,
        Self::MaximumQoS,
        Self::RetainAvailable,
        Self::UserProperty,
        Self::MaximumPacketSize,
        Self::WildcardSubscriptionAvailable,
        Self::SubscriptionIdentifierAvailable,
        Self::SharedSubscriptionAvailable,
    ];

    /// The identifier byte on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Looks up an identifier; `None` for one the spec does not define.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL
            .binary_search_by_key(&value, |id| id.as_u8())
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Whether table 2-4 lets this property appear in `context`.
    pub fn allowed_in(self, context: PropertyContext) -> bool {
        use PropertyContext as C;
        let publish_and_will = C::Publish.bit() | C::Will.bit();
        let acks = C::PubAck.bit() | C::PubRec.bit() | C::PubRel.bit() | C::PubComp.bit();
        let allowed = match self {
            Self::PayloadFormatIndicator
            | Self::MessageExpiryInterval
            | Self::ContentType
            | Self::ResponseTopic
            | Self::CorrelationData => publish_and_will,
            Self::SubscriptionIdentifier => C::Publish.bit() | C::Subscribe.bit(),
            Self::SessionExpiryInterval => {
                C::Connect.bit() | C::ConnAck.bit() | C::Disconnect.bit()
            }
            Self::AuthenticationMethod | Self::AuthenticationData => {
                C::Connect.bit() | C::ConnAck.bit() | C::Auth.bit()
            }
            Self::RequestProblemInformation | Self::RequestResponseInformation => C::Connect.bit(),
            Self::WillDelayInterval => C::Will.bit(),
            Self::AssignedClientIdentifier
            | Self::ServerKeepAlive
            | Self::ResponseInformation
            | Self::MaximumQoS
            | Self::RetainAvailable
            | Self::WildcardSubscriptionAvailable
            | Self::SubscriptionIdentifierAvailable
            | Self::SharedSubscriptionAvailable => C::ConnAck.bit(),
            Self::ServerReference => C::ConnAck.bit() | C::Disconnect.bit(),
            Self::ReasonString => {
                C::ConnAck.bit()
                    | acks
                    | C::SubAck.bit()
                    | C::UnsubAck.bit()
                    | C::Disconnect.bit()
                    | C::Auth.bit()
            }
            Self::ReceiveMaximum | Self::TopicAliasMaximum | Self::MaximumPacketSize => {
                C::Connect.bit() | C::ConnAck.bit()
            }
            Self::TopicAlias => C::Publish.bit(),
            Self::UserProperty => u16::MAX,
        };
        allowed & context.bit() != 0
    }

    /// Whether the property may appear more than once in `context`: User Property always
    /// (2.2.2.2), Subscription Identifier in a PUBLISH (3.3.2.3.8). Repeating any other is a
    /// Protocol Error.
    pub fn may_repeat(self, context: PropertyContext) -> bool {
        self == Self::UserProperty
            || (self == Self::SubscriptionIdentifier && context == PropertyContext::Publish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identifier_round_trips_through_from_u8() {
        for id in PropertyId::ALL {
            assert_eq!(PropertyId::from_u8(id.as_u8()), Some(id));
        }
        for undefined in [0x00, 0x04, 0x0A, 0x14, 0x1B, 0x20, 0x2B, 0xFF] {
            assert_eq!(PropertyId::from_u8(undefined), None);
        }
    }

    #[test]
    fn table_2_4_examples() {
        use PropertyContext as C;
        assert!(PropertyId::TopicAlias.allowed_in(C::Publish));
        assert!(!PropertyId::TopicAlias.allowed_in(C::Will));
        assert!(PropertyId::WillDelayInterval.allowed_in(C::Will));
        assert!(!PropertyId::WillDelayInterval.allowed_in(C::Connect));
        assert!(PropertyId::SessionExpiryInterval.allowed_in(C::Disconnect));
        assert!(!PropertyId::ReasonString.allowed_in(C::Publish));
        assert!(PropertyId::UserProperty.allowed_in(C::Auth));
        assert!(PropertyId::SubscriptionIdentifier.may_repeat(C::Publish));
        assert!(!PropertyId::SubscriptionIdentifier.may_repeat(C::Subscribe));
    }
}
