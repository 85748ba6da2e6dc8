//! The client side of one MQTT connection: sends CONNECT, takes in CONNACK and the limits it
//! carries, runs the QoS flows through the shared delivery core, matches SUBACK and UNSUBACK
//! to their requests, and keeps the connection alive with PINGREQ. It does no IO and reads no
//! clock; the async client drives it.

use std::collections::VecDeque;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::packet::{Auth, Disconnect, Packet, PacketType, Publish, Subscribe, Unsubscribe};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::topic::TopicFilter;
use crate::types::{PacketId, ProtocolVersion, SubscriptionOptions};

use super::config::ClientConfig;
use super::delivery::{Delivery, Limits, Oversized};
use super::error::{RequestError, SessionError};
use super::events::{ClientEvent, ConnectionInfo};
use super::keep_alive::{ClientKeepAlive, PingAction};
use super::outbound::Completion;
use super::state::SessionState;
use super::Role;

mod connack;
mod data_stream;

use data_stream::check_data_stream_packet;
pub use data_stream::ClientStreamTemplate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// CONNECT is queued; nothing but AUTH may arrive before CONNACK [MQTT-3.2.0-1].
    AwaitingConnAck {
        since: Instant,
    },
    Connected,
    Closed,
}

/// The client side of one MQTT connection. See the [module documentation](super).
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    delivery: Delivery,
    keep_alive: ClientKeepAlive,
    /// The stored session, held until CONNACK says whether the server still has it.
    resumed: Option<SessionState>,
    connection: Option<ConnectionInfo>,
    /// What CONNACK settled, kept for the data streams of a multi-stream QUIC connection.
    limits: Option<Limits>,
    /// This machine serves a data stream of a multi-stream QUIC connection (see
    /// `client/data_stream.rs`): no CONNECT, keep alive, DISCONNECT or AUTH of its own.
    data_stream: bool,
    /// Requests awaiting SUBACK / UNSUBACK, with their number of topic filters.
    pending_subscribes: FxHashMap<PacketId, usize>,
    pending_unsubscribes: FxHashMap<PacketId, usize>,
    events: VecDeque<ClientEvent>,
    error: Option<SessionError>,
}

impl ClientSession {
    /// A machine for a new connection, with CONNECT queued. `resumed` is the state taken from
    /// the previous connection of this session, if any; with Clean Start it is discarded
    /// [MQTT-3.1.2-4]. `None` with Clean Start 0 means "no session state": a CONNACK that
    /// claims a session then closes the connection [MQTT-3.2.2-4]; pass
    /// `Some(SessionState::default())` to resume a session that had nothing in flight.
    pub fn new(config: ClientConfig, resumed: Option<SessionState>, now: Instant) -> Self {
        let connect = &config.connect;
        let resumed = if connect.clean_start { None } else { resumed };
        let mut delivery = Delivery::new(connect.protocol, Role::Client);
        delivery.answer(Packet::Connect(Box::new(connect.clone())));
        let keep_alive = ClientKeepAlive::new(connect.keep_alive, config.ping_timeout, now);
        Self {
            config,
            state: ClientState::AwaitingConnAck { since: now },
            delivery,
            keep_alive,
            resumed,
            connection: None,
            limits: None,
            data_stream: false,
            pending_subscribes: FxHashMap::default(),
            pending_unsubscribes: FxHashMap::default(),
            events: VecDeque::new(),
            error: None,
        }
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> ProtocolVersion {
        self.delivery.version()
    }

    /// What CONNACK established, once it arrived.
    pub fn connection(&self) -> Option<&ConnectionInfo> {
        self.connection.as_ref()
    }

    /// Whether CONNACK accepted the connection and it is still open.
    pub fn is_connected(&self) -> bool {
        self.state == ClientState::Connected
    }

    /// Whether the connection must close once `poll_transmit` returns `None`.
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    /// The error that closed the machine, if one did.
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// How many more QoS 1 and 2 publishes the server's Receive Maximum lets out now.
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

    /// Publishes an application message. The topic must be a full topic name: topic aliases
    /// are assigned by the machine. QoS 1 and 2 messages get a packet identifier, returned
    /// here and reported again in [`ClientEvent::PublishAcknowledged`]; the `dup` and
    /// `packet_id` fields of `publish` are ignored.
    pub fn publish(&mut self, mut publish: Publish) -> Result<Option<PacketId>, RequestError> {
        let connection = self.connected()?;
        if publish.qos > connection.maximum_qos {
            return Err(RequestError::QoSNotSupported {
                requested: publish.qos,
                maximum: connection.maximum_qos,
            });
        }
        if publish.retain && !connection.retain_available {
            return Err(RequestError::RetainNotSupported);
        }
        // "A PUBLISH packet sent from a Client to a Server MUST NOT contain a Subscription
        // Identifier" [MQTT-3.3.4-6].
        if !publish.properties.subscription_identifiers.is_empty() {
            publish.properties.subscription_identifiers.clear();
        }
        self.delivery.publish(publish)
    }

    /// Sends SUBSCRIBE; the SUBACK comes back as [`ClientEvent::SubAck`] with the identifier
    /// returned here.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: Properties,
    ) -> Result<PacketId, RequestError> {
        self.connected()?;
        if filters.is_empty() {
            return Err(RequestError::NoTopicFilters);
        }
        let packet_id = self.delivery.allocate_id()?;
        let count = filters.len();
        let packet = Packet::Subscribe(Subscribe {
            packet_id,
            filters,
            properties,
        });
        if let Err(error) = self.delivery.send(packet) {
            self.delivery.release_id(packet_id);
            return Err(error);
        }
        self.pending_subscribes.insert(packet_id, count);
        Ok(packet_id)
    }

