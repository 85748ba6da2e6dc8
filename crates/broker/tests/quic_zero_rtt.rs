//! QUIC 0-RTT through the broker with real session resumption: a client that reconnects sends
//! CONNECT and its publishes before the TLS handshake completes, and the broker applies its
//! replay policy (the default acts on CONNECT and QoS 0/1 at once and holds QoS 2 until the
//! handshake completes; every message is delivered exactly as its QoS promises). A listener
//! that refuses 0-RTT makes the client wait for the handshake instead.

mod quic_support;

use mquictt_broker::{BrokerConfig, EarlyDataPolicy, QuicServing};
use mquictt_protocol::{Packet, ProtocolVersion, PubAck, QoS};
use mquictt_transport::{Connector, QuicClientOptions, TransportKind};
use quic_support::{connect, pid, publish, PacketStream, QuicBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn zero_rtt_connector(broker: &QuicBroker) -> Connector {
    broker.connector_with(QuicClientOptions {
        zero_rtt: true,
        ..QuicClientOptions::default()
    })
}

/// Connects once with a full handshake, which leaves a session ticket with `connector`, and
/// leaves a session behind on the broker.
async fn first_visit(broker: &QuicBroker, connector: &Connector) {
    let connected = connector
        .connect(&broker.url(TransportKind::Quic))
        .await
        .expect("first connection");
    assert!(!connected.quic.as_ref().expect("QUIC").zero_rtt_attempted());
    let mut control = PacketStream::new(connected.stream, V5);
    control.connect(connect(V5, "returning", true, 600)).await;
    control.send(&Packet::PingReq).await;
    assert_eq!(control.recv().await, Packet::PingResp);
    control
        .send(&Packet::Disconnect(mquictt_protocol::Disconnect::default()))
        .await;
    control.expect_closed().await;
}

#[tokio::test]
async fn a_resumed_client_connects_and_publishes_in_0rtt() {
    let broker = QuicBroker::start().await;
    let mut subscriber = PacketStream::new(broker.open(TransportKind::Tcp).await.stream, V5);
    subscriber.connect(connect(V5, "watcher", true, 0)).await;
    subscriber.subscribe(1, "early/#", QoS::ExactlyOnce).await;
    let connector = zero_rtt_connector(&broker);
    first_visit(&broker, &connector).await;

    let connected = connector
        .connect(&broker.url(TransportKind::Quic))
        .await
        .expect("resumed connection");
    let quic = connected.quic.expect("QUIC");
    assert!(
        quic.zero_rtt_attempted(),
        "no session ticket to resume with"
    );
    let mut control = PacketStream::new(connected.stream, V5);
    // CONNECT, a QoS 1 and a QoS 2 publish, all written before the handshake completes.
    control
        .send(&Packet::Connect(Box::new(connect(
            V5,
            "returning",
            false,
            600,
        ))))
        .await;
    control
        .send(&publish("early/1", "at least once", QoS::AtLeastOnce, 1))
        .await;
    control
        .send(&publish("early/2", "exactly once", QoS::ExactlyOnce, 2))
        .await;
    assert!(
        quic.zero_rtt_accepted().await.expect("handshake"),
        "the broker refused the 0-RTT data"
    );

    match control.recv().await {
        Packet::ConnAck(connack) => assert!(connack.session_present),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(
        control.recv().await,
        Packet::PubAck(PubAck::success(pid(1)))
    );
    assert_eq!(
        control.recv().await,
        Packet::PubRec(PubAck::success(pid(2)))
    );
    control.send(&Packet::PubRel(PubAck::success(pid(2)))).await;
    assert_eq!(
        control.recv().await,
        Packet::PubComp(PubAck::success(pid(2)))
    );

    // Each message exactly once, in the order sent.
    let first = subscriber.expect_publish().await;
    assert_eq!(first.topic.as_str(), "early/1");
    let second = subscriber.expect_publish().await;
    assert_eq!(second.topic.as_str(), "early/2");
    let id = second.packet_id.expect("QoS 2");
    subscriber.send(&Packet::PubRec(PubAck::success(id))).await;
    assert_eq!(subscriber.recv().await, Packet::PubRel(PubAck::success(id)));
    subscriber.send(&Packet::PubComp(PubAck::success(id))).await;
    subscriber.expect_quiet().await;
}

#[tokio::test]
async fn a_listener_that_refuses_0rtt_still_serves_resumed_clients() {
    let serving = QuicServing {
        early_data: EarlyDataPolicy::Refuse,
        ..QuicServing::default()
    };
    let broker = QuicBroker::with(BrokerConfig::default(), serving).await;
    let connector = zero_rtt_connector(&broker);
    first_visit(&broker, &connector).await;

    let connected = connector
        .connect(&broker.url(TransportKind::Quic))
        .await
        .expect("second connection");
    let quic = connected.quic.expect("QUIC");
    assert!(
        !quic.zero_rtt_accepted().await.expect("handshake"),
        "0-RTT data was accepted by a listener that refuses it"
    );
    let mut control = PacketStream::new(connected.stream, V5);
    let connack = control.connect(connect(V5, "returning", false, 600)).await;
    assert!(connack.session_present);
    control
        .send(&publish(
            "late/1",
            "after the handshake",
            QoS::ExactlyOnce,
            1,
        ))
        .await;
    match control.recv().await {
        Packet::PubRec(rec) => assert_eq!(rec.packet_id, pid(1)),
        other => panic!("expected PUBREC, got {other:?}"),
    }
}
