//! MQTT 5 topic aliases (3.3.2.3.4) in both directions. Incoming: check each alias against the
//! Topic Alias Maximum we announced, learn mappings, and restore the topic name before the
//! application sees the message. Outgoing: give the first distinct topics an alias, up to the
//! smaller of the peer's maximum and our own budget, then send the alias alone. Mappings live
//! for one network connection only [MQTT-3.3.2-7].

use rustc_hash::FxHashMap;

use crate::packet::Publish;
use crate::topic::TopicName;

use super::error::SessionError;
use super::Role;

/// Aliases the peer defined for the PUBLISH packets it sends us.
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    /// The Topic Alias Maximum we announced; 0 means we accept none.
    maximum: u16,
    topics: FxHashMap<u16, TopicName>,
}

impl InboundAliases {
    pub(crate) fn new(maximum: u16) -> Self {
        Self {
            maximum,
            topics: FxHashMap::default(),
        }
    }

    /// Replaces an aliased empty topic with the full name and removes the alias property, so
    /// the application (and anything it forwards the message to) sees a plain PUBLISH.
    pub(crate) fn resolve(
        &mut self,
        publish: &mut Publish,
        sender: Role,
    ) -> Result<(), SessionError> {
        // Read before it is removed: a write gives an empty handle a set of its own, an
        // allocation the PUBLISH without an alias need not make.
        let Some(alias) = publish.properties.topic_alias else {
            if publish.topic.is_empty() {
                return Err(SessionError::MissingTopicName);
            }
            return Ok(());
        };
        publish.properties.topic_alias = None;
        // "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol
        // Error, the receiver uses DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)"
        // (3.3.2.3.4); [MQTT-3.3.2-10] and [MQTT-3.3.2-12] oblige us to accept 1..=maximum.
        if alias == 0 || alias > self.maximum {
            return Err(SessionError::TopicAliasInvalid {
                alias,
                maximum: self.maximum,
                sender,
            });
        }
        if publish.topic.is_empty() {
            let topic = self
                .topics
                .get(&alias)
                .ok_or(SessionError::UnknownTopicAlias(alias))?;
            publish.topic = topic.clone();
        } else {
            // A non-empty topic with an alias sets (or replaces) the mapping.
            self.topics.insert(alias, publish.topic.clone());
        }
        Ok(())
    }

    /// What an idle connection's incoming aliases keep when none is set (see
    /// `server/idle.rs`): the maximum. `None` while aliases are set.
    pub(crate) fn idle(&self) -> Option<u16> {
        let Self { maximum, topics } = self;
        topics.is_empty().then_some(*maximum)
    }
}

/// Aliases we define for the PUBLISH packets we send.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    /// How many aliases we may use: the smaller of the peer's Topic Alias Maximum and our
    /// configured budget. 0 switches aliasing off, as it must be when the peer announced no
    /// maximum ([MQTT-3.1.2-30], [MQTT-3.2.2-18]).
    limit: u16,
    assigned: FxHashMap<TopicName, u16>,
}

impl OutboundAliases {
    pub(crate) fn new(peer_maximum: u16, budget: u16) -> Self {
        Self {
            limit: peer_maximum.min(budget),
            assigned: FxHashMap::default(),
        }
    }

    /// Rewrites a PUBLISH about to be sent: the first time a topic is seen (while aliases
    /// remain) it goes out with its full name and a new alias; afterwards with the alias and
    /// an empty name. Aliases never exceed the peer's maximum ([MQTT-3.2.2-17],
    /// [MQTT-3.3.2-9], [MQTT-3.3.2-11]) and are never 0 [MQTT-3.3.2-8].
    pub(crate) fn apply(&mut self, publish: &mut Publish) {
        // Aliases are this machine's business; whatever the caller put there is replaced.
        if publish.properties.topic_alias.is_some() {
            // A write would give an empty handle a set of its own.
            publish.properties.topic_alias = None;
        }
        if self.limit == 0 || publish.topic.is_empty() {
            return;
        }
        if let Some(&alias) = self.assigned.get(&publish.topic) {
            publish.properties.topic_alias = Some(alias);
            publish.topic = TopicName::empty();
            return;
        }
        let used = u16::try_from(self.assigned.len()).unwrap_or(u16::MAX);
        if used < self.limit {
            let alias = used + 1;
            self.assigned.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }

    /// What an idle connection's outgoing aliases keep when none is assigned (see
    /// `server/idle.rs`): the limit. `None` while aliases are assigned.
    pub(crate) fn idle(&self) -> Option<u16> {
        let Self { limit, assigned } = self;
        assigned.is_empty().then_some(*limit)
    }

    /// The aliases [`Self::idle`] described.
    pub(crate) fn from_idle(limit: u16) -> Self {
        Self {
            limit,
            assigned: FxHashMap::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::types::QoS;
    use crate::PropertySet;

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: if topic.is_empty() {
                TopicName::empty()
            } else {
                TopicName::new(topic).unwrap()
            },
            packet_id: None,
            properties: Properties::from(PropertySet {
                topic_alias: alias,
                ..PropertySet::default()
            }),
            payload: Bytes::new(),
        }
    }

    #[test]
    fn outbound_assigns_up_to_the_limit_then_reuses() {
        let mut aliases = OutboundAliases::new(2, 10);
        let mut first = publish("a", None);
        aliases.apply(&mut first);
        assert_eq!(
            (first.topic.as_str(), first.properties.topic_alias),
            ("a", Some(1))
        );
        let mut again = publish("a", Some(7));
        aliases.apply(&mut again);
        assert_eq!(
            (again.topic.as_str(), again.properties.topic_alias),
            ("", Some(1))
        );
        let mut b = publish("b", None);
        aliases.apply(&mut b);
        assert_eq!(b.properties.topic_alias, Some(2));
        // The peer allows two aliases: a third topic goes out in full.
        let mut c = publish("c", None);
        aliases.apply(&mut c);
        assert_eq!((c.topic.as_str(), c.properties.topic_alias), ("c", None));
    }

    #[test]
    fn outbound_is_off_without_peer_maximum() {
        let mut aliases = OutboundAliases::new(0, 10);
        let mut p = publish("a", Some(3));
        aliases.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", None));
    }

    #[test]
    fn inbound_resolves_and_rejects() {
        let mut aliases = InboundAliases::new(3);
        let mut define = publish("x/y", Some(2));
        aliases.resolve(&mut define, Role::Client).unwrap();
        assert_eq!(define.properties.topic_alias, None);
        let mut use_it = publish("", Some(2));
        aliases.resolve(&mut use_it, Role::Client).unwrap();
        assert_eq!(use_it.topic.as_str(), "x/y");

        let too_big = aliases
            .resolve(&mut publish("z", Some(4)), Role::Client)
            .unwrap_err();
        assert_eq!(too_big.reason_code(), ReasonCode::TopicAliasInvalid);
        assert_eq!(too_big.conformance(), Some("MQTT-3.3.2-9"));
        let zero = aliases
            .resolve(&mut publish("z", Some(0)), Role::Server)
            .unwrap_err();
        assert_eq!(zero.reason_code(), ReasonCode::TopicAliasInvalid);
        let unknown = aliases
            .resolve(&mut publish("", Some(3)), Role::Client)
            .unwrap_err();
        assert_eq!(unknown, SessionError::UnknownTopicAlias(3));
        assert_eq!(unknown.reason_code(), ReasonCode::ProtocolError);
        let missing = aliases
            .resolve(&mut publish("", None), Role::Client)
            .unwrap_err();
        assert_eq!(missing.reason_code(), ReasonCode::ProtocolError);
    }
}