    /// Sends UNSUBSCRIBE; the UNSUBACK comes back as [`ClientEvent::UnsubAck`].
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<PacketId, RequestError> {
        self.connected()?;
        if filters.is_empty() {
            return Err(RequestError::NoTopicFilters);
        }
        let packet_id = self.delivery.allocate_id()?;
        let count = filters.len();
        let packet = Packet::Unsubscribe(Unsubscribe {
            packet_id,
            filters,
            properties,
        });
        if let Err(error) = self.delivery.send(packet) {
            self.delivery.release_id(packet_id);
            return Err(error);
        }
        self.pending_unsubscribes.insert(packet_id, count);
        Ok(packet_id)
    }

    /// Acknowledges an incoming QoS 1 or 2 message (PUBACK or PUBREC). Acknowledgements leave
    /// in the order the messages arrived ([MQTT-4.6.0-2], [MQTT-4.6.0-3]), so an answer may
    /// wait for an earlier message's. A reason code of 0x80 or more refuses the message (MQTT
    /// 5; before, every acknowledgement is a plain one).
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

    /// Sends an AUTH packet (MQTT 5, with an Authentication Method in CONNECT [MQTT-4.12.0-7]).
    pub fn auth(&mut self, auth: Auth) -> Result<(), RequestError> {
        if self.state == ClientState::Closed {
            return Err(RequestError::Closed);
        }
        if self.data_stream {
            return Err(RequestError::ControlStreamOnly(PacketType::Auth));
        }
        if !self.version().is_v5() {
            return Err(RequestError::RequiresV5("AUTH"));
        }
        if self
            .config
            .connect
            .properties
            .authentication_method
            .is_none()
        {
            return Err(RequestError::NoAuthenticationMethod);
        }
        self.delivery.send(Packet::Auth(auth))
    }

    /// Sends DISCONNECT and closes. With reason 0x00 the server discards the will
    /// [MQTT-3.14.4-3]; 0x04 asks it to publish the will. A non-zero Session Expiry Interval
    /// is refused if CONNECT had none (3.14.2.2.2). On a data stream nothing is sent (the
    /// DISCONNECT belongs on the control stream): the machine just closes, and the driver
    /// closes the stream.
    pub fn disconnect(&mut self, disconnect: Disconnect) -> Result<(), RequestError> {
        if self.state == ClientState::Closed {
            return Err(RequestError::Closed);
        }
        if self.data_stream {
            self.delivery.stop();
            self.state = ClientState::Closed;
            return Ok(());
        }
        let connect_expiry = self
            .config
            .connect
            .properties
            .session_expiry_interval
            .unwrap_or(0);
        if self.version().is_v5()
            && connect_expiry == 0
            && disconnect
                .properties
                .session_expiry_interval
                .is_some_and(|expiry| expiry != 0)
        {
            return Err(RequestError::SessionExpiryAfterZero);
        }
        self.delivery.send_disconnect(disconnect);
        self.state = ClientState::Closed;
        Ok(())
    }

