//! Incoming QoS 1 and 2 messages: which ones the application still has to acknowledge, which
//! QoS 2 identifiers await PUBREL (so a re-sent PUBLISH is not delivered twice), and the
//! Receive Maximum we enforce. Acknowledgements are the application's call: a broker may only
//! PUBACK or PUBREC a message once it is stored durably.

use std::collections::{BTreeMap, VecDeque};

use crate::packet::{Packet, PacketType, PubAck, Publish};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, QoS};

use super::error::{RequestError, SessionError};
use super::Role;

/// What to do with an incoming PUBLISH once the flow has seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InboundOutcome {
    /// Hand it to the application.
    Deliver(Publish),
    /// Answer with this packet and do not deliver: a re-sent QoS 2 PUBLISH whose PUBREC went
    /// out already [MQTT-4.3.3-10].
    Reply(Packet),
    /// Already delivered and still awaiting the application's answer: the answer will cover
    /// this copy too.
    Duplicate,
}

#[derive(Debug, Clone)]
struct AwaitingAnswer {
    packet_id: PacketId,
    qos: QoS,
    answer: Option<(ReasonCode, Properties)>,
}

/// The incoming half of the QoS 1 and 2 delivery protocols.
#[derive(Debug)]
pub(crate) struct InboundFlow {
    receive_maximum: u16,
    /// MQTT 3.1.1 has no Receive Maximum: a peer cannot know our limit, so none is enforced.
    enforce_receive_maximum: bool,
    /// The client sends PUBACK and PUBREC "in the order in which the corresponding PUBLISH
    /// packets were received" ([MQTT-4.6.0-2], [MQTT-4.6.0-3]); the server is not bound to it.
    ordered_acks: bool,
    /// Delivered to the application, in the order received, not yet acknowledged on the wire.
    awaiting_answer: VecDeque<AwaitingAnswer>,
    /// QoS 2 identifiers whose PUBREC was sent and whose PUBREL has not arrived. The flag
    /// says whether the exchange counts against our Receive Maximum: one restored from an
    /// earlier connection does not, since the sender's quota starts afresh (4.9).
    awaiting_release: BTreeMap<PacketId, bool>,
}

/// An incoming flow with no exchange open: its settings alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleInbound {
    receive_maximum: u16,
    enforce_receive_maximum: bool,
    ordered_acks: bool,
}

impl InboundFlow {
    pub(crate) fn new(
        receive_maximum: u16,
        enforce_receive_maximum: bool,
        ordered_acks: bool,
    ) -> Self {
        Self {
            receive_maximum: receive_maximum.max(1),
            enforce_receive_maximum,
            ordered_acks,
            awaiting_answer: VecDeque::new(),
            awaiting_release: BTreeMap::new(),
        }
    }

    pub(crate) fn set_receive_maximum(&mut self, receive_maximum: u16, enforce: bool) {
        self.receive_maximum = receive_maximum.max(1);
        self.enforce_receive_maximum = enforce;
    }

    /// Exchanges that count against our Receive Maximum: QoS 1 and 2 PUBLISH packets "where it
    /// has not sent a PUBACK or PUBCOMP in response" (3.3.4).
    fn unacknowledged(&self) -> usize {
        self.awaiting_answer.len()
            + self
                .awaiting_release
                .values()
                .filter(|&&counts| counts)
                .count()
    }

