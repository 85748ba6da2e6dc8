//! Outgoing QoS 1 and 2 messages: the inflight window bounded by the peer's Receive Maximum
//! (4.9), the queue of publishes waiting for send quota, and the state of each exchange
//! (PUBLISH -> PUBACK; PUBLISH -> PUBREC -> PUBREL -> PUBCOMP). It owns neither packet
//! identifiers nor the transmit queue: it says what to send and which exchange completed.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;

use crate::packet::{Packet, PacketType, PubAck, Publish};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, QoS};

use super::error::SessionError;
use super::state::OutboundMessage;

/// An outgoing exchange that ended: acknowledged, refused by the receiver, or completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) packet_id: PacketId,
    pub(crate) reason_code: ReasonCode,
    pub(crate) properties: Properties,
}

/// What a PUBREC leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PubRecOutcome {
    /// Send this PUBREL; the exchange goes on.
    Release(Packet),
    /// The receiver refused the message with a reason code of 0x80 or more: the exchange is
    /// over and the PUBLISH "MUST NOT be retransmitted" [MQTT-4.4.0-2].
    Refused(Completion),
}

#[derive(Debug, Clone)]
struct InFlight {
    message: OutboundMessage,
    /// Whether this exchange holds one unit of send quota. A PUBREL restored from a previous
    /// connection does not: the quota starts afresh at the Receive Maximum on every
    /// connection (4.9) and only PUBLISH packets sent on it use it up.
    holds_quota: bool,
}

/// The outgoing half of the QoS 1 and 2 delivery protocols.
#[derive(Debug)]
pub(crate) struct OutboundFlow {
    /// Exchanges sent on this connection, keyed by a sequence number that grows with every
    /// step, so iteration gives the order in which they must be re-sent: PUBLISH packets in
    /// the order they were sent [MQTT-4.6.0-1], PUBREL packets in the order the PUBRECs
    /// arrived [MQTT-4.6.0-4].
    inflight: BTreeMap<u64, InFlight>,
    positions: FxHashMap<PacketId, u64>,
    next_sequence: u64,
    /// Publishes with an identifier, accepted but not sent for lack of quota.
    waiting: VecDeque<Publish>,
    /// The peer's Receive Maximum: the initial send quota [MQTT-4.9.0-1].
    send_window: u16,
    quota_used: usize,
    max_waiting: usize,
}

/// An outgoing flow with nothing in flight or waiting: its counters and settings alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleOutbound {
    next_sequence: u64,
    send_window: u16,
    quota_used: usize,
    max_waiting: usize,
}

impl OutboundFlow {
    pub(crate) fn new(send_window: u16, max_waiting: usize) -> Self {
        Self {
            inflight: BTreeMap::new(),
            positions: FxHashMap::default(),
            next_sequence: 0,
            waiting: VecDeque::new(),
            send_window: send_window.max(1),
            quota_used: 0,
            max_waiting,
        }
    }

    /// How many more QoS 1 and 2 PUBLISH packets may be sent now.
    pub(crate) fn send_quota(&self) -> usize {
        usize::from(self.send_window).saturating_sub(self.quota_used)
    }

    /// How many publishes wait for quota.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many exchanges are in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Accepts a publish (identifier already set) for sending, or hands it back when both
    /// the quota and the waiting queue are exhausted.
    pub(crate) fn submit(&mut self, publish: Publish) -> Result<(), Box<Publish>> {
        // Publishes the quota lets out at once do not count against the waiting limit.
        if self.waiting.len() >= self.max_waiting + self.send_quota() {
            return Err(Box::new(publish));
        }
        self.waiting.push_back(publish);
        Ok(())
    }

