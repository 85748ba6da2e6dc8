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

#[test]
fn connect_negotiates_limits_from_connack() {
    let mut config = v5();
    config.connect.client_id = MqttString::default();
    config.connect.keep_alive = 60;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.drive();
    let Some(ServerEvent::Connect(connect)) = pair.server_events.pop() else {
        panic!("no CONNECT event");
    };
    assert_eq!(connect.client_id, "");
    assert_eq!(pair.server.version(), Some(ProtocolVersion::V5));
    // An empty client id needs an assigned one [MQTT-3.2.2-16].
    assert_eq!(
        pair.server.accept(Accept::default(), pair.now),
        Err(RequestError::MissingAssignedClientId)
    );
    let properties = Properties::from(PropertySet {
        assigned_client_identifier: Some(MqttString::from_static("auto-7")),
        server_keep_alive: Some(20),
        receive_maximum: Some(5),
        maximum_qos: Some(1),
        retain_available: Some(false),
        topic_alias_maximum: Some(3),
        maximum_packet_size: Some(1024),
        ..PropertySet::default()
    });
    pair.server
        .accept(accept_with(properties), pair.now)
        .unwrap();
    pair.drive();
    let Some(ClientEvent::Connected(info)) = pair.client_events.first().cloned() else {
        panic!("no Connected event: {:?}", pair.client_events);
    };
    assert!(!info.session_present);
    assert_eq!(info.assigned_client_id.as_deref(), Some("auto-7"));
    assert_eq!(info.keep_alive, Some(Duration::from_secs(20)));
    assert_eq!(info.receive_maximum, 5);
    assert_eq!(info.maximum_qos, QoS::AtLeastOnce);
    assert!(!info.retain_available);
    assert_eq!(info.topic_alias_maximum, 3);
    assert_eq!(info.maximum_packet_size, Some(1024));
    assert_eq!(pair.server.keep_alive(), Some(Duration::from_secs(20)));

    // The client keeps to what the server announced.
    assert_eq!(
        pair.client.publish(message("a", QoS::ExactlyOnce, b"x")),
        Err(RequestError::QoSNotSupported {
            requested: QoS::ExactlyOnce,
            maximum: QoS::AtLeastOnce
        })
    );
    let mut retained = message("a", QoS::AtMostOnce, b"x");
    retained.retain = true;
    assert_eq!(
        pair.client.publish(retained),
        Err(RequestError::RetainNotSupported)
    );
}

#[test]
fn qos_0_1_2_from_client_to_server() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    assert_eq!(
        pair.client
            .publish(message("t/0", QoS::AtMostOnce, b"zero")),
        Ok(None)
    );
    let one = pair
        .client
        .publish(message("t/1", QoS::AtLeastOnce, b"one"))
        .unwrap()
        .unwrap();
    let two = pair
        .client
        .publish(message("t/2", QoS::ExactlyOnce, b"two"))
        .unwrap()
        .unwrap();
    assert_ne!(one, two);
    pair.drive();
    let received = pair.server_publishes();
    let payloads: Vec<&[u8]> = received.iter().map(|p| p.payload.as_ref()).collect();
    assert_eq!(payloads, [&b"zero"[..], b"one", b"two"]);
    // Nothing is acknowledged until the application says so.
    assert!(pair.client_acks().is_empty());
    assert_eq!(pair.client.in_flight(), 2);

    pair.server.ack_incoming(one, ReasonCode::Success).unwrap();
    pair.server.ack_incoming(two, ReasonCode::Success).unwrap();
    pair.drive();
    assert_eq!(
        pair.client_acks(),
        vec![(one, ReasonCode::Success), (two, ReasonCode::Success)]
    );
    assert_eq!(pair.client.in_flight(), 0);
    // QoS 2 took the four steps.
    let kinds: Vec<_> = pair
        .wire
        .iter()
        .filter(|(_, p)| {
            matches!(
                p,
                Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)
            )
        })
        .map(|(d, p)| (*d, p.packet_type()))
        .collect();
    use mquictt_protocol::PacketType::{PubComp, PubRec, PubRel};
    assert_eq!(
        kinds,
        vec![
            (Direction::ToClient, PubRec),
            (Direction::ToServer, PubRel),
            (Direction::ToClient, PubComp)
        ]
    );
}

#[test]
fn qos_0_1_2_from_server_to_client() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    pair.server
        .publish(message("s/0", QoS::AtMostOnce, b"zero"))
        .unwrap();
    let one = pair
        .server
        .publish(message("s/1", QoS::AtLeastOnce, b"one"))
        .unwrap()
        .unwrap();
    let two = pair
        .server
        .publish(message("s/2", QoS::ExactlyOnce, b"two"))
        .unwrap()
        .unwrap();
    pair.drive();
    let received = pair.client_publishes();
    assert_eq!(received.len(), 3);
    for publish in &received {
        if let Some(packet_id) = publish.packet_id {
            pair.client
                .ack_incoming(packet_id, ReasonCode::Success)
                .unwrap();
        }
    }
    pair.drive();
    assert_eq!(
        pair.server_acks(),
        vec![(one, ReasonCode::Success), (two, ReasonCode::Success)]
    );
}

