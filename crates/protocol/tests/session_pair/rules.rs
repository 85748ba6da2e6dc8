//! Protocol rules each side enforces: the first packet, a second CONNECT, Receive Maximum,
//! unknown PUBREL identifiers, announced maximums, SUBSCRIBE/UNSUBSCRIBE matching,
//! DISCONNECT and session expiry, packets sent before CONNACK.

use super::*;

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