    /// The next PUBLISH to send, if quota allows: "If the send quota reaches zero, the Client
    /// or Server MUST NOT send any more PUBLISH packets with QoS > 0" [MQTT-4.9.0-2]. The copy
    /// kept for re-delivery is marked DUP [MQTT-3.3.1-1].
    pub(crate) fn next_to_send(&mut self) -> Option<Publish> {
        if self.send_quota() == 0 {
            return None;
        }
        let publish = self.waiting.pop_front()?;
        let Some(packet_id) = publish.packet_id else {
            // Every publish is submitted with an identifier; one without cannot be tracked,
            // so it is dropped rather than sent unacknowledgeable.
            return self.next_to_send();
        };
        let mut stored = publish.clone();
        stored.dup = true;
        self.track(packet_id, OutboundMessage::Publish(Box::new(stored)), true);
        self.quota_used += 1;
        Some(publish)
    }

    /// Takes over the outgoing part of a stored session. PUBRELs are returned to be sent at
    /// once (they are not limited by the quota [MQTT-3.3.4-8]); publishes queue up in their
    /// original order ahead of anything new and go out as quota allows.
    pub(crate) fn restore(&mut self, messages: Vec<OutboundMessage>) -> Vec<Packet> {
        let mut releases = Vec::new();
        let mut publishes = Vec::new();
        for message in messages {
            match message {
                OutboundMessage::Release(packet_id) => {
                    self.track(packet_id, OutboundMessage::Release(packet_id), false);
                    releases.push(Packet::PubRel(PubAck::success(packet_id)));
                }
                OutboundMessage::Publish(publish) => publishes.push(*publish),
            }
        }
        for publish in publishes.into_iter().rev() {
            self.waiting.push_front(publish);
        }
        releases
    }

    /// PUBACK: completes a QoS 1 exchange, whatever its reason code [MQTT-4.4.0-2].
    pub(crate) fn on_puback(&mut self, ack: PubAck) -> Result<Option<Completion>, SessionError> {
        match self.message(ack.packet_id) {
            None => Ok(None),
            Some(OutboundMessage::Publish(publish)) if publish.qos == QoS::AtLeastOnce => {
                Ok(Some(self.complete(ack)))
            }
            Some(_) => Err(SessionError::UnexpectedAck {
                packet: PacketType::PubAck,
                packet_id: ack.packet_id,
            }),
        }
    }

    /// PUBREC: answers with PUBREL [MQTT-4.3.3-4], or ends the exchange on a failure code.
    /// A PUBREC for an identifier we do not know gets a PUBREL 0x92 in MQTT 5 so the peer
    /// can clean up, and a plain PUBREL before.
    pub(crate) fn on_pubrec(
        &mut self,
        ack: PubAck,
        is_v5: bool,
    ) -> Result<PubRecOutcome, SessionError> {
        let packet_id = ack.packet_id;
        match self.message(packet_id) {
            None => {
                let reason_code = if is_v5 {
                    ReasonCode::PacketIdentifierNotFound
                } else {
                    ReasonCode::Success
                };
                Ok(PubRecOutcome::Release(Packet::PubRel(PubAck {
                    packet_id,
                    reason_code,
                    properties: Properties::default(),
                })))
            }
            Some(OutboundMessage::Publish(publish)) if publish.qos == QoS::ExactlyOnce => {
                if ack.reason_code.is_error() {
                    return Ok(PubRecOutcome::Refused(self.complete(ack)));
                }
                let holds_quota = self
                    .untrack(packet_id)
                    .is_some_and(|entry| entry.holds_quota);
                self.track(packet_id, OutboundMessage::Release(packet_id), holds_quota);
                Ok(PubRecOutcome::Release(Packet::PubRel(PubAck::success(
                    packet_id,
                ))))
            }
            // A repeated PUBREC: the PUBREL may not have arrived, send it again.
            Some(OutboundMessage::Release(_)) => Ok(PubRecOutcome::Release(Packet::PubRel(
                PubAck::success(packet_id),
            ))),
            Some(OutboundMessage::Publish(_)) => Err(SessionError::UnexpectedAck {
                packet: PacketType::PubRec,
                packet_id,
            }),
        }
    }

