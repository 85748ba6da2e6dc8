//! The server side of one MQTT connection: waits for CONNECT, checks what the codec cannot
//! (it must come first and only once), lets the application accept or refuse it, then runs
//! the QoS flows through the shared delivery core, surfaces SUBSCRIBE, UNSUBSCRIBE, AUTH and
//! DISCONNECT for the broker to answer, answers PINGREQ, and enforces Keep Alive. It does no
//! IO and reads no clock; the broker's connection task drives it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::packet::{Auth, Disconnect, Packet, PacketType, Publish, SubAck, UnsubAck};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion, QoS};

use super::config::ServerConfig;
use super::delivery::{Delivery, Limits, Oversized};
use super::error::{RequestError, SessionError};
use super::events::ServerEvent;
use super::keep_alive::ServerKeepAlive;
use super::outbound::Completion;
use super::state::SessionState;
use super::Role;

mod data_stream;
mod handshake;
mod idle;

use handshake::ConnectTerms;

pub use data_stream::DataStreamTemplate;
pub use idle::IdleServerSession;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitingConnect {
        since: Instant,
    },
    /// CONNECT surfaced; the application has not answered.
    AwaitingAnswer,
    Connected,
    Closed,
}

/// The server side of one MQTT connection. See the [module documentation](super).
#[derive(Debug)]
pub struct ServerSession {
    /// Shared: every connection of a broker has the same, and 8 bytes are less than 40.
    config: Arc<ServerConfig>,
    state: ServerState,
    delivery: Delivery,
    /// What later packets and the answer need of the CONNECT, once it arrived.
    connect: Option<ConnectTerms>,
    keep_alive: Option<ServerKeepAlive>,
    /// Packets that arrived between CONNECT and the application's answer.
    early: Vec<Packet>,
    maximum_qos: QoS,
    retain_available: bool,
    /// Requests awaiting the application's SUBACK / UNSUBACK, with their number of filters.
    pending_subscribes: FxHashMap<PacketId, usize>,
    pending_unsubscribes: FxHashMap<PacketId, usize>,
    events: VecDeque<ServerEvent>,
    error: Option<SessionError>,
    /// The limits settled by `accept`, which data streams inherit.
    limits: Option<Limits>,
    /// A data stream of a multi-stream QUIC connection: no CONNECT, keep alive or DISCONNECT
    /// of its own (see `data_stream.rs`).
    data_stream: bool,
}

impl ServerSession {
    /// A machine for a connection just opened. `config` may be an [`Arc`] that all of a
    /// server's machines share.
    pub fn new(config: impl Into<Arc<ServerConfig>>, now: Instant) -> Self {
        Self {
            config: config.into(),
            state: ServerState::AwaitingConnect { since: now },
            // Replaced by the CONNECT's version as soon as it arrives.
            delivery: Delivery::new(ProtocolVersion::V5, Role::Server),
            connect: None,
            keep_alive: None,
            early: Vec::new(),
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            pending_subscribes: FxHashMap::default(),
            pending_unsubscribes: FxHashMap::default(),
            events: VecDeque::new(),
            error: None,
            limits: None,
            data_stream: false,
        }
    }

