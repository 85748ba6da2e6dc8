//! The server side of one MQTT connection: waits for CONNECT, checks what the codec cannot
//! (it must come first and only once), lets the application accept or refuse it, then runs
//! the QoS flows through the shared delivery core, surfaces SUBSCRIBE, UNSUBSCRIBE, AUTH and
//! DISCONNECT for the broker to answer, answers PINGREQ, and enforces Keep Alive. It does no
//! IO and reads no clock; the broker's connection task drives it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe,
};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion, QoS};

use super::delivery::{Delivery, Limits, Oversized};
use super::error::{RequestError, SessionError};
use super::keep_alive::ServerKeepAlive;
use super::outbound::Completion;
use super::state::SessionState;
use super::{Role, DEFAULT_MAX_QUEUED_PUBLISHES, DEFAULT_SEND_WINDOW_V3};

/// How a server machine behaves. What it announces to the client goes in [`Accept`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a new connection may take to send CONNECT; default 10 s, enough for a slow
    /// handshake on a radio link, short enough that idle sockets do not pile up. `None`
    /// waits forever.
    pub connect_timeout: Option<Duration>,
    /// Publishes that may wait for send quota; default [`DEFAULT_MAX_QUEUED_PUBLISHES`]. With
    /// 0, `publish` refuses as soon as the client's Receive Maximum is reached.
    pub max_queued_publishes: usize,
    /// Inflight window towards an MQTT 3.1.1 client; default [`DEFAULT_SEND_WINDOW_V3`].
    pub send_window_v3: u16,
    /// How many topic aliases to assign to publishes sent to the client (never more than it
    /// allows). Default 0: off.
    pub outbound_topic_aliases: u16,
    /// Packets a client may send after CONNECT while the application decides; they are
    /// processed after `accept` and dropped after `refuse` [MQTT-3.1.4-6]. Default 64:
    /// a client pipelining a few publishes and subscriptions fits.
    pub max_packets_before_accept: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            max_queued_publishes: DEFAULT_MAX_QUEUED_PUBLISHES,
            send_window_v3: DEFAULT_SEND_WINDOW_V3,
            outbound_topic_aliases: 0,
            max_packets_before_accept: 64,
        }
    }
}

/// The application's acceptance of a CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// CONNACK properties (MQTT 5): Receive Maximum, Topic Alias Maximum, Maximum QoS,
    /// Retain Available, Server Keep Alive, Assigned Client Identifier, ... The machine
    /// enforces the limits it announces here.
    pub properties: Properties,
    /// The stored session for this client, if the broker has one. Session Present is set
    /// exactly when it is given and the client did not ask for Clean Start
    /// ([MQTT-3.2.2-2], [MQTT-3.2.2-3]); with Clean Start it is discarded.
    pub resumed: Option<SessionState>,
}

/// Something the application must act on or know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client asks to connect: answer with `accept` or `refuse`.
    Connect(Box<Connect>),
    /// An application message. QoS 1 and 2 messages must be answered with `ack_incoming`
    /// once the message is safe.
    Publish(Publish),
    /// An outgoing QoS 1 or 2 exchange ended: PUBACK, PUBCOMP, or a PUBREC with a failure
    /// (then the message is discarded for this client [MQTT-4.8.2-6]).
    PublishAcknowledged {
        /// The identifier `publish` returned.
        packet_id: PacketId,
        /// The client's reason code.
        reason_code: ReasonCode,
        /// Reason string and user properties of the acknowledgement.
        properties: Properties,
    },
    /// A publish from the resumed session no longer fits the client's Maximum Packet Size and
    /// was discarded without being sent [MQTT-3.1.2-28].
    PublishDropped {
        /// The message.
        publish: Publish,
        /// Its encoded size.
        size: usize,
        /// The client's Maximum Packet Size.
        maximum: u32,
    },
    /// SUBSCRIBE: answer with `suback` [MQTT-3.8.4-1].
    Subscribe(Subscribe),
    /// UNSUBSCRIBE: answer with `unsuback` [MQTT-3.10.4-4].
    Unsubscribe(Unsubscribe),
    /// An AUTH packet of an enhanced authentication exchange.
    Auth(Auth),
    /// The client closed with DISCONNECT. With 0x00 the will is discarded [MQTT-3.14.4-3];
    /// a Session Expiry Interval here replaces the one from CONNECT.
    Disconnected(Disconnect),
}

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
    config: ServerConfig,
    state: ServerState,
    delivery: Delivery,
    connect: Option<Box<Connect>>,
    keep_alive: Option<ServerKeepAlive>,
    /// Packets that arrived between CONNECT and the application's answer.
    early: Vec<Packet>,
    maximum_qos: QoS,
    retain_available: bool,
    /// Requests awaiting the application's SUBACK / UNSUBACK, with their number of filters.
    pending_subscribes: HashMap<PacketId, usize>,
    pending_unsubscribes: HashMap<PacketId, usize>,
    events: VecDeque<ServerEvent>,
    error: Option<SessionError>,
}