    /// PUBCOMP: completes a QoS 2 exchange whose PUBREL we sent.
    pub(crate) fn on_pubcomp(&mut self, ack: PubAck) -> Result<Option<Completion>, SessionError> {
        match self.message(ack.packet_id) {
            None => Ok(None),
            Some(OutboundMessage::Release(_)) => Ok(Some(self.complete(ack))),
            Some(OutboundMessage::Publish(_)) => Err(SessionError::UnexpectedAck {
                packet: PacketType::PubComp,
                packet_id: ack.packet_id,
            }),
        }
    }

    /// Everything not complete, in re-send order, leaving the flow empty.
    pub(crate) fn take_state(&mut self) -> Vec<OutboundMessage> {
        self.positions.clear();
        self.quota_used = 0;
        let mut messages: Vec<OutboundMessage> = std::mem::take(&mut self.inflight)
            .into_values()
            .map(|entry| entry.message)
            .collect();
        messages.extend(
            self.waiting
                .drain(..)
                .map(|publish| OutboundMessage::Publish(Box::new(publish))),
        );
        messages
    }

    fn message(&self, packet_id: PacketId) -> Option<&OutboundMessage> {
        let sequence = self.positions.get(&packet_id)?;
        self.inflight.get(sequence).map(|entry| &entry.message)
    }