    /// Takes in a packet from the server.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) -> Result<(), SessionError> {
        if self.state == ClientState::Closed {
            return Ok(());
        }
        match self.process(packet, now) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(error)),
        }
    }

    /// Runs the timers: sends PINGREQ when due, fails the connection when CONNACK or PINGRESP
    /// is overdue.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        match self.state {
            ClientState::Closed => Ok(()),
            ClientState::AwaitingConnAck { since } => match self.config.connack_timeout {
                Some(timeout) if now >= since + timeout => {
                    Err(self.fail(SessionError::ConnAckTimeout(timeout)))
                }
                _ => Ok(()),
            },
            ClientState::Connected => match self.keep_alive.on_timeout(now) {
                PingAction::None => Ok(()),
                PingAction::SendPing => {
                    self.delivery.answer(Packet::PingReq);
                    Ok(())
                }
                PingAction::Expired(waited) => Err(self.fail(SessionError::PingTimeout(waited))),
            },
        }
    }

    /// The next packet to write to the network.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        let packet = self.delivery.poll_transmit()?;
        self.keep_alive.on_sent(now);
        Some(packet)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientState::Closed => None,
            ClientState::AwaitingConnAck { since } => {
                self.config.connack_timeout.map(|t| since + t)
            }
            ClientState::Connected => self.keep_alive.deadline(),
        }
    }

    /// Takes out the session state to hand to the next connection's machine. Before CONNACK
    /// that is the state this machine was given, untouched.
    pub fn take_state(&mut self) -> SessionState {
        if let Some(resumed) = self.resumed.take() {
            return resumed;
        }
        self.delivery.take_state()
    }

    fn connected(&self) -> Result<&ConnectionInfo, RequestError> {
        match (self.state, &self.connection) {
            (ClientState::Connected, Some(connection)) => Ok(connection),
            (ClientState::Closed, _) => Err(RequestError::Closed),
            _ => Err(RequestError::NotConnected),
        }
    }

    fn fail(&mut self, error: SessionError) -> SessionError {
        // The client may report errors with DISCONNECT in MQTT 5; a 3.1.1 client just closes,
        // since its only DISCONNECT means a normal disconnection (and drops the will). A data
        // stream never carries DISCONNECT: closing it is the report.
        if self.version().is_v5() && error.is_reported_to_peer() && !self.data_stream {
            self.delivery
                .send_disconnect(Disconnect::new(error.reason_code()));
        } else {
            self.delivery.stop();
        }
        self.state = ClientState::Closed;
        self.error = Some(error.clone());
        error
    }

    fn process(&mut self, packet: Packet, now: Instant) -> Result<(), SessionError> {
        if self.data_stream {
            check_data_stream_packet(&packet)?;
        }
        if let ClientState::AwaitingConnAck { .. } = self.state {
            return match packet {
                Packet::ConnAck(connack) => self.on_connack(connack, now),
                Packet::Auth(auth) => self.on_auth(auth),
                other => Err(SessionError::PacketBeforeConnAck(other.packet_type())),
            };
        }
        match packet {
            Packet::ConnAck(_) => Err(SessionError::SecondConnAck),
            Packet::Publish(publish) => {
                if let Some(publish) = self.delivery.handle_publish(publish)? {
                    self.events.push_back(ClientEvent::Publish(publish));
                }
                Ok(())
            }
            ack @ (Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)) => {
                let done = self.delivery.handle_acknowledgement(ack)?;
                self.report_completion(done);
                Ok(())
            }
            Packet::SubAck(suback) => {
                let count = self.take_request(PacketType::SubAck, suback.packet_id)?;
                // "The SUBACK packet sent by the Server to the Client MUST contain a Reason Code
                // for each Topic Filter/Subscription Option pair" [MQTT-3.8.4-6].
                check_count(PacketType::SubAck, count, suback.reason_codes.len())?;
                self.events.push_back(ClientEvent::SubAck(suback));
                Ok(())
            }
            Packet::UnsubAck(unsuback) => {
                let count = self.take_request(PacketType::UnsubAck, unsuback.packet_id)?;
                // MQTT 3.1.1 UNSUBACK carries no reason codes.
                if self.version().is_v5() {
                    check_count(PacketType::UnsubAck, count, unsuback.reason_codes.len())?;
                }
                self.events.push_back(ClientEvent::UnsubAck(unsuback));
                Ok(())
            }
            Packet::PingResp => {
                self.keep_alive.on_ping_response();
                Ok(())
            }
            Packet::Disconnect(disconnect) if self.version().is_v5() => {
                self.delivery.stop();
                self.state = ClientState::Closed;
                self.events.push_back(ClientEvent::Disconnected(disconnect));
                Ok(())
            }
            Packet::Auth(auth) => self.on_auth(auth),
            other => Err(SessionError::WrongDirection {
                packet: other.packet_type(),
                sender: Role::Server,
            }),
        }
    }

    fn on_auth(&mut self, auth: Auth) -> Result<(), SessionError> {
        if !self.version().is_v5() {
            return Err(SessionError::WrongDirection {
                packet: PacketType::Auth,
                sender: Role::Server,
            });
        }
        // "If the Client does not include an Authentication Method in the CONNECT, the Server
        // MUST NOT send an AUTH packet" [MQTT-4.12.0-6].
        if self
            .config
            .connect
            .properties
            .authentication_method
            .is_none()
        {
            return Err(SessionError::AuthWithoutMethod);
        }
        self.events.push_back(ClientEvent::Auth(auth));
        Ok(())
    }

    fn take_request(
        &mut self,
        packet: PacketType,
        packet_id: PacketId,
    ) -> Result<usize, SessionError> {
        let pending = match packet {
            PacketType::SubAck => &mut self.pending_subscribes,
            _ => &mut self.pending_unsubscribes,
        };
        let count = pending
            .remove(&packet_id)
            .ok_or(SessionError::UnknownRequest { packet, packet_id })?;
        self.delivery.release_id(packet_id);
        Ok(count)
    }

    fn report_completion(&mut self, completion: Option<Completion>) {
        if let Some(done) = completion {
            self.events.push_back(ClientEvent::PublishAcknowledged {
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
            self.events.push_back(ClientEvent::PublishDropped {
                publish,
                size,
                maximum,
            });
        }
    }
}

fn check_count(packet: PacketType, expected: usize, got: usize) -> Result<(), SessionError> {
    if expected == got {
        Ok(())
    } else {
        Err(SessionError::ReasonCodeCount {
            packet,
            expected,
            got,
        })
    }
}
