//! Topic aliases in both directions and messages over the peer's Maximum Packet Size.

use super::*;

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
    let wire = pair.wire_topics_and_aliases(Direction::ToServer);
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
    let wire = pair.wire_topics_and_aliases(Direction::ToClient);
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
