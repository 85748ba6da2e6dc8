//! Sessions across connections: resending with DUP, the server's own outbound state,
//! Clean Start and lost sessions.

use super::*;

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
