//! MQTT over QUIC in single-stream mode through the broker (ordinary MQTT framing on the first
//! bidirectional stream, 5.0 and 3.1.1), the QUIC idle timeout that an MQTT 5 keep alive must
//! fit in, and delivery across transports: published over QUIC and received over TCP,
//! WebSocket and TLS, and the other way round.

mod quic_support;

use std::time::Duration;

use mquictt_broker::{BrokerConfig, QuicServing};
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use mquictt_transport::TransportKind;
use quic_support::{connect, publish, PacketStream, QuicBroker};

async fn client(
    broker: &QuicBroker,
    kind: TransportKind,
    version: ProtocolVersion,
    client_id: &str,
) -> PacketStream<mquictt_transport::BoxStream> {
    let mut client = PacketStream::new(broker.open(kind).await.stream, version);
    let connack = client.connect(connect(version, client_id, true, 0)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    client
}

#[tokio::test]
async fn single_stream_publish_and_subscribe_in_both_versions() {
    let broker = QuicBroker::start().await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
        let mut subscriber = client(&broker, TransportKind::Quic, version, "sub").await;
        subscriber.subscribe(1, "sensors/#", QoS::AtLeastOnce).await;
        let mut publisher = client(&broker, TransportKind::Quic, version, "pub").await;
        publisher
            .send(&publish("sensors/t", "21.5", QoS::AtLeastOnce, 1))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
        let message = subscriber.expect_publish().await;
        assert_eq!(
            (message.topic.as_str(), &message.payload[..]),
            ("sensors/t", &b"21.5"[..])
        );
        subscriber.send(&Packet::PingReq).await;
        assert_eq!(subscriber.recv().await, Packet::PingResp);
    }
}

#[tokio::test]
async fn a_keep_alive_beyond_the_idle_timeout_is_shortened_for_mqtt_5() {
    let serving = QuicServing {
        idle_timeout: Some(Duration::from_secs(30)),
        ..QuicServing::default()
    };
    let broker = QuicBroker::with(BrokerConfig::default(), serving).await;
    let mut long = PacketStream::new(
        broker.open(TransportKind::Quic).await.stream,
        ProtocolVersion::V5,
    );
    let mut request = connect(ProtocolVersion::V5, "sleepy", true, 0);
    request.keep_alive = 600;
    let connack = long.connect(request).await;
    // 1.5 x 20 s fits in the 30 s the QUIC connection may stay idle.
    assert_eq!(connack.properties.server_keep_alive, Some(20));

    let mut short = PacketStream::new(
        broker.open(TransportKind::Quic).await.stream,
        ProtocolVersion::V5,
    );
    let mut request = connect(ProtocolVersion::V5, "chatty", true, 0);
    request.keep_alive = 10;
    let connack = short.connect(request).await;
    assert_eq!(connack.properties.server_keep_alive, None);
}

#[tokio::test]
async fn messages_cross_between_quic_and_every_other_transport() {
    let broker = QuicBroker::start().await;
    let others = [TransportKind::Tcp, TransportKind::Ws, TransportKind::Tls];
    let pairs = others
        .iter()
        .flat_map(|&other| [(TransportKind::Quic, other), (other, TransportKind::Quic)]);
    for (n, (from, to)) in pairs.enumerate() {
        let version = ProtocolVersion::V5;
        let topic = format!("cross/{n}");
        let mut subscriber = client(&broker, to, version, &format!("sub-{n}")).await;
        subscriber.subscribe(1, &topic, QoS::AtLeastOnce).await;
        let mut publisher = client(&broker, from, version, &format!("pub-{n}")).await;
        publisher
            .send(&publish(
                &topic,
                format!("{from} to {to}"),
                QoS::AtLeastOnce,
                1,
            ))
            .await;
        let message = subscriber.expect_publish().await;
        assert_eq!(message.topic.as_str(), topic);
        assert_eq!(message.payload, format!("{from} to {to}").into_bytes());
    }
}
