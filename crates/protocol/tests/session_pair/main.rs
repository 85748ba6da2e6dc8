//! The client and server session machines driven against each other in memory, with
//! simulated time: every packet one side transmits goes through the codec (encoded, then
//! decoded as the other side would) before it is handed over, and is logged so the tests can
//! check what went over the wire. Time only moves when a test says so.

use mquictt_protocol::PropertySet;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::session::{
    Accept, ClientConfig, ClientEvent, ClientSession, OutboundMessage, RequestError, ServerConfig,
    ServerEvent, ServerSession, SessionError, SessionState,
};
use mquictt_protocol::{
    Connect, Disconnect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubAck,
    Publish, QoS, ReasonCode, SubAck, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
};

mod aliases_and_size;
mod connect_and_flows;
mod idle;
mod keep_alive;
mod resume;
mod rules;
mod versions_and_auth;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// One client and one server machine joined by a lossless in-memory link.
struct Pair {
    start: Instant,
    now: Instant,
    client: ClientSession,
    server: ServerSession,
    wire: Vec<(Direction, Packet)>,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
    client_error: Option<SessionError>,
    server_error: Option<SessionError>,
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig) -> Self {
        Self::resume(client, None, server, Instant::now())
    }

    fn resume(
        client: ClientConfig,
        state: Option<SessionState>,
        server: ServerConfig,
        start: Instant,
    ) -> Self {
        Self {
            start,
            now: start,
            client: ClientSession::new(client, state, start),
            server: ServerSession::new(server, start),
            wire: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_error: None,
            server_error: None,
        }
    }

    /// Moves packets both ways until neither side has anything to send, collecting events.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(packet) = self.client.poll_transmit(self.now) {
                moved = true;
                let packet = through_the_wire(packet, self.client.version());
                self.wire.push((Direction::ToServer, packet.clone()));
                if let Err(error) = self.server.handle_packet(packet, self.now) {
                    self.server_error.get_or_insert(error);
                }
            }
            while let Some(packet) = self.server.poll_transmit(self.now) {
                moved = true;
                let packet = through_the_wire(packet, self.client.version());
                self.wire.push((Direction::ToClient, packet.clone()));
                if let Err(error) = self.client.handle_packet(packet, self.now) {
                    self.client_error.get_or_insert(error);
                }
            }
            while let Some(event) = self.client.poll_event() {
                self.client_events.push(event);
            }
            while let Some(event) = self.server.poll_event() {
                self.server_events.push(event);
            }
            if !moved {
                return;
            }
        }
    }

    /// Drops whatever the client has queued for the server (a connection lost mid-flight).
    fn lose_client_transmit(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.client.poll_transmit(self.now)).collect()
    }

    /// Drops whatever the server has queued for the client.
    fn lose_server_transmit(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.server.poll_transmit(self.now)).collect()
    }

    /// Lets simulated time pass and fires the timers that are due, then drives.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.fire_timers();
        self.drive();
    }

    fn fire_timers(&mut self) {
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            if let Err(error) = self.client.handle_timeout(self.now) {
                self.client_error.get_or_insert(error);
            }
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            if let Err(error) = self.server.handle_timeout(self.now) {
                self.server_error.get_or_insert(error);
            }
        }
    }

    /// Drives the CONNECT / CONNACK exchange, accepting with `accept`.
    fn connect(&mut self, accept: Accept) {
        self.drive();
        assert!(
            matches!(self.server_events.pop(), Some(ServerEvent::Connect(_))),
            "server saw CONNECT"
        );
        self.server.accept(accept, self.now).unwrap();
        self.drive();
        assert!(
            self.client.is_connected(),
            "client connected: {:?}",
            self.client_events
        );
    }

    fn packets(&self, direction: Direction) -> Vec<&Packet> {
        self.wire
            .iter()
            .filter(|(d, _)| *d == direction)
            .map(|(_, p)| p)
            .collect()
    }

    fn publishes(&self, direction: Direction) -> Vec<&Publish> {
        self.packets(direction)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(publish) => Some(publish),
                _ => None,
            })
            .collect()
    }

    /// The topic and topic alias of every PUBLISH that went `direction`, as on the wire.
    fn wire_topics_and_aliases(&self, direction: Direction) -> Vec<(String, Option<u16>)> {
        self.publishes(direction)
            .iter()
            .map(|p| (p.topic.as_str().to_owned(), p.properties.topic_alias))
            .collect()
    }

    fn server_publishes(&mut self) -> Vec<Publish> {
        let (publishes, rest) = std::mem::take(&mut self.server_events)
            .into_iter()
            .partition::<Vec<_>, _>(|e| matches!(e, ServerEvent::Publish(_)));
        self.server_events = rest;
        publishes
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn client_publishes(&mut self) -> Vec<Publish> {
        let (publishes, rest) = std::mem::take(&mut self.client_events)
            .into_iter()
            .partition::<Vec<_>, _>(|e| matches!(e, ClientEvent::Publish(_)));
        self.client_events = rest;
        publishes
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn client_acks(&self) -> Vec<(PacketId, ReasonCode)> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::PublishAcknowledged {
                    packet_id,
                    reason_code,
                    ..
                } => Some((*packet_id, *reason_code)),
                _ => None,
            })
            .collect()
    }

    fn server_acks(&self) -> Vec<(PacketId, ReasonCode)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::PublishAcknowledged {
                    packet_id,
                    reason_code,
                    ..
                } => Some((*packet_id, *reason_code)),
                _ => None,
            })
            .collect()
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

/// Encodes a packet and decodes it again, as the peer's codec would: what a machine sends
/// must be valid on the wire and survive the trip unchanged.
fn through_the_wire(packet: Packet, version: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::new();
    packet
        .encode(version, &mut buf)
        .unwrap_or_else(|e| panic!("{packet:?} does not encode: {e}"));
    assert_eq!(buf.len(), packet.encoded_len(version));
    let decoded = mquictt_protocol::decode(&mut buf, version, MAX_PACKET_SIZE)
        .unwrap_or_else(|e| panic!("{packet:?} does not decode: {e}"))
        .expect("a whole packet");
    assert!(buf.is_empty());
    assert_eq!(decoded, packet, "the codec changed the packet");
    decoded
}

fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::new(client_id).unwrap(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn v5() -> ClientConfig {
    ClientConfig::new(connect(ProtocolVersion::V5, "device-1"))
}

fn message(topic: &str, qos: QoS, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::new(topic).unwrap(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    }
}

fn id(value: u16) -> PacketId {
    PacketId::new(value).unwrap()
}

fn accept_with(properties: Properties) -> Accept {
    Accept {
        properties,
        resumed: None,
    }
}

fn last_disconnect(pair: &Pair, direction: Direction) -> Option<ReasonCode> {
    pair.packets(direction)
        .into_iter()
        .rev()
        .find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        })
}

impl Pair {
    /// Delivers only what the server sends (the client's answers stay queued).
    fn drive_server_to_client_only(&mut self) {
        while let Some(packet) = self.server.poll_transmit(self.now) {
            self.wire.push((Direction::ToClient, packet.clone()));
            if let Err(error) = self.client.handle_packet(packet, self.now) {
                self.client_error.get_or_insert(error);
            }
        }
        while let Some(event) = self.client.poll_event() {
            self.client_events.push(event);
        }
    }
}

impl Pair {
    fn connect_without_check(&mut self, accept: Accept) {
        self.drive();
        self.server.accept(accept, self.now).unwrap();
        self.drive();
    }
}