impl ServerSession {
    /// A machine for a connection just opened.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        Self {
            config,
            state: ServerState::AwaitingConnect { since: now },
            // Replaced by the CONNECT's version as soon as it arrives.
            delivery: Delivery::new(ProtocolVersion::V5, Role::Server),
            connect: None,
            keep_alive: None,
            early: Vec::new(),
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            pending_subscribes: HashMap::new(),
            pending_unsubscribes: HashMap::new(),
            events: VecDeque::new(),
            error: None,
        }
    }

    /// The CONNECT the client sent, once it arrived.
    pub fn connect(&self) -> Option<&Connect> {
        self.connect.as_deref()
    }

    /// The protocol version from CONNECT; the codec needs it for every later packet.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.connect.as_ref().map(|connect| connect.protocol)
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

    /// Accepts the pending CONNECT: sends CONNACK 0x00 [MQTT-3.1.4-5], applies the limits both
    /// sides announced, resumes the stored session, and processes what the client sent in the
    /// meantime. If that already breaks the protocol the machine is closed on return (see
    /// `is_closed` and `error`).
    pub fn accept(&mut self, accept: Accept, now: Instant) -> Result<(), RequestError> {
        if self.state != ServerState::AwaitingAnswer {
            return Err(RequestError::NoPendingConnect);
        }
        let Some(connect) = self.connect.as_deref() else {
            return Err(RequestError::NoPendingConnect);
        };
        let v5 = connect.protocol.is_v5();
        // "If the Client connects using a zero length Client Identifier, the Server MUST
        // respond with a CONNACK containing an Assigned Client Identifier" [MQTT-3.2.2-16].
        if v5
            && connect.client_id.is_empty()
            && accept.properties.assigned_client_identifier.is_none()
        {
            return Err(RequestError::MissingAssignedClientId);
        }
        let properties = if v5 {
            accept.properties
        } else {
            Properties::default()
        };
        let connect_props = &connect.properties;
        let limits = Limits {
            send_window: if v5 {
                connect_props.receive_maximum.unwrap_or(u16::MAX)
            } else {
                self.config.send_window_v3
            },
            max_waiting: self.config.max_queued_publishes,
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
            inbound_alias_maximum: properties.topic_alias_maximum.unwrap_or(0),
            peer_alias_maximum: connect_props.topic_alias_maximum.unwrap_or(0),
            outbound_alias_budget: self.config.outbound_topic_aliases,
            peer_maximum_packet_size: connect_props.maximum_packet_size,
        };
        // "If the Server does not send the Server Keep Alive, the Server MUST use the Keep Alive
        // value set by the Client on CONNECT" [MQTT-3.2.2-22].
        let keep_alive = properties.server_keep_alive.unwrap_or(connect.keep_alive);
        let resumed = accept.resumed.filter(|_| !connect.clean_start);
        self.maximum_qos = properties
            .maximum_qos
            .and_then(QoS::from_u8)
            .unwrap_or(QoS::ExactlyOnce);
        self.retain_available = properties.retain_available.unwrap_or(true);
        self.delivery.start(&limits);
        self.delivery.answer(Packet::ConnAck(ConnAck {
            session_present: resumed.is_some(),
            reason_code: ReasonCode::Success,
            properties,
        }));
        self.keep_alive = Some(ServerKeepAlive::new(keep_alive, now));
        self.state = ServerState::Connected;
        if let Some(resumed) = resumed {
            let dropped = self.delivery.restore(resumed);
            self.report_dropped(dropped);
        }
        for packet in std::mem::take(&mut self.early) {
            if self.state == ServerState::Closed {
                break;
            }
            if let Err(error) = self.process(packet) {
                self.fail(error);
            }
        }
        Ok(())
    }

    /// Refuses the pending CONNECT with a CONNACK carrying `reason_code` (0x80 or more) and
    /// closes [MQTT-3.2.2-7]. Packets the client sent after CONNECT are dropped unprocessed
    /// [MQTT-3.1.4-6].
    pub fn refuse(
        &mut self,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> Result<(), RequestError> {
        if self.state != ServerState::AwaitingAnswer {
            return Err(RequestError::NoPendingConnect);
        }
        if !reason_code.is_error() {
            return Err(RequestError::NotARefusal(reason_code));
        }
        let maximum = self
            .connect
            .as_ref()
            .and_then(|c| c.properties.maximum_packet_size);
        self.delivery.set_peer_maximum_packet_size(maximum);
        let properties = if self.delivery.version().is_v5() {
            properties
        } else {
            Properties::default()
        };
        // "If a Server sends a CONNACK packet containing a non-zero Reason Code it MUST set
        // Session Present to 0" [MQTT-3.2.2-6].
        self.delivery.answer(Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code,
            properties,
        }));
        self.delivery.stop();
        self.early.clear();
        self.state = ServerState::Closed;
        Ok(())
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
        match self.state {
            ServerState::AwaitingConnect { since } => {
                self.config.connect_timeout.map(|t| since + t)
            }
            ServerState::Connected => self.keep_alive.as_ref().and_then(ServerKeepAlive::deadline),
            ServerState::AwaitingAnswer | ServerState::Closed => None,
        }
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
        self.connect
            .as_ref()
            .is_some_and(|c| c.properties.authentication_method.is_some())
    }

    fn fail(&mut self, error: SessionError) -> SessionError {
        // Only a connected MQTT 5 server may report with DISCONNECT [MQTT-3.14.0-1].
        if self.state == ServerState::Connected
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

    fn on_connect(&mut self, connect: Box<Connect>) {
        self.delivery.set_version(connect.protocol);
        self.connect = Some(connect.clone());
        self.state = ServerState::AwaitingAnswer;
        self.events.push_back(ServerEvent::Connect(connect));
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
        match packet {
            Packet::Connect(_) => Err(SessionError::SecondConnect),
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::PubAck(ack) => {
                let done = self.delivery.handle_puback(ack)?;
                self.report_completion(done);
                Ok(())
            }
            Packet::PubRec(ack) => {
                let done = self.delivery.handle_pubrec(ack)?;
                self.report_completion(done);
                Ok(())
            }
            Packet::PubComp(ack) => {
                let done = self.delivery.handle_pubcomp(ack)?;
                self.report_completion(done);
                Ok(())
            }
            Packet::PubRel(release) => self.delivery.handle_pubrel(&release),
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
            .as_ref()
            .and_then(|c| c.properties.session_expiry_interval)
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
    pending: &mut HashMap<PacketId, usize>,
    packet_id: PacketId,
) -> Result<usize, RequestError> {
    pending
        .remove(&packet_id)
        .ok_or(RequestError::UnknownPacketId(packet_id))
}
