//! A server machine put aside while its connection is idle, and taken up again.

use mquictt_protocol::session::IdleServerSession;

use super::*;

impl Pair {
    /// Puts the server machine aside and takes it up again; whether it was kept compact.
    fn rest_server(&mut self) -> bool {
        let before = self.server.poll_timeout();
        let placeholder = ServerSession::new(ServerConfig::default(), self.now);
        let idle: IdleServerSession = std::mem::replace(&mut self.server, placeholder).into_idle();
        assert_eq!(idle.poll_timeout(), before, "the deadline while idle");
        let compact = idle.is_compact();
        self.server = idle.into_session();
        assert_eq!(self.server.poll_timeout(), before, "the deadline after");
        compact
    }
}

#[test]
fn an_idle_machine_keeps_its_terms_and_counters() {
    let mut config = v5();
    config.connect.keep_alive = 30;
    config.connect.properties.receive_maximum = Some(2);
    config.outbound_topic_aliases = 8;
    let mut pair = Pair::new(config, ServerConfig::default());
    pair.connect(accept_with(Properties::from(PropertySet {
        topic_alias_maximum: Some(2),
        ..PropertySet::default()
    })));
    let first = pair
        .server
        .publish(message("down", QoS::AtLeastOnce, b"1"))
        .unwrap();
    assert_eq!(first, Some(id(1)));
    pair.drive();
    pair.client
        .ack_incoming(id(1), ReasonCode::Success)
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.in_flight(), 0);
    let quota = pair.server.send_quota();
    assert_eq!(quota, 2, "the client's Receive Maximum");

    assert!(pair.rest_server(), "nothing under way: compact");
    assert!(pair.server.is_connected());
    assert_eq!(pair.server.send_quota(), quota);
    // The identifier search goes on from where it was.
    let second = pair
        .server
        .publish(message("down", QoS::AtLeastOnce, b"2"))
        .unwrap();
    assert_eq!(second, Some(id(2)));
    // The Topic Alias Maximum the server announced still holds: the client's aliases are
    // resolved, not refused.
    for _ in 0..2 {
        pair.client
            .publish(message("up/1", QoS::AtMostOnce, b"x"))
            .unwrap();
    }
    pair.drive();
    assert_eq!(pair.server_error, None);
    let wire = pair.wire_topics_and_aliases(Direction::ToServer);
    assert_eq!(
        wire,
        vec![("up/1".to_owned(), Some(1)), (String::new(), Some(1))]
    );
    let seen: Vec<_> = pair
        .server_publishes()
        .iter()
        .map(|p| p.topic.as_str().to_owned())
        .collect();
    assert_eq!(seen, ["up/1", "up/1"]);
    // Keep alive still runs: one and a half intervals of silence close the connection.
    pair.advance(Duration::from_secs(46));
    assert_eq!(
        last_disconnect(&pair, Direction::ToClient),
        Some(ReasonCode::KeepAliveTimeout)
    );
}

#[test]
fn a_machine_with_something_under_way_is_kept_whole() {
    let mut config = v5();
    config.connect.properties.topic_alias_maximum = Some(4);
    let server_config = ServerConfig {
        outbound_topic_aliases: 4,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config, server_config);
    pair.connect(accept_with(Properties::default()));
    pair.server
        .publish(message("t/1", QoS::AtLeastOnce, b"1"))
        .unwrap();
    // The PUBLISH is out, its PUBACK not yet back.
    pair.drive_server_to_client_only();
    assert_eq!(pair.server.in_flight(), 1);
    assert!(!pair.rest_server(), "an exchange in flight: whole");
    assert_eq!(pair.server.in_flight(), 1);
    pair.client
        .ack_incoming(id(1), ReasonCode::Success)
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.in_flight(), 0, "the PUBACK completed it");

    // The alias assigned to `t/1` is still in use.
    assert!(!pair.rest_server(), "an alias in use: whole");
    pair.server
        .publish(message("t/1", QoS::AtMostOnce, b"2"))
        .unwrap();
    pair.drive();
    let wire = pair.wire_topics_and_aliases(Direction::ToClient);
    assert_eq!(
        wire,
        vec![("t/1".to_owned(), Some(1)), (String::new(), Some(1))]
    );
    assert_eq!(pair.client_error, None);
}

#[test]
fn a_machine_before_connect_keeps_its_connect_deadline() {
    let config = ServerConfig {
        connect_timeout: Some(Duration::from_secs(10)),
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(v5(), config);
    assert!(pair.rest_server());
    assert_eq!(
        pair.server.poll_timeout(),
        Some(pair.start + Duration::from_secs(10))
    );
}