#[test]
fn failure_reason_on_pubrec_ends_the_flow() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let two = pair
        .client
        .publish(message("q", QoS::ExactlyOnce, b"x"))
        .unwrap()
        .unwrap();
    pair.drive();
    pair.server
        .ack_incoming(two, ReasonCode::QuotaExceeded)
        .unwrap();
    pair.drive();
    assert_eq!(pair.client_acks(), vec![(two, ReasonCode::QuotaExceeded)]);
    assert!(!pair
        .packets(Direction::ToServer)
        .iter()
        .any(|p| matches!(p, Packet::PubRel(_))));
    assert_eq!(pair.client.in_flight(), 0);
    assert_eq!(pair.server.take_state(), SessionState::default());
}

#[test]
fn inflight_window_respects_receive_maximum_of_two() {
    let mut config = v5();
    config.max_queued_publishes = 2;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        receive_maximum: Some(2),
        ..PropertySet::default()
    })));
    let mut ids = Vec::new();
    for n in 0..4 {
        let payload: &'static [u8] = [&b"0"[..], b"1", b"2", b"3"][n];
        ids.push(
            pair.client
                .publish(message("w", QoS::AtLeastOnce, payload))
                .unwrap()
                .unwrap(),
        );
    }
    // Window of two plus a queue of two: the fifth is handed back.
    let refused = pair
        .client
        .publish(message("w", QoS::AtLeastOnce, b"4"))
        .unwrap_err();
    let RequestError::QueueFull(returned) = refused else {
        panic!("expected QueueFull, got {refused:?}");
    };
    assert_eq!(returned.payload, Bytes::from_static(b"4"));
    pair.drive();
    assert_eq!(pair.publishes(Direction::ToServer).len(), 2);
    assert_eq!(pair.client.send_quota(), 0);
    assert_eq!(pair.client.queued_publishes(), 2);
    // QoS 0 is not held back by the window [MQTT-3.3.4-8].
    pair.client
        .publish(message("w", QoS::AtMostOnce, b"q0"))
        .unwrap();
    pair.drive();
    assert_eq!(pair.publishes(Direction::ToServer).len(), 3);

    let first = pair.server_publishes();
    pair.server
        .ack_incoming(first[0].packet_id.unwrap(), ReasonCode::Success)
        .unwrap();
    pair.drive();
    assert_eq!(pair.publishes(Direction::ToServer).len(), 4);
    for publish in pair.server_publishes() {
        if let Some(packet_id) = publish.packet_id {
            pair.server
                .ack_incoming(packet_id, ReasonCode::Success)
                .unwrap();
        }
    }
    pair.server
        .ack_incoming(first[1].packet_id.unwrap(), ReasonCode::Success)
        .unwrap();
    pair.drive();
    for publish in pair.server_publishes() {
        pair.server
            .ack_incoming(publish.packet_id.unwrap(), ReasonCode::Success)
            .unwrap();
    }
    pair.drive();
    let acked: Vec<PacketId> = pair.client_acks().into_iter().map(|(id, _)| id).collect();
    assert_eq!(acked.len(), 4);
    for packet_id in ids {
        assert!(acked.contains(&packet_id));
    }
    // At no point were more than two QoS 1 publishes unacknowledged on the wire.
    let mut outstanding = 0usize;
    for (direction, packet) in &pair.wire {
        match (direction, packet) {
            (Direction::ToServer, Packet::Publish(p)) if p.qos != QoS::AtMostOnce => {
                outstanding += 1;
                assert!(outstanding <= 2, "window exceeded");
            }
            (Direction::ToClient, Packet::PubAck(_)) => outstanding -= 1,
            _ => {}
        }
    }
}

#[test]
fn packet_ids_in_use_are_never_reused() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let a = pair
        .client
        .publish(message("p", QoS::AtLeastOnce, b"a"))
        .unwrap()
        .unwrap();
    let b = pair
        .client
        .publish(message("p", QoS::ExactlyOnce, b"b"))
        .unwrap()
        .unwrap();
    let filter = TopicFilter::new("x/#").unwrap();
    let sub = pair
        .client
        .subscribe(
            vec![(filter, SubscriptionOptions::with_qos(QoS::AtLeastOnce))],
            Properties::default(),
        )
        .unwrap();
    assert!(a != b && b != sub && a != sub);
    pair.drive();
    // Complete the first exchange; the identifiers still in use stay unique.
    pair.server.ack_incoming(a, ReasonCode::Success).unwrap();
    pair.drive();
    let mut seen = vec![b, sub];
    for _ in 0..5 {
        let next = pair
            .client
            .publish(message("p", QoS::AtLeastOnce, b"n"))
            .unwrap()
            .unwrap();
        assert!(!seen.contains(&next), "{next} reused while in use");
        seen.push(next);
    }
}

