//! Keep alive, PINGREQ/PINGRESP and the connect and CONNACK timeouts.

use super::*;

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
