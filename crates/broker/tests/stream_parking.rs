//! Idle TLS, WebSocket and QUIC connections park (held without a task) as plain TCP ones do
//! (`idle_parking.rs`), over real listeners on loopback, and lose nothing by it: a parked client
//! receives what is published to it, publishes and pings; a parked QUIC connection serves a data
//! stream opened while it waits, notices its connection lost and publishes the will, and is
//! closed by a broker shutdown like the others.

mod quic_support;

use bytes::Bytes;
use mquictt_protocol::{
    Disconnect, Packet, Properties, ProtocolVersion, QoS, ReasonCode, TopicName, Will,
};
use mquictt_transport::quinn::VarInt;
use mquictt_transport::{BoxStream, QuicClientConnection, TransportKind};
use quic_support::{
    connect, pid, publish, wait_until, PacketStream, QuicBroker, Received, PATIENCE,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// The transports that are not plain sockets.
const STREAMS: [TransportKind; 3] = [TransportKind::Quic, TransportKind::Tls, TransportKind::Ws];

/// Waits until exactly `n` connections are parked.
async fn until_parked(broker: &QuicBroker, n: usize) {
    wait_until(&format!("{n} connections are parked"), || {
        broker.broker.parked_connections() == n
    })
    .await;
}

/// A connected client over `kind` (for QUIC, its control stream and connection).
async fn client(
    broker: &QuicBroker,
    kind: TransportKind,
    client_id: &str,
) -> (PacketStream<BoxStream>, Option<QuicClientConnection>) {
    let connected = broker.open(kind).await;
    let mut stream = PacketStream::new(connected.stream, V5);
    let connack = stream.connect(connect(V5, client_id, true, 0)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    (stream, connected.quic)
}

#[tokio::test]
async fn idle_tls_websocket_and_quic_clients_park_and_lose_nothing() {
    let broker = QuicBroker::start().await;
    let (mut publisher, _) = client(&broker, TransportKind::Tcp, "publisher").await;
    let mut subscribers = Vec::new();
    for kind in STREAMS {
        let (mut subscriber, quic) = client(&broker, kind, &format!("sub-{kind:?}")).await;
        let suback = subscriber
            .subscribe(1, &format!("parked/{kind:?}"), QoS::AtLeastOnce)
            .await;
        assert_eq!(suback.reason_codes, vec![ReasonCode::GrantedQoS1]);
        subscribers.push((kind, subscriber, quic));
    }
    // The publisher parks too (plain TCP).
    until_parked(&broker, 4).await;

    // Woken by the router: each parked subscriber receives its message.
    for (i, (kind, _, _)) in subscribers.iter().enumerate() {
        let id = u16::try_from(i + 1).expect("few subscribers");
        publisher
            .send(&publish(
                &format!("parked/{kind:?}"),
                "news",
                QoS::AtLeastOnce,
                id,
            ))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(ack) if ack.packet_id == pid(id)));
    }
    for (kind, subscriber, _) in &mut subscribers {
        let received = subscriber.expect_publish().await;
        assert_eq!(received.topic.as_str(), format!("parked/{kind:?}"));
        assert_eq!(&received.payload[..], b"news");
        let id = received.packet_id.expect("QoS 1");
        subscriber
            .send(&Packet::PubAck(mquictt_protocol::PubAck::success(id)))
            .await;
    }
    until_parked(&broker, 4).await;

    // Woken by input: each parked client pings and publishes.
    for (kind, subscriber, _) in &mut subscribers {
        subscriber.send(&Packet::PingReq).await;
        assert_eq!(subscriber.recv().await, Packet::PingResp, "{kind:?}");
        subscriber
            .send(&publish("parked/out", "up", QoS::AtLeastOnce, 9))
            .await;
        assert!(
            matches!(subscriber.recv().await, Packet::PubAck(ack) if ack.packet_id == pid(9)),
            "{kind:?}"
        );
    }
    until_parked(&broker, 4).await;

    for (_, mut subscriber, _) in subscribers {
        subscriber
            .send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .await;
        subscriber.expect_closed().await;
    }
    until_parked(&broker, 1).await;
}

#[tokio::test]
async fn a_parked_quic_connection_serves_a_data_stream_opened_while_it_waits() {
    let broker = QuicBroker::start().await;
    let (_control, quic) = client(&broker, TransportKind::Quic, "multi").await;
    let quic = quic.expect("a QUIC connection");
    until_parked(&broker, 1).await;

    // The new stream wakes the connection, whose loop accepting streams was parked with it.
    let mut data = PacketStream::new(
        quic.open_data_stream().await.expect("open a data stream"),
        V5,
    );
    let suback = data.subscribe(1, "late/#", QoS::AtMostOnce).await;
    assert_eq!(suback.reason_codes, vec![ReasonCode::Success]);

    let (mut publisher, _) = client(&broker, TransportKind::Tcp, "publisher").await;
    publisher
        .send(&publish("late/news", "fresh", QoS::AtMostOnce, 0))
        .await;
    let received = data.expect_publish().await;
    assert_eq!(&received.payload[..], b"fresh");
}

#[tokio::test]
async fn a_parked_quic_connection_that_is_lost_publishes_its_will() {
    let broker = QuicBroker::start().await;
    let (mut watcher, _) = client(&broker, TransportKind::Tcp, "watcher").await;
    watcher.subscribe(1, "wills/#", QoS::AtMostOnce).await;

    let connected = broker.open(TransportKind::Quic).await;
    let quic = connected.quic.expect("a QUIC connection");
    let mut control = PacketStream::new(connected.stream, V5);
    let mut sleeper = connect(V5, "sleeper", true, 0);
    sleeper.will = Some(Will {
        topic: TopicName::new("wills/sleeper").expect("topic"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    assert_eq!(
        control.connect(sleeper).await.reason_code,
        ReasonCode::Success
    );
    until_parked(&broker, 2).await;

    // The client's QUIC connection goes away without an MQTT DISCONNECT: the parked control
    // stream's read fails, which wakes it.
    quic.connection().close(VarInt::from_u32(7), b"power cut");
    let will = watcher.expect_publish().await;
    assert_eq!(will.topic.as_str(), "wills/sleeper");
    assert_eq!(&will.payload[..], b"gone");
    until_parked(&broker, 1).await;
}

#[tokio::test]
async fn a_shutdown_closes_parked_stream_clients() {
    let broker = QuicBroker::start().await;
    let mut clients = Vec::new();
    for kind in STREAMS {
        clients.push((kind, client(&broker, kind, &format!("c-{kind:?}")).await.0));
    }
    until_parked(&broker, 3).await;
    let stopping = tokio::spawn({
        let broker = broker.broker.clone();
        async move { broker.shutdown().await }
    });
    for (kind, mut client) in clients {
        match client.next_within(PATIENCE).await {
            Received::Packet(packet) => assert!(
                matches!(&*packet, Packet::Disconnect(d) if d.reason_code == ReasonCode::ServerShuttingDown),
                "{kind:?}: {packet:?}"
            ),
            other => panic!("{kind:?}: expected DISCONNECT, got {other:?}"),
        }
        client.expect_closed().await;
    }
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("the shutdown ends")
        .expect("shutdown task");
    assert_eq!(broker.broker.parked_connections(), 0);
}
