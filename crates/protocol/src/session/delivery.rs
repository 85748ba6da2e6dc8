//! The message delivery both roles share once a connection is up: packet identifiers, the
//! outgoing window, the incoming QoS 2 state, topic aliases, the peer's Maximum Packet Size and
//! the queue of packets waiting to be transmitted. The client and server machines own one each
//! and add what differs between them (CONNECT handling, keep alive, SUBSCRIBE).

use std::collections::VecDeque;

use crate::packet::{Disconnect, Packet, Publish};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion, QoS};

use super::alias::{InboundAliases, OutboundAliases};
use super::error::{RequestError, SessionError};
use super::inbound::{IdleInbound, InboundFlow, InboundOutcome};
use super::outbound::{Completion, IdleOutbound, OutboundFlow, PubRecOutcome};
use super::packet_ids::PacketIdAllocator;
use super::packet_size::{encoded_len, fit_to_maximum};
use super::state::{OutboundMessage, SessionState};
use super::Role;

/// The limits both sides agreed on in CONNECT and CONNACK.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The peer's Receive Maximum (or the configured default before MQTT 5).
    pub(crate) send_window: u16,
    /// Publishes that may wait for send quota.
    pub(crate) max_waiting: usize,
    /// Our Receive Maximum, enforced in MQTT 5 only.
    pub(crate) receive_maximum: u16,
    /// Our Topic Alias Maximum.
    pub(crate) inbound_alias_maximum: u16,
    /// The peer's Topic Alias Maximum.
    pub(crate) peer_alias_maximum: u16,
    /// How many outgoing aliases we are willing to use.
    pub(crate) outbound_alias_budget: u16,
    /// The peer's Maximum Packet Size.
    pub(crate) peer_maximum_packet_size: Option<u32>,
}

/// An application message that could not be sent from a restored session: it no longer fits
/// the peer's Maximum Packet Size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Oversized {
    pub(crate) publish: Publish,
    pub(crate) size: usize,
    pub(crate) maximum: u32,
}

#[derive(Debug)]
pub(crate) struct Delivery {
    version: ProtocolVersion,
    /// The side this machine plays; the peer is the other one.
    role: Role,
    ids: PacketIdAllocator,
    outbound: OutboundFlow,
    inbound: InboundFlow,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    peer_maximum_packet_size: Option<u32>,
    transmit: VecDeque<Packet>,
    /// A DISCONNECT is queued: "After sending a DISCONNECT packet the sender MUST NOT send any
    /// more MQTT Control Packets on that Network Connection" [MQTT-3.14.4-1].
    disconnect_queued: bool,
}

/// A delivery with no exchange open, no alias in use and nothing to send: what is left of it
/// is settings and counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleDelivery {
    version: ProtocolVersion,
    role: Role,
    next_id: u16,
    outbound: IdleOutbound,
    inbound: IdleInbound,
    inbound_alias_maximum: u16,
    outbound_alias_limit: u16,
    peer_maximum_packet_size: Option<u32>,
    disconnect_queued: bool,
}

impl Delivery {
    pub(crate) fn new(version: ProtocolVersion, role: Role) -> Self {
        Self {
            version,
            role,
            ids: PacketIdAllocator::default(),
            outbound: OutboundFlow::new(1, 0),
            // The client acknowledges in the order it received [MQTT-4.6.0-2], [MQTT-4.6.0-3].
            inbound: InboundFlow::new(u16::MAX, false, role == Role::Client),
            inbound_aliases: InboundAliases::default(),
            outbound_aliases: OutboundAliases::default(),
            peer_maximum_packet_size: None,
            transmit: VecDeque::new(),
            disconnect_queued: false,
        }
    }