#[test]
fn reconnect_resends_with_dup_and_completes_qos2_exactly_once() {
    let mut config = v5();
    config.connect.clean_start = false;
    config.connect.properties.session_expiry_interval = Some(3600);
    let mut pair = Pair::new(config.clone(), ServerConfig::default());
    pair.connect(Accept::default());
    let a = pair
        .client
        .publish(message("r", QoS::AtLeastOnce, b"A"))
        .unwrap()
        .unwrap();
    let b = pair
        .client
        .publish(message("r", QoS::ExactlyOnce, b"B"))
        .unwrap()
        .unwrap();
    let c = pair
        .client
        .publish(message("r", QoS::ExactlyOnce, b"C"))
        .unwrap()
        .unwrap();
    pair.drive();
    assert_eq!(pair.server_publishes().len(), 3);

    // The broker makes C durable first: its PUBREC reaches the client, whose PUBREL is lost.
    pair.server.ack_incoming(c, ReasonCode::Success).unwrap();
    pair.drive_server_to_client_only();
    assert!(matches!(
        pair.lose_client_transmit()[..],
        [Packet::PubRel(_)]
    ));
    // Then A and B: the PUBACK and PUBREC are lost with the connection.
    pair.server.ack_incoming(a, ReasonCode::Success).unwrap();
    pair.server.ack_incoming(b, ReasonCode::Success).unwrap();
    assert_eq!(pair.lose_server_transmit().len(), 2);

    let client_state = pair.client.take_state();
    let server_state = pair.server.take_state();
    assert_eq!(server_state.inbound_awaiting_release, vec![b, c]);
    let order: Vec<_> = client_state
        .outbound
        .iter()
        .map(|m| match m {
            OutboundMessage::Publish(p) => (p.packet_id.unwrap(), p.dup, true),
            OutboundMessage::Release(id) => (*id, true, false),
        })
        .collect();
    assert_eq!(
        order,
        vec![(a, true, true), (b, true, true), (c, true, false)]
    );

    // Reconnect with both states.
    let later = pair.now + Duration::from_secs(5);
    let mut pair = Pair::resume(config, Some(client_state), ServerConfig::default(), later);
    pair.connect(Accept {
        properties: Properties::default(),
        resumed: Some(server_state),
    });
    let Some(ClientEvent::Connected(info)) = pair.client_events.first() else {
        panic!("no Connected event");
    };
    assert!(info.session_present);
    // PUBLISH packets re-sent with DUP and their original identifiers, in their original
    // order [MQTT-4.4.0-1] [MQTT-4.6.0-1]; the PUBREL of C re-sent too.
    let resent: Vec<_> = pair
        .publishes(Direction::ToServer)
        .iter()
        .map(|p| (p.packet_id.unwrap(), p.dup))
        .collect();
    assert_eq!(resent, vec![(a, true), (b, true)]);
    assert!(pair
        .packets(Direction::ToServer)
        .iter()
        .any(|p| matches!(p, Packet::PubRel(rel) if rel.packet_id == c)));
    // A (QoS 1) may arrive twice; B (QoS 2, PUBREC already sent) must not [MQTT-4.3.3-10].
    let redelivered = pair.server_publishes();
    let payloads: Vec<&[u8]> = redelivered.iter().map(|p| p.payload.as_ref()).collect();
    assert_eq!(payloads, [&b"A"[..]]);
    pair.server.ack_incoming(a, ReasonCode::Success).unwrap();
    pair.drive();
    let mut acked = pair.client_acks();
    acked.sort();
    assert_eq!(
        acked,
        vec![
            (a, ReasonCode::Success),
            (b, ReasonCode::Success),
            (c, ReasonCode::Success)
        ]
    );
    assert_eq!(pair.client.take_state(), SessionState::default());
    assert_eq!(pair.server.take_state(), SessionState::default());
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

#[test]
fn server_resumes_its_outbound_state_too() {
    let mut config = v5();
    config.connect.clean_start = false;
    let mut pair = Pair::new(config.clone(), ServerConfig::default());
    pair.connect(Accept::default());
    let one = pair
        .server
        .publish(message("down", QoS::AtLeastOnce, b"1"))
        .unwrap()
        .unwrap();
    let two = pair
        .server
        .publish(message("down", QoS::ExactlyOnce, b"2"))
        .unwrap()
        .unwrap();
    // Lost before reaching the client.
    assert_eq!(pair.lose_server_transmit().len(), 2);
    let server_state = pair.server.take_state();

    let later = pair.now + Duration::from_secs(1);
    let mut pair = Pair::resume(
        config,
        Some(SessionState::default()),
        ServerConfig::default(),
        later,
    );
    pair.connect(Accept {
        properties: Properties::default(),
        resumed: Some(server_state),
    });
    let received = pair.client_publishes();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|p| p.dup));
    for publish in received {
        pair.client
            .ack_incoming(publish.packet_id.unwrap(), ReasonCode::Success)
            .unwrap();
    }
    pair.drive();
    assert_eq!(
        pair.server_acks(),
        vec![(one, ReasonCode::Success), (two, ReasonCode::Success)]
    );
}

