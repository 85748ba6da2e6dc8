//! The session state that outlives a network connection (4.1): what a broker persists for a
//! client and what a client keeps across reconnects. It is plain data, taken out of one
//! machine with `take_state()` and handed to the next one on reconnect; the machines decide
//! what to re-send from it.

use crate::packet::Publish;
use crate::types::PacketId;

/// Our side of an MQTT session, as far as the delivery of QoS 1 and 2 messages goes (4.1):
/// outgoing messages not yet completely acknowledged, and incoming QoS 2 messages whose
/// PUBREL has not arrived. Subscriptions, the will and the expiry belong to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionState {
    /// Outgoing QoS 1 and 2 messages in the order they are re-sent [MQTT-4.6.0-1]: first the
    /// ones in flight, in the order of their last step, then the ones still waiting for send
    /// quota.
    pub outbound: Vec<OutboundMessage>,
    /// Identifiers of incoming QoS 2 messages we acknowledged with PUBREC and whose PUBREL
    /// has not arrived; a re-sent PUBLISH with one of them is not delivered again
    /// [MQTT-4.3.3-10].
    pub inbound_awaiting_release: Vec<PacketId>,
}

impl SessionState {
    /// Whether nothing is pending in either direction.
    pub fn is_empty(&self) -> bool {
        self.outbound.is_empty() && self.inbound_awaiting_release.is_empty()
    }
}

/// One outgoing QoS 1 or 2 message that is not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundMessage {
    /// A PUBLISH awaiting its PUBACK (QoS 1) or PUBREC (QoS 2). Its packet identifier is set;
    /// `dup` is true once it has been sent, so that every later send is marked as a
    /// re-delivery [MQTT-3.3.1-1].
    Publish(Box<Publish>),
    /// A QoS 2 message whose PUBREC arrived: the PUBREL is (re-)sent and awaits PUBCOMP. The
    /// PUBLISH itself is never sent again [MQTT-4.3.3-6].
    Release(PacketId),
}

impl OutboundMessage {
    /// The packet identifier of the exchange, `None` only for a malformed stored PUBLISH.
    pub fn packet_id(&self) -> Option<PacketId> {
        match self {
            Self::Publish(publish) => publish.packet_id,
            Self::Release(id) => Some(*id),
        }
    }
}