    /// Lets go of the spare room of the transmit queue.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.transmit.shrink_to_fit();
    }

    pub(crate) fn version(&self) -> ProtocolVersion {
        self.version
    }

    pub(crate) fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
    }

    /// Applies what CONNECT and CONNACK settled; aliases start empty [MQTT-3.3.2-7].
    pub(crate) fn start(&mut self, limits: &Limits) {
        let v5 = self.version.is_v5();
        self.outbound = OutboundFlow::new(limits.send_window, limits.max_waiting);
        self.inbound.set_receive_maximum(limits.receive_maximum, v5);
        let (inbound_alias, peer_alias) = if v5 {
            (limits.inbound_alias_maximum, limits.peer_alias_maximum)
        } else {
            (0, 0)
        };
        self.inbound_aliases = InboundAliases::new(inbound_alias);
        self.outbound_aliases = OutboundAliases::new(peer_alias, limits.outbound_alias_budget);
        self.peer_maximum_packet_size = limits.peer_maximum_packet_size.filter(|_| v5);
    }

    /// Queues a packet other than PUBLISH, trimmed to the peer's Maximum Packet Size. One that
    /// cannot be trimmed enough is not sent at all ([MQTT-3.1.2-27], [MQTT-3.2.2-15]); the
    /// error says how large it was.
    pub(crate) fn send(&mut self, packet: Packet) -> Result<(), RequestError> {
        if self.disconnect_queued {
            return Err(RequestError::Closed);
        }
        match fit_to_maximum(packet, self.version, self.peer_maximum_packet_size) {
            Ok(packet) => {
                self.transmit.push_back(packet);
                Ok(())
            }
            Err(size) => Err(RequestError::PacketTooLarge {
                size,
                maximum: self.peer_maximum_packet_size.unwrap_or(u32::MAX),
            }),
        }
    }

    /// Queues a protocol-driven answer (PUBACK, PUBREL, PINGRESP, ...). One the peer's
    /// Maximum Packet Size cannot hold even without diagnostics is not sent: the peer forbade
    /// it, and the exchange then stalls on the peer's side, which is the peer's doing.
    pub(crate) fn answer(&mut self, packet: Packet) {
        let _ = self.send(packet);
    }

    /// Stops all sending without a DISCONNECT: the connection is to be closed as is.
    pub(crate) fn stop(&mut self) {
        self.disconnect_queued = true;
    }

    /// The peer's Maximum Packet Size, known before the rest of the limits when a server
    /// refuses a connection.
    pub(crate) fn set_peer_maximum_packet_size(&mut self, maximum: Option<u32>) {
        self.peer_maximum_packet_size = maximum.filter(|_| self.version.is_v5());
    }

    /// Queues a DISCONNECT (MQTT 5 only for the server: a 3.1.1 server just closes) and
    /// stops all sending after it.
    pub(crate) fn send_disconnect(&mut self, disconnect: Disconnect) {
        let packet = if self.version.is_v5() {
            Some(disconnect)
        } else if self.role == Role::Client {
            Some(Disconnect::default())
        } else {
            None
        };
        if let Some(disconnect) = packet {
            self.answer(Packet::Disconnect(disconnect));
        }
        self.disconnect_queued = true;
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Packet> {
        self.transmit.pop_front()
    }

    /// Sends an application message: QoS 0 at once, QoS 1 and 2 with a fresh identifier
    /// through the inflight window. Returns the identifier of a QoS 1 or 2 message.
    pub(crate) fn publish(
        &mut self,
        mut publish: Publish,
    ) -> Result<Option<PacketId>, RequestError> {
        if publish.topic.is_empty() {
            return Err(RequestError::EmptyTopic);
        }
        // "The DUP flag MUST be set to 1 by the Client or Server when it attempts to re-deliver
        // a PUBLISH packet" [MQTT-3.3.1-1] and to 0 otherwise; new messages are never re-sends.
        publish.dup = false;
        if publish.properties.topic_alias.is_some() {
            // A write would give an empty handle a set of its own.
            publish.properties.topic_alias = None;
        }
        if publish.qos == QoS::AtMostOnce {
            publish.packet_id = None;
            self.check_size(&publish)?;
            self.transmit_publish(publish);
            return Ok(None);
        }
        let packet_id = self
            .ids
            .allocate()
            .ok_or(RequestError::PacketIdsExhausted)?;
        publish.packet_id = Some(packet_id);
        if let Err(error) = self.check_size(&publish) {
            self.ids.release(packet_id);
            return Err(error);
        }
        if let Err(mut refused) = self.outbound.submit(publish) {
            self.ids.release(packet_id);
            refused.packet_id = None;
            return Err(RequestError::QueueFull(refused));
        }
        self.pump();
        Ok(Some(packet_id))
    }

    fn check_size(&self, publish: &Publish) -> Result<(), RequestError> {
        let Some(maximum) = self.peer_maximum_packet_size else {
            return Ok(());
        };
        // Sized without a topic alias: a re-send on a later connection carries the full name.
        let size = encoded_len(&Packet::Publish(publish.clone()), self.version);
        if u32::try_from(size).is_ok_and(|size| size <= maximum) {
            Ok(())
        } else {
            Err(RequestError::PacketTooLarge { size, maximum })
        }
    }

    /// Moves publishes from the waiting queue into the window while quota lasts.
    fn pump(&mut self) {
        while let Some(publish) = self.outbound.next_to_send() {
            self.transmit_publish(publish);
        }
    }

    fn transmit_publish(&mut self, mut publish: Publish) {
        if self.disconnect_queued {
            return;
        }
        self.outbound_aliases.apply(&mut publish);
        self.transmit.push_back(Packet::Publish(publish));
    }

    /// An incoming PUBLISH: aliases resolved, duplicates of QoS 2 messages filtered. Returns
    /// the message to hand to the application, if any.
    pub(crate) fn handle_publish(
        &mut self,
        mut publish: Publish,
    ) -> Result<Option<Publish>, SessionError> {
        let sender = self.role.peer();
        self.inbound_aliases.resolve(&mut publish, sender)?;
        match self.inbound.on_publish(publish, sender)? {
            InboundOutcome::Deliver(publish) => Ok(Some(publish)),
            InboundOutcome::Reply(packet) => {
                self.answer(packet);
                Ok(None)
            }
            InboundOutcome::Duplicate => Ok(None),
        }
    }

    /// PUBACK, PUBREC, PUBREL or PUBCOMP: advances the exchange it belongs to and returns the
    /// outgoing exchange it completed, if any. Other packets are ignored.
    pub(crate) fn handle_acknowledgement(
        &mut self,
        packet: Packet,
    ) -> Result<Option<Completion>, SessionError> {
        let completion = match packet {
            Packet::PubAck(ack) => self.outbound.on_puback(ack)?,
            Packet::PubComp(ack) => self.outbound.on_pubcomp(ack)?,
            Packet::PubRec(ack) => match self.outbound.on_pubrec(ack, self.version.is_v5())? {
                PubRecOutcome::Release(release) => {
                    self.answer(release);
                    None
                }
                PubRecOutcome::Refused(completion) => Some(completion),
            },
            Packet::PubRel(release) => {
                let answer = self.inbound.on_pubrel(&release, self.version.is_v5())?;
                self.answer(answer);
                None
            }
            _ => None,
        };
        Ok(self.finish(completion))
    }

    /// Frees the identifier of a finished exchange and lets waiting publishes into the window.
    fn finish(&mut self, completion: Option<Completion>) -> Option<Completion> {
        if let Some(done) = &completion {
            self.ids.release(done.packet_id);
            self.pump();
        }
        completion
    }

    pub(crate) fn ack_incoming(
        &mut self,
        packet_id: PacketId,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> Result<(), RequestError> {
        let packets =
            self.inbound
                .answer(packet_id, reason_code, properties, self.version.is_v5())?;
        for packet in packets {
            self.answer(packet);
        }
        Ok(())
    }

    pub(crate) fn allocate_id(&mut self) -> Result<PacketId, RequestError> {
        self.ids.allocate().ok_or(RequestError::PacketIdsExhausted)
    }

    pub(crate) fn release_id(&mut self, packet_id: PacketId) {
        self.ids.release(packet_id);
    }

    /// Resumes a stored session: PUBREL packets go out again, publishes again with DUP where
    /// they had been sent, all with their original identifiers [MQTT-4.4.0-1]. Publishes that
    /// no longer fit the peer's Maximum Packet Size are returned: "the Server MUST discard it
    /// without sending it and then behave as if it had completed sending that publication"
    /// [MQTT-3.1.2-28].
    pub(crate) fn restore(&mut self, state: SessionState) -> Vec<Oversized> {
        let mut kept = Vec::with_capacity(state.outbound.len());
        let mut oversized = Vec::new();
        for message in state.outbound {
            let Some(packet_id) = message.packet_id() else {
                continue;
            };
            if let OutboundMessage::Publish(publish) = &message {
                if publish.qos == QoS::AtMostOnce {
                    continue;
                }
                if let Err(RequestError::PacketTooLarge { size, maximum }) =
                    self.check_size(publish)
                {
                    oversized.push(Oversized {
                        publish: (**publish).clone(),
                        size,
                        maximum,
                    });
                    continue;
                }
            }
            // A stored state that names one identifier twice keeps its first exchange only.
            if self.ids.reserve(packet_id) {
                kept.push(message);
            }
        }
        for release in self.outbound.restore(kept) {
            self.answer(release);
        }
        self.inbound.restore(state.inbound_awaiting_release);
        self.pump();
        oversized
    }

    /// Takes the session state out, leaving nothing in flight.
    pub(crate) fn take_state(&mut self) -> SessionState {
        let outbound = self.outbound.take_state();
        for packet_id in outbound.iter().filter_map(OutboundMessage::packet_id) {
            self.ids.release(packet_id);
        }
        SessionState {
            outbound,
            inbound_awaiting_release: self.inbound.take_state(),
        }
    }

    pub(crate) fn send_quota(&self) -> usize {
        self.outbound.send_quota()
    }

    pub(crate) fn waiting(&self) -> usize {
        self.outbound.waiting()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.outbound.in_flight()
    }

    /// What an idle connection's delivery keeps when no exchange is open, no alias is in use
    /// and nothing waits to be sent (see `server/idle.rs`): its settings and counters, a
    /// fifth of its size. `None` otherwise.
    pub(crate) fn idle(&self) -> Option<IdleDelivery> {
        let Self {
            version,
            role,
            ids,
            outbound,
            inbound,
            inbound_aliases,
            outbound_aliases,
            peer_maximum_packet_size,
            transmit,
            disconnect_queued,
        } = self;
        if !transmit.is_empty() {
            return None;
        }
        Some(IdleDelivery {
            version: *version,
            role: *role,
            next_id: ids.idle()?,
            outbound: outbound.idle()?,
            inbound: inbound.idle()?,
            inbound_alias_maximum: inbound_aliases.idle()?,
            outbound_alias_limit: outbound_aliases.idle()?,
            peer_maximum_packet_size: *peer_maximum_packet_size,
            disconnect_queued: *disconnect_queued,
        })
    }

    /// The delivery [`Self::idle`] described.
    pub(crate) fn from_idle(idle: IdleDelivery) -> Self {
        let IdleDelivery {
            version,
            role,
            next_id,
            outbound,
            inbound,
            inbound_alias_maximum,
            outbound_alias_limit,
            peer_maximum_packet_size,
            disconnect_queued,
        } = idle;
        Self {
            version,
            role,
            ids: PacketIdAllocator::from_idle(next_id),
            outbound: OutboundFlow::from_idle(outbound),
            inbound: InboundFlow::from_idle(inbound),
            inbound_aliases: InboundAliases::new(inbound_alias_maximum),
            outbound_aliases: OutboundAliases::from_idle(outbound_alias_limit),
            peer_maximum_packet_size,
            transmit: VecDeque::new(),
            disconnect_queued,
        }
    }
}