#[test]
fn clean_start_and_lost_sessions_discard_state() {
    let mut config = v5();
    config.connect.clean_start = false;
    let mut pair = Pair::new(config.clone(), ServerConfig::default());
    pair.connect(Accept::default());
    pair.client
        .publish(message("gone", QoS::AtLeastOnce, b"x"))
        .unwrap();
    pair.lose_client_transmit();
    let state = pair.client.take_state();
    assert_eq!(state.outbound.len(), 1);

    // The server no longer has the session: Session Present 0 [MQTT-3.2.2-5].
    let mut pair = Pair::resume(
        config.clone(),
        Some(state.clone()),
        ServerConfig::default(),
        pair.now,
    );
    pair.connect(Accept::default());
    assert!(pair.publishes(Direction::ToServer).is_empty());
    assert!(matches!(
        &pair.client_events[..],
        [ClientEvent::Connected(_), ClientEvent::SessionDiscarded(lost)] if lost.len() == 1
    ));

    // Clean Start throws the state away before connecting [MQTT-3.1.2-4]; a server that
    // still offers it is overruled [MQTT-3.2.2-2].
    config.connect.clean_start = true;
    let mut pair = Pair::resume(
        config,
        Some(state.clone()),
        ServerConfig::default(),
        pair.now,
    );
    pair.connect(Accept {
        properties: Properties::default(),
        resumed: Some(state),
    });
    let Some(ClientEvent::Connected(info)) = pair.client_events.first() else {
        panic!("no Connected event");
    };
    assert!(!info.session_present);
    assert!(pair.publishes(Direction::ToServer).is_empty());
    assert!(pair.publishes(Direction::ToClient).is_empty());
}

#[test]
fn session_present_without_state_closes_the_client() {
    let mut config = v5();
    config.connect.clean_start = false;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect_without_check(Accept {
        properties: Properties::default(),
        resumed: Some(SessionState::default()),
    });
    let error = pair.client_error.clone().expect("client failed");
    assert_eq!(error, SessionError::UnexpectedSessionPresent);
    assert_eq!(error.conformance(), Some("MQTT-3.2.2-4"));
    assert!(pair.client.is_closed());
}

impl Pair {
    fn connect_without_check(&mut self, accept: Accept) {
        self.drive();
        self.server.accept(accept, self.now).unwrap();
        self.drive();
    }
}

