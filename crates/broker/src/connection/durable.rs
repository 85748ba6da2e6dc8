//! The driver's side of durability: answers that wait for their commit, packets that may only
//! go out once a change is durable, and what a failed commit turns into. "Nothing
//! acknowledged is ever lost": a PUBACK or PUBREC goes out only after the message is stored in
//! every persistent receiver's queue (or, for a non-retained QoS 1 message, once every
//! persistent receiver has acknowledged its copy, if that comes first); when storing fails
//! the client hears it (MQTT 5: 0x80 Unspecified error or 0x97 Quota exceeded; 3.1.1, which
//! has no negative acknowledgement: the connection is closed) and the message is its own to
//! send again.

use mquictt_protocol::{Disconnect, Packet, PacketId, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Deferred, Driver};
use crate::storage::{Change, CommitFailure, CommitTicket, InFlightStage};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Sends `reply` once `ticket` is durable; at once when it already is and nothing waits
    /// before it.
    pub(super) fn answer_when_durable(&mut self, ticket: CommitTicket, reply: Deferred) {
        if self.deferred.is_empty() && ticket.outcome() == Some(Ok(())) {
            self.send_answer(reply, Ok(()));
        } else {
            self.deferred.push_back((ticket, reply));
        }
    }

    /// Sends every waiting answer whose commit has finished, in order.
    pub(super) fn release_deferred(&mut self) {
        while let Some(outcome) = self.deferred.front().and_then(|(t, _)| t.outcome()) {
            let Some((_, reply)) = self.deferred.pop_front() else {
                return;
            };
            self.send_answer(reply, outcome);
        }
    }

    fn send_answer(&mut self, reply: Deferred, outcome: Result<(), CommitFailure>) {
        let v5 = self
            .session
            .version()
            .is_some_and(mquictt_protocol::ProtocolVersion::is_v5);
        let failure = match outcome {
            Ok(()) => None,
            Err(failure) => {
                tracing::warn!(peer = ?self.peer.remote_addr, error = %failure, "refusing an acknowledgement: not stored");
                Some(failure)
            }
        };
        // Before MQTT 5 an acknowledgement cannot say "not stored"; closing the connection is
        // the only way to keep the client from treating the message as delivered.
        if failure.is_some() && !v5 {
            let _ = self
                .session
                .disconnect(Disconnect::new(ReasonCode::UnspecifiedError));
            return;
        }
        match reply {
            Deferred::Ack { packet_id, reason } => {
                let reason = match &failure {
                    Some(failure) => {
                        self.forget_inbound(packet_id);
                        failure.reason_code()
                    }
                    None => reason,
                };
                let _ = self.session.ack_incoming(packet_id, reason);
            }
            Deferred::SubAck(mut suback) => {
                if let Some(failure) = &failure {
                    let code = failure.reason_code();
                    suback.reason_codes.iter_mut().for_each(|c| *c = code);
                }
                let _ = self.session.suback(suback);
            }
            Deferred::UnsubAck(mut unsuback) => {
                if let Some(failure) = &failure {
                    let code = failure.reason_code();
                    unsuback.reason_codes.iter_mut().for_each(|c| *c = code);
                }
                let _ = self.session.unsuback(unsuback);
            }
        }
    }

    /// An incoming QoS 2 identifier recorded as awaiting PUBREL whose message was refused:
    /// the exchange ends here [MQTT-4.3.3-9], so the record goes too.
    fn forget_inbound(&mut self, packet_id: PacketId) {
        let Some(attached) = &mut self.attached else {
            return;
        };
        if attached.exchanges.remove_inbound(packet_id) {
            self.shared.journal.record(Change::RemoveInbound {
                client_id: attached.client_id.clone(),
                packet_id,
            });
        }
    }

    /// Records what `packet` makes true before it goes out, and raises the write barrier:
    /// - PUBREL: the PUBLISH must never be sent again [MQTT-4.3.3-6], so after a restart only
    ///   the PUBREL is;
    /// - PUBCOMP: the identifier starts a new publication [MQTT-4.3.3-12]; were the record
    ///   kept, a new message under it would be taken for a re-sent one and lost.
    pub(super) fn persist_before_sending(&mut self, packet: &Packet) {
        let Some(attached) = &mut self.attached else {
            return;
        };
        if !attached.persistent {
            return;
        }
        let change = match packet {
            Packet::PubRel(release) => {
                let Some(entry) = attached.exchanges.in_flight_mut(release.packet_id) else {
                    return;
                };
                if entry.stage == InFlightStage::Released {
                    return;
                }
                entry.stage = InFlightStage::Released;
                Change::InFlight {
                    client_id: attached.client_id.clone(),
                    seq: entry.seq,
                    packet_id: release.packet_id,
                    stage: InFlightStage::Released,
                }
            }
            Packet::PubComp(complete) => {
                if !attached.exchanges.remove_inbound(complete.packet_id) {
                    return;
                }
                Change::RemoveInbound {
                    client_id: attached.client_id.clone(),
                    packet_id: complete.packet_id,
                }
            }
            _ => return,
        };
        self.shared.journal.record(change);
        self.barrier = Some(self.shared.journal.ticket());
    }

    /// The client accepted the message sent under `packet_id` (PUBACK or PUBCOMP with
    /// success): its copy counts as delivered for the publisher's acknowledgement.
    pub(super) fn copy_delivered(&mut self, packet_id: PacketId) {
        let gate = self
            .attached
            .as_mut()
            .and_then(|a| a.exchanges.in_flight_mut(packet_id))
            .and_then(|entry| entry.gate.take());
        if let Some(gate) = gate {
            gate.copy_delivered();
        }
    }

    /// An outgoing exchange ended (PUBACK, PUBCOMP, a failing PUBREC, or a resumed message too
    /// large for the client): its stored copy goes.
    pub(super) fn complete_outgoing(&mut self, packet_id: PacketId) {
        // The client's window has room again for what waits in the queue.
        self.deliver_due = true;
        let Some(attached) = &mut self.attached else {
            return;
        };
        let Some(entry) = attached.exchanges.remove_in_flight(packet_id) else {
            return;
        };
        if attached.persistent {
            self.shared.journal.record(Change::RemoveQueued {
                client_id: attached.client_id.clone(),
                seq: entry.seq,
            });
        }
    }
}