    pub(crate) fn on_publish(
        &mut self,
        publish: Publish,
        sender: Role,
    ) -> Result<InboundOutcome, SessionError> {
        if publish.qos == QoS::AtMostOnce {
            return Ok(InboundOutcome::Deliver(publish));
        }
        let packet_id = publish.packet_id.ok_or(SessionError::MissingPacketId)?;
        if let Some(pending) = self
            .awaiting_answer
            .iter()
            .find(|p| p.packet_id == packet_id)
        {
            return if pending.qos == publish.qos {
                Ok(InboundOutcome::Duplicate)
            } else {
                Err(SessionError::PacketIdInUse(packet_id))
            };
        }
        if self.awaiting_release.contains_key(&packet_id) {
            if publish.qos != QoS::ExactlyOnce {
                return Err(SessionError::PacketIdInUse(packet_id));
            }
            // "Until it has received the corresponding PUBREL packet, the receiver MUST
            // acknowledge any subsequent PUBLISH packet with the same Packet Identifier by
            // sending a PUBREC. It MUST NOT cause duplicate messages to be delivered to any
            // onward recipients in this case" [MQTT-4.3.3-10].
            return Ok(InboundOutcome::Reply(Packet::PubRec(PubAck::success(
                packet_id,
            ))));
        }
        if self.enforce_receive_maximum
            && self.unacknowledged() >= usize::from(self.receive_maximum)
        {
            return Err(SessionError::ReceiveMaximumExceeded {
                maximum: self.receive_maximum,
                sender,
            });
        }
        self.awaiting_answer.push_back(AwaitingAnswer {
            packet_id,
            qos: publish.qos,
            answer: None,
        });
        Ok(InboundOutcome::Deliver(publish))
    }

    /// The application's acknowledgement of a delivered QoS 1 or 2 message; returns the
    /// PUBACK and PUBREC packets that may now go out.
    pub(crate) fn answer(
        &mut self,
        packet_id: PacketId,
        reason_code: ReasonCode,
        properties: Properties,
        is_v5: bool,
    ) -> Result<Vec<Packet>, RequestError> {
        let position = self
            .awaiting_answer
            .iter()
            .position(|p| p.packet_id == packet_id && p.answer.is_none())
            .ok_or(RequestError::UnknownPacketId(packet_id))?;
        let packet = match self.awaiting_answer.get(position) {
            Some(pending) if pending.qos == QoS::AtLeastOnce => PacketType::PubAck,
            _ => PacketType::PubRec,
        };
        if !is_publish_ack_reason(reason_code) {
            return Err(RequestError::InvalidReasonCode {
                packet,
                reason_code,
            });
        }
        // Before MQTT 5 an acknowledgement carries no outcome: it only says "received".
        let answer = if is_v5 {
            (reason_code, properties)
        } else {
            (ReasonCode::Success, Properties::default())
        };
        if let Some(pending) = self.awaiting_answer.get_mut(position) {
            pending.answer = Some(answer);
        }
        let mut packets = Vec::new();
        if self.ordered_acks {
            while self
                .awaiting_answer
                .front()
                .is_some_and(|p| p.answer.is_some())
            {
                if let Some(done) = self.awaiting_answer.pop_front() {
                    packets.push(self.acknowledge(done));
                }
            }
        } else if let Some(done) = self.awaiting_answer.remove(position) {
            packets.push(self.acknowledge(done));
        }
        Ok(packets)
    }

    fn acknowledge(&mut self, done: AwaitingAnswer) -> Packet {
        let (reason_code, properties) = done.answer.unwrap_or_default();
        let ack = PubAck {
            packet_id: done.packet_id,
            reason_code,
            properties,
        };
        if done.qos == QoS::AtLeastOnce {
            return Packet::PubAck(ack);
        }
        // A PUBREC of 0x80 or more ends the exchange: "the receiver MUST treat any subsequent
        // PUBLISH packet that contains that Packet Identifier as being a new publication"
        // [MQTT-4.3.3-9]. Otherwise the identifier awaits PUBREL [MQTT-4.3.3-8].
        if !reason_code.is_error() {
            self.awaiting_release.insert(done.packet_id, true);
        }
        Packet::PubRec(ack)
    }