#[test]
fn topic_aliases_round_trip_both_ways() {
    let mut config = v5();
    config.outbound_topic_aliases = 8;
    config.connect.properties.topic_alias_maximum = Some(1);
    let server_config = ServerConfig {
        outbound_topic_aliases: 8,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config, server_config);
    pair.connect(accept_with(Properties::from(PropertySet {
        topic_alias_maximum: Some(2),
        ..PropertySet::default()
    })));
    for topic in ["a/1", "a/1", "b/2", "c/3", "b/2"] {
        pair.client
            .publish(message(topic, QoS::AtMostOnce, b"x"))
            .unwrap();
    }
    pair.drive();
    let wire: Vec<_> = pair
        .publishes(Direction::ToServer)
        .iter()
        .map(|p| (p.topic.as_str().to_owned(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        wire,
        vec![
            ("a/1".to_owned(), Some(1)),
            (String::new(), Some(1)),
            ("b/2".to_owned(), Some(2)),
            // The server accepts two aliases: the third topic goes in full.
            ("c/3".to_owned(), None),
            (String::new(), Some(2)),
        ]
    );
    let seen: Vec<_> = pair
        .server_publishes()
        .iter()
        .map(|p| (p.topic.as_str().to_owned(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        seen,
        ["a/1", "a/1", "b/2", "c/3", "b/2"]
            .map(|t| (t.to_owned(), None))
            .to_vec()
    );

    for topic in ["d/4", "d/4", "e/5"] {
        pair.server
            .publish(message(topic, QoS::AtMostOnce, b"y"))
            .unwrap();
    }
    pair.drive();
    let wire: Vec<_> = pair
        .publishes(Direction::ToClient)
        .iter()
        .map(|p| (p.topic.as_str().to_owned(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        wire,
        vec![
            ("d/4".to_owned(), Some(1)),
            (String::new(), Some(1)),
            ("e/5".to_owned(), None)
        ]
    );
    let topics: Vec<_> = pair
        .client_publishes()
        .iter()
        .map(|p| p.topic.to_string())
        .collect();
    assert_eq!(topics, ["d/4", "d/4", "e/5"]);
}

#[test]
fn invalid_and_unknown_topic_aliases_close_the_connection() {
    for (alias, topic, reason) in [
        (3, "t", ReasonCode::TopicAliasInvalid),
        (0, "t", ReasonCode::TopicAliasInvalid),
        (1, "", ReasonCode::ProtocolError),
    ] {
        let mut pair = Pair::new(v5(), ServerConfig::default());
        pair.connect(accept_with(Properties::from(PropertySet {
            topic_alias_maximum: Some(2),
            ..PropertySet::default()
        })));
        let mut publish = message("x", QoS::AtMostOnce, b"x");
        publish.topic = if topic.is_empty() {
            TopicName::empty()
        } else {
            TopicName::new(topic).unwrap()
        };
        publish.properties.topic_alias = Some(alias);
        let error = pair
            .server
            .handle_packet(Packet::Publish(publish), pair.now)
            .unwrap_err();
        assert_eq!(error.reason_code(), reason, "alias {alias}");
        pair.drive();
        assert_eq!(last_disconnect(&pair, Direction::ToClient), Some(reason));
        assert!(pair.server.is_closed());
    }
}

#[test]
fn oversized_outbound_messages_are_not_sent() {
    let mut config = v5();
    config.connect.properties.maximum_packet_size = Some(64);
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        maximum_packet_size: Some(48),
        ..PropertySet::default()
    })));
    let big: &'static [u8] = &[7; 80];
    // Server to client: dropped for this subscriber and reported [MQTT-3.1.2-28].
    let error = pair
        .server
        .publish(message("big", QoS::AtLeastOnce, big))
        .unwrap_err();
    assert!(
        matches!(error, RequestError::PacketTooLarge { maximum: 64, .. }),
        "{error:?}"
    );
    assert_eq!(pair.server.in_flight(), 0);
    pair.server
        .publish(message("small", QoS::AtLeastOnce, b"ok"))
        .unwrap();
    // Client to server [MQTT-3.2.2-15].
    let error = pair
        .client
        .publish(message("big", QoS::AtMostOnce, &big[..41]))
        .unwrap_err();
    assert!(
        matches!(error, RequestError::PacketTooLarge { maximum: 48, .. }),
        "{error:?}"
    );
    pair.drive();
    assert!(pair.publishes(Direction::ToServer).is_empty());
    assert_eq!(pair.publishes(Direction::ToClient).len(), 1);

    // An acknowledgement keeps its reason code but loses the reason string that would not fit.
    let inbound = pair.client_publishes();
    pair.client
        .ack_incoming(inbound[0].packet_id.unwrap(), ReasonCode::Success)
        .unwrap();
    let incoming = pair
        .client
        .publish(message("in", QoS::AtLeastOnce, b"1"))
        .unwrap()
        .unwrap();
    pair.drive();
    pair.server
        .ack_incoming_with(
            incoming,
            ReasonCode::NotAuthorized,
            Properties::from(PropertySet {
                reason_string: Some(MqttString::new("r".repeat(100)).unwrap()),
                ..PropertySet::default()
            }),
        )
        .unwrap();
    pair.drive();
    let Some(Packet::PubAck(ack)) = pair.packets(Direction::ToClient).last().copied() else {
        panic!("no PUBACK");
    };
    assert_eq!(ack.reason_code, ReasonCode::NotAuthorized);
    assert_eq!(ack.properties.reason_string, None);
}

#[test]
fn keep_alive_pings_and_server_keep_alive_overrides() {
    let mut config = v5();
    config.connect.keep_alive = 30;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        server_keep_alive: Some(10),
        ..PropertySet::default()
    })));
    assert_eq!(
        pair.client.poll_timeout(),
        Some(pair.now + Duration::from_secs(10))
    );
    pair.advance(Duration::from_secs(9));
    assert!(!pair
        .packets(Direction::ToServer)
        .contains(&&Packet::PingReq));
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        pair.packets(Direction::ToServer).last(),
        Some(&&Packet::PingReq)
    );
    assert_eq!(
        pair.packets(Direction::ToClient).last(),
        Some(&&Packet::PingResp)
    );
    // Any packet sent resets the client's clock.
    pair.advance(Duration::from_secs(5));
    pair.client
        .publish(message("k", QoS::AtMostOnce, b"x"))
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client.poll_timeout(),
        Some(pair.now + Duration::from_secs(10))
    );
    for _ in 0..10 {
        pair.advance(Duration::from_secs(10));
    }
    assert!(pair.client_error.is_none() && pair.server_error.is_none());
    assert!(pair.client.is_connected() && pair.server.is_connected());
}

#[test]
fn client_gives_up_without_pingresp() {
    let mut config = v5();
    config.connect.keep_alive = 10;
    config.ping_timeout = Some(Duration::from_secs(4));
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(Accept::default());
    pair.now += Duration::from_secs(10);
    pair.client.handle_timeout(pair.now).unwrap();
    assert_eq!(pair.lose_client_transmit(), vec![Packet::PingReq]);
    pair.now += Duration::from_secs(4);
    let error = pair.client.handle_timeout(pair.now).unwrap_err();
    assert_eq!(error, SessionError::PingTimeout(Duration::from_secs(4)));
    assert!(pair.client.is_closed());
    // The link is presumed dead: no DISCONNECT is queued.
    assert_eq!(pair.client.poll_transmit(pair.now), None);
}

