//! Connection migration through the broker: a QUIC client that moves to a new local UDP port
//! (as after a NAT rebinding or a change of network) keeps its connection, its MQTT session
//! and its data streams, without reconnecting.

mod quic_support;

use mquictt_protocol::{Packet, ProtocolVersion, QoS};
use mquictt_transport::TransportKind;
use quic_support::{connect, publish, PacketStream, QuicBroker};

#[tokio::test]
async fn a_client_that_rebinds_keeps_its_connection_and_session() {
    let broker = QuicBroker::start().await;
    let v5 = ProtocolVersion::V5;
    let connected = broker.open(TransportKind::Quic).await;
    let quic = connected.quic.expect("QUIC");
    let mut control = PacketStream::new(connected.stream, v5);
    control.connect(connect(v5, "roamer", true, 0)).await;
    control.subscribe(1, "to/roamer", QoS::AtLeastOnce).await;
    let mut data = PacketStream::new(quic.open_data_stream().await.expect("data stream"), v5);
    data.subscribe(1, "to/roamer/data", QoS::AtMostOnce).await;

    let before = quic.endpoint().local_addr().expect("local address");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("new local socket");
    quic.rebind(socket).expect("rebind");
    let after = quic.endpoint().local_addr().expect("local address");
    assert_ne!(
        before.port(),
        after.port(),
        "the client moved to a new port"
    );

    // Traffic in both directions over the new path, on the same MQTT connection.
    control.send(&Packet::PingReq).await;
    assert_eq!(control.recv().await, Packet::PingResp);
    control
        .send(&publish("from/roamer", "moved", QoS::AtLeastOnce, 2))
        .await;
    assert!(matches!(control.recv().await, Packet::PubAck(_)));

    let mut publisher = PacketStream::new(broker.open(TransportKind::Tcp).await.stream, v5);
    publisher.connect(connect(v5, "home", true, 0)).await;
    publisher
        .send(&publish("to/roamer", "found you", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .send(&publish("to/roamer/data", "and here", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&control.expect_publish().await.payload[..], b"found you");
    assert_eq!(&data.expect_publish().await.payload[..], b"and here");
    assert!(
        quic.connection().close_reason().is_none(),
        "still the same connection"
    );
}