    /// PUBREL: "the receiver MUST respond to a PUBREL packet by sending a PUBCOMP packet
    /// containing the same Packet Identifier as the PUBREL" [MQTT-4.3.3-11]; for an
    /// identifier we do not hold, MQTT 5 says 0x92 Packet Identifier not found.
    pub(crate) fn on_pubrel(
        &mut self,
        release: &PubAck,
        is_v5: bool,
    ) -> Result<Packet, SessionError> {
        let packet_id = release.packet_id;
        if self.awaiting_release.remove(&packet_id).is_some() {
            // From here on the identifier starts a new publication [MQTT-4.3.3-12].
            return Ok(Packet::PubComp(PubAck::success(packet_id)));
        }
        if self
            .awaiting_answer
            .iter()
            .any(|p| p.packet_id == packet_id)
        {
            // We have not sent PUBREC yet: the sender cannot have received one.
            return Err(SessionError::UnexpectedAck {
                packet: PacketType::PubRel,
                packet_id,
            });
        }
        let reason_code = if is_v5 {
            ReasonCode::PacketIdentifierNotFound
        } else {
            ReasonCode::Success
        };
        Ok(Packet::PubComp(PubAck {
            packet_id,
            reason_code,
            properties: Properties::default(),
        }))
    }

    /// Takes over the QoS 2 identifiers of a stored session.
    pub(crate) fn restore(&mut self, awaiting_release: Vec<PacketId>) {
        self.awaiting_release
            .extend(awaiting_release.into_iter().map(|id| (id, false)));
    }

    /// The identifiers awaiting PUBREL, leaving none. Messages delivered but not yet
    /// acknowledged are not part of the session: the sender re-sends them and they are
    /// delivered again, as QoS 1 allows and as QoS 2 requires when no PUBREC went out.
    pub(crate) fn take_state(&mut self) -> Vec<PacketId> {
        self.awaiting_answer.clear();
        std::mem::take(&mut self.awaiting_release)
            .into_keys()
            .collect()
    }

    /// What an idle connection's incoming flow keeps when no exchange is open (see
    /// `server/idle.rs`). `None` while one is.
    pub(crate) fn idle(&self) -> Option<IdleInbound> {
        let Self {
            receive_maximum,
            enforce_receive_maximum,
            ordered_acks,
            awaiting_answer,
            awaiting_release,
        } = self;
        (awaiting_answer.is_empty() && awaiting_release.is_empty()).then_some(IdleInbound {
            receive_maximum: *receive_maximum,
            enforce_receive_maximum: *enforce_receive_maximum,
            ordered_acks: *ordered_acks,
        })
    }

    /// The flow [`Self::idle`] described.
    pub(crate) fn from_idle(idle: IdleInbound) -> Self {
        let IdleInbound {
            receive_maximum,
            enforce_receive_maximum,
            ordered_acks,
        } = idle;
        Self {
            receive_maximum,
            enforce_receive_maximum,
            ordered_acks,
            awaiting_answer: VecDeque::new(),
            awaiting_release: BTreeMap::new(),
        }
    }
}