#[test]
fn server_closes_after_one_and_a_half_keep_alive() {
    let mut config = v5();
    config.connect.keep_alive = 10;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(Accept::default());
    let silent_since = pair.now;
    assert_eq!(
        pair.server.poll_timeout(),
        Some(silent_since + Duration::from_secs(15))
    );
    // The client stays silent (its timers are not run).
    pair.now = silent_since + Duration::from_millis(14_999);
    pair.server.handle_timeout(pair.now).unwrap();
    assert!(pair.server.is_connected());
    pair.now = silent_since + Duration::from_secs(15);
    let error = pair.server.handle_timeout(pair.now).unwrap_err();
    assert_eq!(error.reason_code(), ReasonCode::KeepAliveTimeout);
    assert_eq!(error.conformance(), Some("MQTT-3.1.2-24"));
    pair.drive();
    assert_eq!(
        last_disconnect(&pair, Direction::ToClient),
        Some(ReasonCode::KeepAliveTimeout)
    );
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Disconnected(d)) if d.reason_code == ReasonCode::KeepAliveTimeout
    ));
    assert_eq!(pair.elapsed(), Duration::from_secs(15));
}

#[test]
fn keep_alive_zero_disables_both_timers() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    assert_eq!(pair.client.poll_timeout(), None);
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn first_packet_must_be_connect() {
    let mut server = ServerSession::new(ServerConfig::default(), Instant::now());
    let error = server
        .handle_packet(Packet::PingReq, Instant::now())
        .unwrap_err();
    assert_eq!(error.conformance(), Some("MQTT-3.1.0-1"));
    assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
    assert!(server.is_closed());
    // No CONNACK was sent, so no DISCONNECT either [MQTT-3.14.0-1].
    assert_eq!(server.poll_transmit(Instant::now()), None);
}

#[test]
fn second_connect_is_a_protocol_error() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let again = Packet::Connect(Box::new(connect(ProtocolVersion::V5, "device-1")));
    let error = pair.server.handle_packet(again, pair.now).unwrap_err();
    assert_eq!(error, SessionError::SecondConnect);
    assert_eq!(error.conformance(), Some("MQTT-3.1.0-2"));
    pair.drive();
    assert_eq!(
        last_disconnect(&pair, Direction::ToClient),
        Some(ReasonCode::ProtocolError)
    );
}

#[test]
fn receive_maximum_exceeded_is_0x93() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        receive_maximum: Some(1),
        ..PropertySet::default()
    })));
    for n in 1..=2 {
        let mut publish = message("flood", QoS::AtLeastOnce, b"x");
        publish.packet_id = Some(id(n));
        let result = pair
            .server
            .handle_packet(Packet::Publish(publish), pair.now);
        if n == 2 {
            let error = result.unwrap_err();
            assert_eq!(error.reason_code(), ReasonCode::ReceiveMaximumExceeded);
            assert_eq!(error.conformance(), Some("MQTT-3.3.4-7"));
        } else {
            result.unwrap();
        }
    }
    pair.drive();
    assert_eq!(
        last_disconnect(&pair, Direction::ToClient),
        Some(ReasonCode::ReceiveMaximumExceeded)
    );
}

#[test]
fn pubrel_for_unknown_id_gets_pubcomp_0x92() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    pair.server
        .handle_packet(Packet::PubRel(PubAck::success(id(77))), pair.now)
        .unwrap();
    pair.drive();
    let Some(Packet::PubComp(comp)) = pair.packets(Direction::ToClient).last().copied() else {
        panic!("no PUBCOMP");
    };
    assert_eq!(
        (comp.packet_id, comp.reason_code),
        (id(77), ReasonCode::PacketIdentifierNotFound)
    );
    assert!(pair.server.is_connected());
}

#[test]
fn server_enforces_the_maximum_qos_and_retain_it_announced() {
    for (qos, retain, reason) in [
        (QoS::ExactlyOnce, false, ReasonCode::QoSNotSupported),
        (QoS::AtMostOnce, true, ReasonCode::RetainNotSupported),
    ] {
        let mut pair = Pair::new(v5(), ServerConfig::default());
        pair.connect(accept_with(Properties::from(PropertySet {
            maximum_qos: Some(1),
            retain_available: Some(false),
            ..PropertySet::default()
        })));
        let mut publish = message("m", qos, b"x");
        publish.retain = retain;
        publish.packet_id = (qos != QoS::AtMostOnce).then(|| id(1));
        let error = pair
            .server
            .handle_packet(Packet::Publish(publish), pair.now)
            .unwrap_err();
        assert_eq!(error.reason_code(), reason);
        pair.drive();
        assert_eq!(last_disconnect(&pair, Direction::ToClient), Some(reason));
    }
}

#[test]
fn client_rejects_packets_before_connack() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.drive();
    let error = pair
        .client
        .handle_packet(Packet::PubAck(PubAck::success(id(1))), pair.now)
        .unwrap_err();
    assert_eq!(error.conformance(), Some("MQTT-3.2.0-1"));
    assert!(pair.client.is_closed());
    let sent: Vec<_> = std::iter::from_fn(|| pair.client.poll_transmit(pair.now)).collect();
    assert_eq!(
        sent,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::ProtocolError
        ))]
    );
}