    /// The protocol version from CONNECT; the codec needs it for every later packet.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.connect.map(|connect| connect.protocol)
    }

    /// Whether the connection was accepted and is still open.
    pub fn is_connected(&self) -> bool {
        self.state == ServerState::Connected
    }

    /// Whether the connection must close once `poll_transmit` returns `None`.
    pub fn is_closed(&self) -> bool {
        self.state == ServerState::Closed
    }

    /// The error that closed the machine, if one did.
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// The Keep Alive in force once accepted; `None` when switched off.
    pub fn keep_alive(&self) -> Option<Duration> {
        self.keep_alive
            .as_ref()
            .and_then(ServerKeepAlive::keep_alive)
    }

    /// How many more QoS 1 and 2 publishes the client's Receive Maximum lets out now.
    pub fn send_quota(&self) -> usize {
        self.delivery.send_quota()
    }

    /// QoS 1 and 2 publishes accepted and waiting for send quota.
    pub fn queued_publishes(&self) -> usize {
        self.delivery.waiting()
    }

    /// QoS 1 and 2 exchanges sent and not yet complete.
    pub fn in_flight(&self) -> usize {
        self.delivery.in_flight()
    }

    /// Sends an application message to the client. The topic must be a full topic name;
    /// aliases are assigned by the machine. A message larger than the client's Maximum Packet
    /// Size is refused with [`RequestError::PacketTooLarge`]: the broker then drops it for
    /// this subscriber and counts it [MQTT-3.1.2-28].
    pub fn publish(&mut self, publish: Publish) -> Result<Option<PacketId>, RequestError> {
        self.connected()?;
        self.delivery.publish(publish)
    }

    /// Acknowledges an incoming QoS 1 or 2 message (PUBACK or PUBREC) once it is safe.
    pub fn ack_incoming(
        &mut self,
        packet_id: PacketId,
        reason_code: ReasonCode,
    ) -> Result<(), RequestError> {
        self.ack_incoming_with(packet_id, reason_code, Properties::default())
    }

    /// [`ack_incoming`](Self::ack_incoming) with a reason string or user properties.
    pub fn ack_incoming_with(
        &mut self,
        packet_id: PacketId,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> Result<(), RequestError> {
        self.connected()?;
        self.delivery
            .ack_incoming(packet_id, reason_code, properties)
    }

    /// Answers a SUBSCRIBE with one reason code per topic filter, in order [MQTT-3.9.3-1].
    pub fn suback(&mut self, suback: SubAck) -> Result<(), RequestError> {
        self.connected()?;
        let expected = take_pending(&mut self.pending_subscribes, suback.packet_id)?;
        if suback.reason_codes.len() != expected {
            self.pending_subscribes.insert(suback.packet_id, expected);
            return Err(RequestError::ReasonCodeCount {
                expected,
                got: suback.reason_codes.len(),
            });
        }
        self.delivery.send(Packet::SubAck(suback))
    }

    /// Answers an UNSUBSCRIBE; in MQTT 5 with one reason code per topic filter
    /// [MQTT-3.11.3-1] (MQTT 3.1.1 sends none).
    pub fn unsuback(&mut self, mut unsuback: UnsubAck) -> Result<(), RequestError> {
        self.connected()?;
        let expected = take_pending(&mut self.pending_unsubscribes, unsuback.packet_id)?;
        if self.delivery.version().is_v5() {
            if unsuback.reason_codes.len() != expected {
                self.pending_unsubscribes
                    .insert(unsuback.packet_id, expected);
                return Err(RequestError::ReasonCodeCount {
                    expected,
                    got: unsuback.reason_codes.len(),
                });
            }
        } else {
            unsuback.reason_codes.clear();
        }
        self.delivery.send(Packet::UnsubAck(unsuback))
    }

    /// Sends an AUTH packet (MQTT 5, when CONNECT named an Authentication Method
    /// [MQTT-4.12.0-6]), during the connect exchange or later for re-authentication.
    pub fn auth(&mut self, auth: Auth) -> Result<(), RequestError> {
        if matches!(
            self.state,
            ServerState::Closed | ServerState::AwaitingConnect { .. }
        ) {
            return Err(RequestError::NotConnected);
        }
        if !self.delivery.version().is_v5() {
            return Err(RequestError::RequiresV5("AUTH"));
        }
        if !self.has_auth_method() {
            return Err(RequestError::NoAuthenticationMethod);
        }
        self.delivery.send(Packet::Auth(auth))
    }

    /// Closes the connection: with DISCONNECT in MQTT 5 once connected, without a packet
    /// otherwise ("A Server MUST NOT send a DISCONNECT until after it has sent a CONNACK with
    /// Reason Code of less than 0x80" [MQTT-3.14.0-1]; a 3.1.1 server has no DISCONNECT).
    /// "The Session Expiry Interval MUST NOT be sent on a DISCONNECT by the Server"
    /// [MQTT-3.14.2-2], so it is removed.
    pub fn disconnect(&mut self, mut disconnect: Disconnect) -> Result<(), RequestError> {
        match self.state {
            ServerState::Closed => return Err(RequestError::Closed),
            // A data stream carries no DISCONNECT: the stream itself is closed.
            ServerState::Connected if self.data_stream => self.delivery.stop(),
            ServerState::Connected => {
                disconnect.properties.session_expiry_interval = None;
                self.delivery.send_disconnect(disconnect);
            }
            ServerState::AwaitingConnect { .. } | ServerState::AwaitingAnswer => {
                self.delivery.stop();
            }
        }
        self.state = ServerState::Closed;
        Ok(())
    }

    /// Takes in a packet from the client.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) -> Result<(), SessionError> {
        if let Some(keep_alive) = &mut self.keep_alive {
            keep_alive.on_received(now);
        }
        let result = match self.state {
            ServerState::Closed => Ok(()),
            ServerState::AwaitingConnect { .. } => match packet {
                Packet::Connect(connect) => {
                    self.on_connect(connect);
                    Ok(())
                }
                other => Err(SessionError::FirstPacketNotConnect(other.packet_type())),
            },
            ServerState::AwaitingAnswer => match packet {
                Packet::Connect(_) => Err(SessionError::SecondConnect),
                Packet::Auth(auth) => self.on_auth(auth),
                other if self.early.len() >= self.config.max_packets_before_accept => {
                    drop(other);
                    Err(SessionError::TooManyPacketsBeforeConnAck(
                        self.config.max_packets_before_accept,
                    ))
                }
                other => {
                    self.early.push(other);
                    Ok(())
                }
            },
            ServerState::Connected => self.process(packet),
        };
        result.map_err(|error| self.fail(error))
    }

    /// Runs the timers: the connect timeout before CONNECT, Keep Alive once connected.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        match self.state {
            ServerState::AwaitingConnect { since } => match self.config.connect_timeout {
                Some(timeout) if now >= since + timeout => {
                    Err(self.fail(SessionError::ConnectTimeout(timeout)))
                }
                _ => Ok(()),
            },
            ServerState::Connected => match &self.keep_alive {
                Some(keep_alive) if keep_alive.is_expired(now) => {
                    let keep_alive = keep_alive.keep_alive().unwrap_or_default();
                    Err(self.fail(SessionError::KeepAliveTimeout { keep_alive }))
                }
                _ => Ok(()),
            },
            ServerState::AwaitingAnswer | ServerState::Closed => Ok(()),
        }
    }

    /// The next packet to write to the network.
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Packet> {
        self.delivery.poll_transmit()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        next_deadline(self.state, &self.config, self.keep_alive.as_ref())
    }

    /// Lets go of the spare room of the machine's queues (events, packets to send, requests
    /// awaiting an answer), for a connection that will stay idle for long: each keeps the
    /// room of its busiest moment otherwise.
    pub fn shrink_to_fit(&mut self) {
        self.events.shrink_to_fit();
        self.early.shrink_to_fit();
        self.pending_subscribes.shrink_to_fit();
        self.pending_unsubscribes.shrink_to_fit();
        self.delivery.shrink_to_fit();
    }

    /// Takes out the session state for the broker to store with the session.
    pub fn take_state(&mut self) -> SessionState {
        self.delivery.take_state()
    }

    fn connected(&self) -> Result<(), RequestError> {
        match self.state {
            ServerState::Connected => Ok(()),
            ServerState::Closed => Err(RequestError::Closed),
            _ => Err(RequestError::NotConnected),
        }
    }

    fn has_auth_method(&self) -> bool {
        self.connect.is_some_and(|c| c.authentication)
    }

    fn fail(&mut self, error: SessionError) -> SessionError {
        // Only a connected MQTT 5 server may report with DISCONNECT [MQTT-3.14.0-1].
        if self.state == ServerState::Connected
            && !self.data_stream
            && self.delivery.version().is_v5()
            && error.is_reported_to_peer()
        {
            self.delivery
                .send_disconnect(Disconnect::new(error.reason_code()));
        } else {
            self.delivery.stop();
        }
        self.state = ServerState::Closed;
        self.early.clear();
        self.error = Some(error.clone());
        error
    }

    fn on_auth(&mut self, auth: Auth) -> Result<(), SessionError> {
        if !self.delivery.version().is_v5() {
            return Err(SessionError::WrongDirection {
                packet: PacketType::Auth,
                sender: Role::Client,
            });
        }
        // "If the Client does not include an Authentication Method in the CONNECT, the Client
        // MUST NOT send an AUTH packet to the Server" [MQTT-4.12.0-7].
        if !self.has_auth_method() {
            return Err(SessionError::AuthWithoutMethod);
        }
        self.events.push_back(ServerEvent::Auth(auth));
        Ok(())
    }

    fn process(&mut self, packet: Packet) -> Result<(), SessionError> {
        if self.data_stream {
            self.check_data_stream_packet(&packet)?;
        }
        match packet {
            Packet::Connect(_) => Err(SessionError::SecondConnect),
            Packet::Publish(publish) => self.on_publish(publish),
            ack @ (Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)) => {
                let done = self.delivery.handle_acknowledgement(ack)?;
                self.report_completion(done);
                Ok(())
            }
            Packet::Subscribe(subscribe) => {
                let count = subscribe.filters.len();
                if self.pending_subscribes.contains_key(&subscribe.packet_id) {
                    return self.refuse_reused_id(
                        PacketType::Subscribe,
                        subscribe.packet_id,
                        count,
                    );
                }
                self.pending_subscribes.insert(subscribe.packet_id, count);
                self.events.push_back(ServerEvent::Subscribe(subscribe));
                Ok(())
            }
            Packet::Unsubscribe(unsubscribe) => {
                let count = unsubscribe.filters.len();
                if self
                    .pending_unsubscribes
                    .contains_key(&unsubscribe.packet_id)
                {
                    return self.refuse_reused_id(
                        PacketType::Unsubscribe,
                        unsubscribe.packet_id,
                        count,
                    );
                }
                self.pending_unsubscribes
                    .insert(unsubscribe.packet_id, count);
                self.events.push_back(ServerEvent::Unsubscribe(unsubscribe));
                Ok(())
            }
            Packet::PingReq => {
                // "The Server MUST send a PINGRESP packet in response to a PINGREQ packet"
                // [MQTT-3.12.4-1].
                self.delivery.answer(Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(disconnect) => self.on_disconnect(disconnect),
            Packet::Auth(auth) => self.on_auth(auth),
            other => Err(SessionError::WrongDirection {
                packet: other.packet_type(),
                sender: Role::Client,
            }),
        }
    }

    fn on_publish(&mut self, publish: Publish) -> Result<(), SessionError> {
        // "If the Server included a Maximum QoS in its CONNACK response to a Client and it
        // receives a PUBLISH packet with a QoS greater than this then it uses DISCONNECT with
        // Reason Code 0x9B (QoS not supported)" (3.2.2.3.4).
        if publish.qos > self.maximum_qos {
            return Err(SessionError::QoSNotSupported {
                qos: publish.qos,
                maximum: self.maximum_qos,
            });
        }
        // "If the Server included Retain Available in its CONNACK response to a Client with its
        // value set to 0 and it receives a PUBLISH packet with the RETAIN flag is set to 1, then
        // it uses the DISCONNECT Reason Code of 0x9A (Retain not supported)" (3.2.2.3.5).
        if publish.retain && !self.retain_available {
            return Err(SessionError::RetainNotSupported);
        }
        if let Some(publish) = self.delivery.handle_publish(publish)? {
            self.events.push_back(ServerEvent::Publish(publish));
        }
        Ok(())
    }

    fn on_disconnect(&mut self, disconnect: Disconnect) -> Result<(), SessionError> {
        let connect_expiry = self
            .connect
            .and_then(|c| c.session_expiry_interval)
            .unwrap_or(0);
        // "If the Session Expiry Interval in the CONNECT packet was zero, then it is a Protocol
        // Error to set a non-zero Session Expiry Interval in the DISCONNECT packet sent by the
        // Client. If such a non-zero Session Expiry Interval is received by the Server, it does
        // not treat it as a valid DISCONNECT packet" (3.14.2.2.2).
        if connect_expiry == 0
            && disconnect
                .properties
                .session_expiry_interval
                .is_some_and(|e| e != 0)
        {
            return Err(SessionError::SessionExpiryAfterZero);
        }
        self.delivery.stop();
        self.state = ServerState::Closed;
        self.events.push_back(ServerEvent::Disconnected(disconnect));
        Ok(())
    }

    /// A SUBSCRIBE or UNSUBSCRIBE reusing the identifier of one still unanswered: MQTT 5 has
    /// a reason code for it (0x91 Packet Identifier in use), 3.1.1 only the protocol error.
    fn refuse_reused_id(
        &mut self,
        packet: PacketType,
        packet_id: PacketId,
        count: usize,
    ) -> Result<(), SessionError> {
        if !self.delivery.version().is_v5() {
            return Err(SessionError::PacketIdInUse(packet_id));
        }
        let reason_codes = vec![ReasonCode::PacketIdentifierInUse; count];
        let properties = Properties::default();
        self.delivery.answer(if packet == PacketType::Subscribe {
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties,
            })
        } else {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reason_codes,
                properties,
            })
        });
        Ok(())
    }

    fn report_completion(&mut self, completion: Option<Completion>) {
        if let Some(done) = completion {
            self.events.push_back(ServerEvent::PublishAcknowledged {
                packet_id: done.packet_id,
                reason_code: done.reason_code,
                properties: done.properties,
            });
        }
    }

    fn report_dropped(&mut self, dropped: Vec<Oversized>) {
        for Oversized {
            publish,
            size,
            maximum,
        } in dropped
        {
            self.events.push_back(ServerEvent::PublishDropped {
                publish,
                size,
                maximum,
            });
        }
    }
}

fn take_pending(
    pending: &mut FxHashMap<PacketId, usize>,
    packet_id: PacketId,
) -> Result<usize, RequestError> {
    pending
        .remove(&packet_id)
        .ok_or(RequestError::UnknownPacketId(packet_id))
}

/// When a machine in `state` must run again even if nothing arrives: the CONNECT deadline,
/// then keep alive.
fn next_deadline(
    state: ServerState,
    config: &ServerConfig,
    keep_alive: Option<&ServerKeepAlive>,
) -> Option<Instant> {
    match state {
        ServerState::AwaitingConnect { since } => config.connect_timeout.map(|t| since + t),
        ServerState::Connected => keep_alive.and_then(ServerKeepAlive::deadline),
        ServerState::AwaitingAnswer | ServerState::Closed => None,
    }
}
