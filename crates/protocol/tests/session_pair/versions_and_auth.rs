//! MQTT 3.1.1 without properties, and enhanced authentication passed through as events.

use super::*;

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