#[test]
fn subscribe_and_unsubscribe_are_matched_to_their_answers() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let filters = vec![
        (
            TopicFilter::new("a/+").unwrap(),
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        ),
        (
            TopicFilter::new("b/#").unwrap(),
            SubscriptionOptions::with_qos(QoS::ExactlyOnce),
        ),
    ];
    let sub = pair
        .client
        .subscribe(filters, Properties::default())
        .unwrap();
    pair.drive();
    let Some(ServerEvent::Subscribe(subscribe)) = pair.server_events.pop() else {
        panic!("no SUBSCRIBE event");
    };
    assert_eq!(subscribe.packet_id, sub);
    // One reason code per filter, or the answer is refused.
    let short = SubAck {
        packet_id: sub,
        reason_codes: vec![ReasonCode::GrantedQoS1],
        properties: Properties::default(),
    };
    assert_eq!(
        pair.server.suback(short),
        Err(RequestError::ReasonCodeCount {
            expected: 2,
            got: 1
        })
    );
    pair.server
        .suback(SubAck {
            packet_id: sub,
            reason_codes: vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized],
            properties: Properties::default(),
        })
        .unwrap();
    pair.drive();
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::SubAck(ack)) if ack.packet_id == sub && ack.reason_codes[1] == ReasonCode::NotAuthorized
    ));

    let unsub = pair
        .client
        .unsubscribe(
            vec![TopicFilter::new("a/+").unwrap()],
            Properties::default(),
        )
        .unwrap();
    pair.drive();
    assert!(
        matches!(pair.server_events.pop(), Some(ServerEvent::Unsubscribe(u)) if u.packet_id == unsub)
    );
    pair.server
        .unsuback(UnsubAck {
            packet_id: unsub,
            reason_codes: vec![ReasonCode::Success],
            properties: Properties::default(),
        })
        .unwrap();
    pair.drive();
    assert!(
        matches!(pair.client_events.last(), Some(ClientEvent::UnsubAck(u)) if u.packet_id == unsub)
    );

    // A SUBACK nobody asked for is a protocol error [MQTT-2.2.1-6].
    let stray = Packet::SubAck(SubAck {
        packet_id: id(999),
        reason_codes: vec![ReasonCode::Success],
        properties: Properties::default(),
    });
    let error = pair.client.handle_packet(stray, pair.now).unwrap_err();
    assert_eq!(error.conformance(), Some("MQTT-2.2.1-6"));
}

#[test]
fn disconnect_rules_for_session_expiry() {
    // The client may not set an expiry on DISCONNECT after connecting with none.
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let mut disconnect = Disconnect::default();
    disconnect.properties.session_expiry_interval = Some(60);
    assert_eq!(
        pair.client.disconnect(disconnect.clone()),
        Err(RequestError::SessionExpiryAfterZero)
    );
    // A server receiving one anyway answers 0x82 (3.14.2.2.2).
    let error = pair
        .server
        .handle_packet(Packet::Disconnect(disconnect.clone()), pair.now)
        .unwrap_err();
    assert_eq!(error, SessionError::SessionExpiryAfterZero);
    pair.drive();
    assert_eq!(
        last_disconnect(&pair, Direction::ToClient),
        Some(ReasonCode::ProtocolError)
    );

    // The server never sends a Session Expiry Interval [MQTT-3.14.2-2].
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.connect(Accept::default());
    let mut shutdown = Disconnect::new(ReasonCode::ServerShuttingDown);
    shutdown.properties.session_expiry_interval = Some(10);
    pair.server.disconnect(shutdown).unwrap();
    pair.drive();
    let Some(ClientEvent::Disconnected(received)) = pair.client_events.last() else {
        panic!("no Disconnected event");
    };
    assert_eq!(received.reason_code, ReasonCode::ServerShuttingDown);
    assert_eq!(received.properties.session_expiry_interval, None);
    assert!(pair.client.is_closed() && pair.server.is_closed());

    // A normal client DISCONNECT reaches the broker, which then discards the will.
    let mut config = v5();
    config.connect.properties.session_expiry_interval = Some(30);
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(Accept::default());
    pair.client.disconnect(disconnect).unwrap();
    pair.drive();
    assert!(matches!(
        pair.server_events.last(),
        Some(ServerEvent::Disconnected(d)) if d.properties.session_expiry_interval == Some(60)
    ));
    // Nothing may follow a DISCONNECT [MQTT-3.14.4-1].
    assert_eq!(
        pair.client.publish(message("late", QoS::AtMostOnce, b"x")),
        Err(RequestError::Closed)
    );
}

#[test]
fn refused_connect_drops_early_packets() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.drive();
    // A pipelined PUBLISH after CONNECT, before the answer.
    let early = message("early", QoS::AtMostOnce, b"x");
    pair.server
        .handle_packet(Packet::Publish(early), pair.now)
        .unwrap();
    pair.server
        .refuse(ReasonCode::NotAuthorized, Properties::default())
        .unwrap();
    pair.drive();
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::ConnectionRefused(ack)) if ack.reason_code == ReasonCode::NotAuthorized && !ack.session_present
    ));
    assert!(pair
        .server_events
        .iter()
        .all(|e| !matches!(e, ServerEvent::Publish(_))));
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

