//! CONNECT negotiation and the QoS 0/1/2 flows in both directions: limits taken from
//! CONNACK, the in-flight window, failure reasons and packet identifier reuse.

use super::*;

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
