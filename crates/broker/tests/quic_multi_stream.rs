//! EMQX-compatible multi-stream MQTT over QUIC through the broker, over real QUIC on loopback:
//! subscriptions and acknowledgements stay on the data stream they belong to, packet
//! identifiers are per stream, a stalled or broken data stream leaves the others alone, data
//! bytes sent before CONNECT wait for it, and the connection ends with its control stream.

mod quic_support;

use mquictt_protocol::{Packet, ProtocolVersion, PubAck, QoS, ReasonCode};
use mquictt_transport::quinn::ConnectionError;
use mquictt_transport::{QuicClientConnection, QuicStream, TransportKind};
use quic_support::{
    connect, pid, publish, subscribe, wait_until, PacketStream, QuicBroker, Received, PATIENCE,
};
use tokio::io::AsyncWriteExt;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A connected multi-stream client: its control stream and the QUIC connection.
async fn connected(
    broker: &QuicBroker,
    client_id: &str,
) -> (
    PacketStream<mquictt_transport::BoxStream>,
    QuicClientConnection,
) {
    let connected = broker.open(TransportKind::Quic).await;
    let quic = connected.quic.expect("a QUIC connection");
    let mut control = PacketStream::new(connected.stream, V5);
    let connack = control.connect(connect(V5, client_id, true, 0)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    (control, quic)
}

async fn data_stream(quic: &QuicClientConnection) -> PacketStream<QuicStream> {
    PacketStream::new(
        quic.open_data_stream().await.expect("open a data stream"),
        V5,
    )
}

/// A publisher over plain TCP.
async fn tcp_publisher(
    broker: &QuicBroker,
    client_id: &str,
) -> PacketStream<mquictt_transport::BoxStream> {
    let mut publisher = PacketStream::new(broker.open(TransportKind::Tcp).await.stream, V5);
    publisher.connect(connect(V5, client_id, true, 0)).await;
    publisher
}

#[tokio::test]
async fn a_subscription_is_delivered_on_the_data_stream_it_was_made_on() {
    let broker = QuicBroker::start().await;
    let (mut control, quic) = connected(&broker, "multi").await;
    let mut stream_a = data_stream(&quic).await;
    let mut stream_b = data_stream(&quic).await;
    assert_eq!(
        stream_a
            .subscribe(1, "a/#", QoS::AtLeastOnce)
            .await
            .reason_codes,
        [ReasonCode::GrantedQoS1]
    );
    assert_eq!(
        stream_b
            .subscribe(1, "b/#", QoS::AtMostOnce)
            .await
            .reason_codes,
        [ReasonCode::GRANTED_QOS_0]
    );

    let mut publisher = tcp_publisher(&broker, "publisher").await;
    publisher
        .send(&publish("a/1", "for a", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .send(&publish("b/1", "for b", QoS::AtMostOnce, 0))
        .await;

    let on_a = stream_a.expect_publish().await;
    assert_eq!(
        (on_a.topic.as_str(), &on_a.payload[..]),
        ("a/1", &b"for a"[..])
    );
    let on_b = stream_b.expect_publish().await;
    assert_eq!(
        (on_b.topic.as_str(), &on_b.payload[..]),
        ("b/1", &b"for b"[..])
    );
    // The QoS 1 copy is acknowledged on its own stream.
    let id = on_a.packet_id.expect("QoS 1 has an identifier");
    stream_a.send(&Packet::PubAck(PubAck::success(id))).await;
    stream_a.expect_quiet().await;
    stream_b.expect_quiet().await;
    control.expect_quiet().await;
}

#[tokio::test]
async fn acknowledgements_go_back_on_the_stream_of_the_publish() {
    let broker = QuicBroker::start().await;
    let (mut control, quic) = connected(&broker, "acks").await;
    let mut stream_a = data_stream(&quic).await;
    let mut stream_b = data_stream(&quic).await;
    // The same packet identifier on two streams: each stream has its own identifier space.
    stream_a
        .send(&publish("t/a", "1", QoS::AtLeastOnce, 7))
        .await;
    stream_b
        .send(&publish("t/b", "2", QoS::ExactlyOnce, 7))
        .await;
    match stream_a.recv().await {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, pid(7)),
        other => panic!("expected PUBACK on stream A, got {other:?}"),
    }
    match stream_b.recv().await {
        Packet::PubRec(rec) => assert_eq!(rec.packet_id, pid(7)),
        other => panic!("expected PUBREC on stream B, got {other:?}"),
    }
    stream_b
        .send(&Packet::PubRel(PubAck::success(pid(7))))
        .await;
    match stream_b.recv().await {
        Packet::PubComp(comp) => assert_eq!(comp.packet_id, pid(7)),
        other => panic!("expected PUBCOMP on stream B, got {other:?}"),
    }
    control.expect_quiet().await;
    stream_a.expect_quiet().await;
}

#[tokio::test]
async fn a_stalled_data_stream_does_not_delay_another() {
    let broker = QuicBroker::start().await;
    let (_control, quic) = connected(&broker, "stall").await;
    let mut bulk = data_stream(&quic).await;
    let mut live = data_stream(&quic).await;
    bulk.subscribe(1, "bulk", QoS::AtMostOnce).await;
    live.subscribe(1, "live", QoS::AtMostOnce).await;

    // Far more than a QUIC stream's receive window, and nobody reads `bulk`.
    let mut publisher = tcp_publisher(&broker, "bulk-publisher").await;
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..256 {
        publisher
            .send(&publish("bulk", chunk.clone(), QoS::AtMostOnce, 0))
            .await;
    }
    publisher
        .send(&publish("live", "now", QoS::AtMostOnce, 0))
        .await;

    // Nothing has been read from `bulk`: behind it on one stream, this message would wait
    // until the client read the backlog, so its arrival shows the stall held nothing up.
    let message = live.expect_publish().await;
    assert_eq!(&message.payload[..], b"now");
    // The stalled stream still has its messages, in order, once it reads again.
    let first = bulk.expect_publish().await;
    assert_eq!(first.payload.len(), chunk.len());
}

#[tokio::test]
async fn a_malformed_packet_closes_only_its_data_stream() {
    let broker = QuicBroker::start().await;
    let (mut control, quic) = connected(&broker, "malformed").await;
    let mut broken = data_stream(&quic).await;
    let mut healthy = data_stream(&quic).await;
    healthy.subscribe(1, "still/here", QoS::AtMostOnce).await;

    // Packet type 0 is reserved: "Forbidden" (2.1.2).
    broken.send_raw(&[0x00, 0x00]).await;
    broken.expect_closed().await;
    // A packet that belongs on the control stream closes a data stream too.
    let mut pinging = data_stream(&quic).await;
    pinging.send(&Packet::PingReq).await;
    pinging.expect_closed().await;

    control.send(&Packet::PingReq).await;
    assert_eq!(control.recv().await, Packet::PingResp);
    let mut publisher = tcp_publisher(&broker, "after-malformed").await;
    publisher
        .send(&publish("still/here", "yes", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&healthy.expect_publish().await.payload[..], b"yes");
}

#[tokio::test]
async fn losing_the_control_stream_closes_the_connection_with_error_1() {
    let broker = QuicBroker::start().await;
    let (mut control, quic) = connected(&broker, "lost-control").await;
    let mut stream = data_stream(&quic).await;
    stream.subscribe(1, "x", QoS::AtMostOnce).await;
    // The client ends the control stream without DISCONNECT.
    control
        .stream
        .shutdown()
        .await
        .expect("finish the control stream");
    let reason = tokio::time::timeout(PATIENCE, quic.connection().closed())
        .await
        .expect("the broker closes the connection");
    match reason {
        ConnectionError::ApplicationClosed(close) => assert_eq!(close.error_code.into_inner(), 1),
        other => panic!("expected an application close, got {other}"),
    }
    assert_eq!(stream.next_within(PATIENCE).await, Received::Closed);
}

#[tokio::test]
async fn a_disconnect_closes_the_connection_without_error() {
    let broker = QuicBroker::start().await;
    let (mut control, quic) = connected(&broker, "clean-end").await;
    control
        .send(&Packet::Disconnect(mquictt_protocol::Disconnect::default()))
        .await;
    let reason = tokio::time::timeout(PATIENCE, quic.connection().closed())
        .await
        .expect("the broker closes the connection");
    match reason {
        ConnectionError::ApplicationClosed(close) => assert_eq!(close.error_code.into_inner(), 0),
        other => panic!("expected an application close, got {other}"),
    }
}

#[tokio::test]
async fn data_stream_bytes_wait_until_connect_is_accepted() {
    let broker = QuicBroker::start().await;
    let connected = broker.open(TransportKind::Quic).await;
    let quic = connected.quic.expect("QUIC");
    // SUBSCRIBE goes out on a data stream before CONNECT is even sent.
    let mut early = data_stream(&quic).await;
    early.send(&subscribe(1, "early/#", QoS::AtMostOnce)).await;
    early.expect_quiet().await;
    let mut control = PacketStream::new(connected.stream, V5);
    let connack = control.connect(connect(V5, "early-bird", true, 0)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    match early.recv().await {
        Packet::SubAck(suback) => assert_eq!(suback.reason_codes, [ReasonCode::GRANTED_QOS_0]),
        other => panic!("expected SUBACK on the data stream, got {other:?}"),
    }
    let mut publisher = tcp_publisher(&broker, "early-publisher").await;
    publisher
        .send(&publish("early/1", "hi", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&early.expect_publish().await.payload[..], b"hi");
}

#[tokio::test]
async fn data_stream_subscriptions_end_with_their_stream_and_are_not_resumed() {
    let broker = QuicBroker::start().await;
    let metrics = broker.broker.metrics();
    // A session that outlives the connection, with one subscription on each kind of stream.
    let connected = broker.open(TransportKind::Quic).await;
    let quic = connected.quic.expect("QUIC");
    let mut control = PacketStream::new(connected.stream, V5);
    control.connect(connect(V5, "resumer", true, 600)).await;
    control.subscribe(1, "ctl/#", QoS::AtLeastOnce).await;
    let mut stream = data_stream(&quic).await;
    stream.subscribe(1, "data/#", QoS::AtLeastOnce).await;
    let gauge = || mquictt_broker::Metrics::get(&metrics.subscriptions);
    assert_eq!(gauge(), 2);

    // Closing the data stream ends its subscription; the session's stays.
    stream
        .stream
        .shutdown()
        .await
        .expect("finish the data stream");
    wait_until("the data stream's subscription is gone", || gauge() == 1).await;

    let mut again = data_stream(&quic).await;
    again.subscribe(2, "data/#", QoS::AtLeastOnce).await;
    control
        .send(&Packet::Disconnect(mquictt_protocol::Disconnect::default()))
        .await;
    wait_until("the connection is gone", || gauge() == 1).await;

    // While offline, messages for both filters; only the session's subscription keeps them.
    let mut publisher = tcp_publisher(&broker, "offline-publisher").await;
    publisher
        .send(&publish("ctl/1", "kept", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .send(&publish("data/1", "not kept", QoS::AtLeastOnce, 2))
        .await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));

    let connected = broker.open(TransportKind::Quic).await;
    let mut control = PacketStream::new(connected.stream, V5);
    let connack = control.connect(connect(V5, "resumer", false, 600)).await;
    assert!(connack.session_present);
    let resumed = control.expect_publish().await;
    assert_eq!(
        (resumed.topic.as_str(), &resumed.payload[..]),
        ("ctl/1", &b"kept"[..])
    );
    control.expect_quiet().await;
}