/// The reason codes of PUBACK and PUBREC (3.4.2.1, 3.5.2.1) [MQTT-3.4.2-1], [MQTT-3.5.2-1].
fn is_publish_ack_reason(code: ReasonCode) -> bool {
    matches!(
        code,
        ReasonCode::Success
            | ReasonCode::NoMatchingSubscribers
            | ReasonCode::UnspecifiedError
            | ReasonCode::ImplementationSpecificError
            | ReasonCode::NotAuthorized
            | ReasonCode::TopicNameInvalid
            | ReasonCode::PacketIdentifierInUse
            | ReasonCode::QuotaExceeded
            | ReasonCode::PayloadFormatInvalid
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::topic::TopicName;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn publish(packet_id: u16, qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: Some(id(packet_id)),
            properties: Properties::default(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn qos2_is_delivered_once_until_pubrel() {
        let mut flow = InboundFlow::new(10, true, false);
        let first = flow
            .on_publish(publish(5, QoS::ExactlyOnce), Role::Client)
            .unwrap();
        assert!(matches!(first, InboundOutcome::Deliver(_)));
        assert_eq!(
            flow.on_publish(publish(5, QoS::ExactlyOnce), Role::Client),
            Ok(InboundOutcome::Duplicate)
        );
        let acks = flow
            .answer(id(5), ReasonCode::Success, Properties::default(), true)
            .unwrap();
        assert_eq!(acks, vec![Packet::PubRec(PubAck::success(id(5)))]);
        let mut again = publish(5, QoS::ExactlyOnce);
        again.dup = true;
        assert_eq!(
            flow.on_publish(again.clone(), Role::Client),
            Ok(InboundOutcome::Reply(Packet::PubRec(PubAck::success(id(
                5
            )))))
        );
        let comp = flow.on_pubrel(&PubAck::success(id(5)), true).unwrap();
        assert_eq!(comp, Packet::PubComp(PubAck::success(id(5))));
        // After PUBCOMP the identifier starts a new publication [MQTT-4.3.3-12].
        assert!(matches!(
            flow.on_publish(again, Role::Client),
            Ok(InboundOutcome::Deliver(_))
        ));
    }

    #[test]
    fn unknown_pubrel_gets_0x92_and_early_pubrel_is_an_error() {
        let mut flow = InboundFlow::new(10, true, false);
        let Packet::PubComp(comp) = flow.on_pubrel(&PubAck::success(id(1)), true).unwrap() else {
            panic!("expected PUBCOMP");
        };
        assert_eq!(comp.reason_code, ReasonCode::PacketIdentifierNotFound);
        flow.on_publish(publish(2, QoS::ExactlyOnce), Role::Client)
            .unwrap();
        assert!(flow.on_pubrel(&PubAck::success(id(2)), true).is_err());
    }

    #[test]
    fn receive_maximum_counts_until_puback_or_pubcomp() {
        let mut flow = InboundFlow::new(2, true, false);
        flow.on_publish(publish(1, QoS::AtLeastOnce), Role::Server)
            .unwrap();
        flow.on_publish(publish(2, QoS::ExactlyOnce), Role::Server)
            .unwrap();
        let err = flow
            .on_publish(publish(3, QoS::AtLeastOnce), Role::Server)
            .unwrap_err();
        assert_eq!(err.reason_code(), ReasonCode::ReceiveMaximumExceeded);
        assert_eq!(err.conformance(), Some("MQTT-3.3.4-9"));
        flow.answer(id(2), ReasonCode::Success, Properties::default(), true)
            .unwrap();
        // PUBREC sent, PUBCOMP not yet: still counted.
        assert!(flow
            .on_publish(publish(3, QoS::AtLeastOnce), Role::Server)
            .is_err());
        flow.answer(id(1), ReasonCode::Success, Properties::default(), true)
            .unwrap();
        assert!(flow
            .on_publish(publish(3, QoS::AtLeastOnce), Role::Server)
            .is_ok());
    }

    #[test]
    fn ordered_acks_wait_for_earlier_messages() {
        let mut flow = InboundFlow::new(10, true, true);
        flow.on_publish(publish(1, QoS::AtLeastOnce), Role::Server)
            .unwrap();
        flow.on_publish(publish(2, QoS::AtLeastOnce), Role::Server)
            .unwrap();
        let none = flow
            .answer(id(2), ReasonCode::Success, Properties::default(), true)
            .unwrap();
        assert!(none.is_empty());
        let both = flow
            .answer(id(1), ReasonCode::Success, Properties::default(), true)
            .unwrap();
        assert_eq!(
            both,
            vec![
                Packet::PubAck(PubAck::success(id(1))),
                Packet::PubAck(PubAck::success(id(2)))
            ]
        );
        assert_eq!(
            flow.answer(id(1), ReasonCode::Success, Properties::default(), true),
            Err(RequestError::UnknownPacketId(id(1)))
        );
    }

    #[test]
    fn failed_pubrec_ends_the_exchange() {
        let mut flow = InboundFlow::new(10, true, false);
        flow.on_publish(publish(4, QoS::ExactlyOnce), Role::Client)
            .unwrap();
        flow.answer(
            id(4),
            ReasonCode::QuotaExceeded,
            Properties::default(),
            true,
        )
        .unwrap();
        assert!(flow.take_state().is_empty());
        assert_eq!(
            flow.answer(id(9), ReasonCode::ServerBusy, Properties::default(), true),
            Err(RequestError::UnknownPacketId(id(9)))
        );
    }
}
