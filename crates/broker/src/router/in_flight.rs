//! The outgoing QoS 1 and 2 exchanges a session has open, as the broker tracks them beside the
//! protocol machine's own state: which queue entry each packet identifier carries (so that
//! storage can drop it when the client acknowledges it), how far a QoS 2 exchange got, and the
//! copy itself for shared subscriptions. Also rebuilds both from what storage kept, so that a
//! restarted broker re-sends with DUP and the same identifiers [MQTT-4.4.0-1].

use std::collections::BTreeMap;
use std::time::Instant;

use mquictt_protocol::session::{OutboundMessage, SessionState};
use mquictt_protocol::PacketId;
use rustc_hash::FxHashMap;

use crate::session::{Outgoing, PublishGate};
use crate::storage::{InFlightStage, StoredQueued};

/// One open outgoing exchange.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    /// The queue sequence number the message is stored under.
    pub(crate) seq: u64,
    /// How far the exchange got.
    pub(crate) stage: InFlightStage,
    /// The copy, kept only for shared subscriptions: it goes to another member of the group
    /// if this client leaves without acknowledging it (4.8.2).
    pub(crate) shared: Option<Outgoing>,
    /// The publisher's gate of a stored copy, told when the client acknowledges it.
    pub(crate) gate: Option<PublishGate>,
}

/// Everything a session has in flight between connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryState {
    /// The protocol machine's state: what to re-send and the QoS 2 identifiers received.
    pub(crate) session: SessionState,
    /// The broker's side of each outgoing exchange, by packet identifier.
    pub(crate) in_flight: FxHashMap<PacketId, InFlight>,
}

/// Splits the queued messages of a stored session into those that were in flight (rebuilt as
/// exchanges to resume, with DUP set) and those still waiting, returned in order.
pub(crate) fn resume_stored(
    queued: BTreeMap<u64, StoredQueued>,
    inbound_awaiting_release: Vec<PacketId>,
    now: Instant,
) -> (DeliveryState, Vec<(u64, Outgoing)>) {
    let mut state = DeliveryState::default();
    state.session.inbound_awaiting_release = inbound_awaiting_release;
    let mut waiting = Vec::new();
    for (seq, stored) in queued {
        let Some((packet_id, stage)) = stored.in_flight else {
            waiting.push((seq, stored.outgoing));
            continue;
        };
        let message = match stage {
            InFlightStage::Sent => {
                // "When a Client reconnects with CleanStart set to 0 and a session is present,
                // both the Client and Server MUST resend any unacknowledged PUBLISH packets
                // (where QoS > 0) and PUBREL packets using their original Packet Identifiers"
                // [MQTT-4.4.0-1]; DUP marks the re-delivery [MQTT-3.3.1-1].
                let mut publish = stored.outgoing.to_publish(now);
                publish.dup = true;
                publish.packet_id = Some(packet_id);
                OutboundMessage::Publish(Box::new(publish))
            }
            InFlightStage::Released => OutboundMessage::Release(packet_id),
        };
        state.session.outbound.push(message);
        let shared = stored.outgoing.shared.is_some().then_some(stored.outgoing);
        state.in_flight.insert(
            packet_id,
            InFlight {
                seq,
                stage,
                shared,
                gate: None,
            },
        );
    }
    (state, waiting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bytes::Bytes;
    use mquictt_protocol::{QoS, TopicName};
    use std::sync::Arc;

    fn stored(qos: QoS, in_flight: Option<(u16, InFlightStage)>) -> StoredQueued {
        StoredQueued {
            outgoing: Outgoing {
                message: Arc::new(Message::new(
                    TopicName::new("t").unwrap(),
                    Bytes::from_static(b"x"),
                    qos,
                    false,
                )),
                qos,
                retain: false,
                subscription_identifiers: Box::default(),
                shared: None,
            },
            in_flight: in_flight.map(|(id, stage)| (PacketId::new(id).unwrap(), stage)),
        }
    }

    #[test]
    fn sent_messages_resume_with_dup_and_their_identifier() {
        let queued = BTreeMap::from([
            (3, stored(QoS::AtLeastOnce, Some((7, InFlightStage::Sent)))),
            (
                4,
                stored(QoS::ExactlyOnce, Some((8, InFlightStage::Released))),
            ),
            (5, stored(QoS::AtLeastOnce, None)),
        ]);
        let inbound = vec![PacketId::new(2).unwrap()];
        let (state, waiting) = resume_stored(queued, inbound.clone(), Instant::now());
        assert_eq!(waiting.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [5]);
        assert_eq!(state.session.inbound_awaiting_release, inbound);
        match &state.session.outbound[..] {
            [OutboundMessage::Publish(p), OutboundMessage::Release(r)] => {
                assert!(p.dup);
                assert_eq!(p.packet_id, PacketId::new(7));
                assert_eq!(r.get(), 8);
            }
            other => panic!("unexpected outbound state {other:?}"),
        }
        assert_eq!(
            state.in_flight.get(&PacketId::new(8).unwrap()).unwrap().seq,
            4
        );
    }
}