    fn track(&mut self, packet_id: PacketId, message: OutboundMessage, holds_quota: bool) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.inflight.insert(
            sequence,
            InFlight {
                message,
                holds_quota,
            },
        );
        self.positions.insert(packet_id, sequence);
    }

    fn untrack(&mut self, packet_id: PacketId) -> Option<InFlight> {
        let sequence = self.positions.remove(&packet_id)?;
        self.inflight.remove(&sequence)
    }

    /// Ends an exchange and gives its quota back: the quota "is incremented by one each time
    /// a PUBACK or PUBCOMP packet is received, regardless of the Reason Code, or a PUBREC
    /// packet is received with a Return Code of 128 or greater" (4.9).
    fn complete(&mut self, ack: PubAck) -> Completion {
        if self
            .untrack(ack.packet_id)
            .is_some_and(|entry| entry.holds_quota)
        {
            self.quota_used = self.quota_used.saturating_sub(1);
        }
        Completion {
            packet_id: ack.packet_id,
            reason_code: ack.reason_code,
            properties: ack.properties,
        }
    }

    /// What an idle connection's outgoing flow keeps when nothing is in flight or waiting
    /// (see `server/idle.rs`). `None` otherwise.
    pub(crate) fn idle(&self) -> Option<IdleOutbound> {
        let Self {
            inflight,
            positions,
            next_sequence,
            waiting,
            send_window,
            quota_used,
            max_waiting,
        } = self;
        (inflight.is_empty() && positions.is_empty() && waiting.is_empty()).then_some(
            IdleOutbound {
                next_sequence: *next_sequence,
                send_window: *send_window,
                quota_used: *quota_used,
                max_waiting: *max_waiting,
            },
        )
    }

    /// The flow [`Self::idle`] described.
    pub(crate) fn from_idle(idle: IdleOutbound) -> Self {
        let IdleOutbound {
            next_sequence,
            send_window,
            quota_used,
            max_waiting,
        } = idle;
        Self {
            inflight: BTreeMap::new(),
            positions: FxHashMap::default(),
            next_sequence,
            waiting: VecDeque::new(),
            send_window,
            quota_used,
            max_waiting,
        }
    }
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

    fn refused(packet_id: u16) -> PubAck {
        PubAck {
            reason_code: ReasonCode::QuotaExceeded,
            ..PubAck::success(id(packet_id))
        }
    }

    #[test]
    fn window_limits_sends_and_queue_limits_submissions() {
        let mut flow = OutboundFlow::new(2, 1);
        for n in 1..=3 {
            flow.submit(publish(n, QoS::AtLeastOnce)).unwrap();
        }
        assert_eq!(flow.next_to_send().unwrap().packet_id, Some(id(1)));
        assert_eq!(flow.next_to_send().unwrap().packet_id, Some(id(2)));
        assert_eq!(flow.next_to_send(), None);
        // Quota 0 and one publish waiting: the queue of one is full.
        assert!(flow.submit(publish(4, QoS::AtLeastOnce)).is_err());
        let done = flow.on_puback(PubAck::success(id(1))).unwrap().unwrap();
        assert_eq!(done.packet_id, id(1));
        assert_eq!(flow.next_to_send().unwrap().packet_id, Some(id(3)));
    }

    #[test]
    fn qos2_steps_and_refusal_release_quota() {
        let mut flow = OutboundFlow::new(1, 0);
        flow.submit(publish(1, QoS::ExactlyOnce)).unwrap();
        flow.next_to_send().unwrap();
        assert_eq!(flow.send_quota(), 0);
        let outcome = flow.on_pubrec(PubAck::success(id(1)), true).unwrap();
        assert_eq!(
            outcome,
            PubRecOutcome::Release(Packet::PubRel(PubAck::success(id(1))))
        );
        // The PUBREL still holds the quota until PUBCOMP (4.9).
        assert_eq!(flow.send_quota(), 0);
        assert!(flow.on_puback(PubAck::success(id(1))).is_err());
        assert!(flow.on_pubcomp(PubAck::success(id(1))).unwrap().is_some());
        assert_eq!(flow.send_quota(), 1);

        flow.submit(publish(2, QoS::ExactlyOnce)).unwrap();
        flow.next_to_send().unwrap();
        let outcome = flow.on_pubrec(refused(2), true).unwrap();
        assert!(
            matches!(outcome, PubRecOutcome::Refused(c) if c.reason_code == ReasonCode::QuotaExceeded)
        );
        assert_eq!(flow.send_quota(), 1);
        assert_eq!(flow.in_flight(), 0);
    }

    #[test]
    fn state_keeps_resend_order_and_marks_dup() {
        let mut flow = OutboundFlow::new(10, 10);
        flow.submit(publish(1, QoS::ExactlyOnce)).unwrap();
        flow.submit(publish(2, QoS::AtLeastOnce)).unwrap();
        flow.next_to_send().unwrap();
        flow.next_to_send().unwrap();
        flow.on_pubrec(PubAck::success(id(1)), true).unwrap();
        flow.submit(publish(3, QoS::AtLeastOnce)).unwrap();
        let state = flow.take_state();
        let mut sent_2 = publish(2, QoS::AtLeastOnce);
        sent_2.dup = true;
        assert_eq!(
            state,
            vec![
                OutboundMessage::Publish(Box::new(sent_2.clone())),
                OutboundMessage::Release(id(1)),
                OutboundMessage::Publish(Box::new(publish(3, QoS::AtLeastOnce))),
            ]
        );

        let mut resumed = OutboundFlow::new(1, 0);
        let releases = resumed.restore(state);
        assert_eq!(releases, vec![Packet::PubRel(PubAck::success(id(1)))]);
        // The restored PUBREL does not hold quota: one PUBLISH may go.
        assert_eq!(resumed.next_to_send(), Some(sent_2));
        assert_eq!(resumed.next_to_send(), None);
        assert_eq!(resumed.waiting(), 1);
    }

    #[test]
    fn unknown_pubrec_gets_packet_identifier_not_found() {
        let mut flow = OutboundFlow::new(1, 0);
        let outcome = flow.on_pubrec(PubAck::success(id(9)), true).unwrap();
        let PubRecOutcome::Release(Packet::PubRel(rel)) = outcome else {
            panic!("expected a PUBREL, got {outcome:?}");
        };
        assert_eq!(rel.reason_code, ReasonCode::PacketIdentifierNotFound);
        assert_eq!(flow.on_puback(PubAck::success(id(9))), Ok(None));
    }
}