#[test]
fn accepted_connect_processes_early_packets() {
    let mut pair = Pair::new(v5(), ServerConfig::default());
    pair.drive();
    let early = message("early", QoS::AtMostOnce, b"x");
    pair.server
        .handle_packet(Packet::Publish(early), pair.now)
        .unwrap();
    pair.server.accept(Accept::default(), pair.now).unwrap();
    pair.drive();
    assert_eq!(pair.server_publishes().len(), 1);
}

#[test]
fn mqtt_3_1_1_runs_without_properties() {
    let config = ClientConfig::new(connect(ProtocolVersion::V3_1_1, "old-1"));
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        receive_maximum: Some(1),
        ..PropertySet::default()
    })));
    let Some(Packet::ConnAck(connack)) = pair.packets(Direction::ToClient).first().copied() else {
        panic!("no CONNACK");
    };
    assert!(connack.properties.is_empty());
    let two = pair
        .client
        .publish(message("v3", QoS::ExactlyOnce, b"x"))
        .unwrap()
        .unwrap();
    pair.server
        .publish(message("v3", QoS::ExactlyOnce, b"y"))
        .unwrap();
    pair.drive();
    // 3.1.1 has no Receive Maximum, so the server's announced limit is not enforced.
    let mut extra = message("v3", QoS::AtLeastOnce, b"z");
    extra.packet_id = Some(id(500));
    pair.server
        .handle_packet(Packet::Publish(extra), pair.now)
        .unwrap();
    for publish in pair.server_publishes() {
        pair.server
            .ack_incoming(publish.packet_id.unwrap(), ReasonCode::QuotaExceeded)
            .unwrap();
    }
    for publish in pair.client_publishes() {
        pair.client
            .ack_incoming(publish.packet_id.unwrap(), ReasonCode::Success)
            .unwrap();
    }
    pair.drive();
    // Before 5.0 an acknowledgement cannot refuse: the QoS 2 flow completes normally.
    assert_eq!(pair.client_acks(), vec![(two, ReasonCode::Success)]);
    assert_eq!(pair.server_acks().len(), 1);
    // A 3.1.1 server has no DISCONNECT: errors close silently.
    let error = pair
        .server
        .handle_packet(Packet::PingResp, pair.now)
        .unwrap_err();
    assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
    assert_eq!(pair.server.poll_transmit(pair.now), None);
}

#[test]
fn enhanced_authentication_passes_through_as_events() {
    let mut config = v5();
    config.connect.properties.authentication_method = Some(MqttString::from_static("SCRAM-SHA-1"));
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.drive();
    assert!(matches!(
        pair.server_events.pop(),
        Some(ServerEvent::Connect(_))
    ));
    let challenge = mquictt_protocol::Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Properties::from(PropertySet {
            authentication_method: Some(MqttString::from_static("SCRAM-SHA-1")),
            authentication_data: Some(Bytes::from_static(b"server-first")),
            ..PropertySet::default()
        }),
    };
    pair.server.auth(challenge.clone()).unwrap();
    pair.drive();
    assert_eq!(
        pair.client_events.pop(),
        Some(ClientEvent::Auth(challenge.clone()))
    );
    assert!(!pair.client.is_connected());
    let mut response = challenge;
    response.properties.authentication_data = Some(Bytes::from_static(b"client-final"));
    pair.client.auth(response.clone()).unwrap();
    pair.drive();
    assert_eq!(pair.server_events.pop(), Some(ServerEvent::Auth(response)));
    pair.server.accept(Accept::default(), pair.now).unwrap();
    pair.drive();
    assert!(pair.client.is_connected());

    // Without an authentication method in CONNECT, AUTH is a protocol error [MQTT-4.12.0-7].
    let mut plain = Pair::new(v5(), ServerConfig::default());
    plain.connect(Accept::default());
    let stray = Packet::Auth(mquictt_protocol::Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: Properties::default(),
    });
    let error = plain.server.handle_packet(stray, plain.now).unwrap_err();
    assert_eq!(error, SessionError::AuthWithoutMethod);
    assert_eq!(
        plain.client.auth(mquictt_protocol::Auth {
            reason_code: ReasonCode::ReAuthenticate,
            properties: Properties::default(),
        }),
        Err(RequestError::NoAuthenticationMethod)
    );
}

#[test]
fn connect_and_connack_timeouts() {
    let start = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), start);
    assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(10)));
    server
        .handle_timeout(start + Duration::from_secs(9))
        .unwrap();
    let error = server
        .handle_timeout(start + Duration::from_secs(10))
        .unwrap_err();
    assert_eq!(error, SessionError::ConnectTimeout(Duration::from_secs(10)));
    assert!(server.is_closed());

    let mut client = ClientSession::new(v5(), None, start);
    assert!(matches!(
        client.poll_transmit(start),
        Some(Packet::Connect(_))
    ));
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(30)));
    let error = client
        .handle_timeout(start + Duration::from_secs(30))
        .unwrap_err();
    assert_eq!(error, SessionError::ConnAckTimeout(Duration::from_secs(30)));
    assert_eq!(client.poll_transmit(start), None);
}
