//! A data stream that the broker closes while the connection stays up: the client opens a new
//! stream on the same QUIC connection, subscribes again on it and sends the publish the broker
//! never acknowledged again, without a reconnect. The broker here is a scripted peer over a
//! real QUIC listener on loopback, so the test sees exactly which packet arrives on which
//! stream.

// The in-process broker needs the `broker` feature; data streams need `quic`.
#![cfg(all(feature = "broker", feature = "quic"))]
mod quic_broker;

use std::time::Duration;

use bytes::BytesMut;
use mquictt_client::{
    Client, ClientOptions, ClientTlsSettings, ConnectionStatus, Message, QoS, ReasonCode,
    ReconnectPolicy, Subscription,
};
use mquictt_protocol::{
    ConnAck, Decoder, Packet, Properties, ProtocolVersion, PubAck, Publish, SubAck, TopicName,
};
use mquictt_transport::{DevCertificates, ListenUrl, Listener, ServerTlsSettings, TransportKind};
use quic_broker::PATIENCE;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// MQTT packets over one stream of the scripted broker.
struct PacketStream<S> {
    stream: S,
    buf: BytesMut,
    decoder: Decoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    fn new(stream: S) -> Self {
        PacketStream {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::with_version(V5, 1024 * 1024),
        }
    }

    async fn recv(&mut self) -> Packet {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(packet) = self.decoder.decode(&mut self.buf).expect("well-formed") {
                    return packet;
                }
                let read = self.stream.read_buf(&mut self.buf).await.expect("read");
                assert!(read > 0, "the client closed the stream");
            }
        })
        .await
        .expect("a packet in time")
    }

    async fn send(&mut self, packet: Packet) {
        let mut bytes = BytesMut::new();
        packet.encode(V5, &mut bytes).expect("encodable");
        self.stream.write_all(&bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_stream_the_broker_closes_is_opened_again_on_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCertificates::load_or_create(dir.path()).unwrap();
    let tls = ServerTlsSettings::from_dev_certificates(&certs).unwrap();
    let url = ListenUrl::new(TransportKind::Quic, "127.0.0.1:0".parse().unwrap());
    let mut listener = Listener::bind(&url, &tls).await.unwrap();
    let options = ClientOptions::new(&format!(
        "quic://localhost:{}",
        listener.local_addr().port()
    ))
    .unwrap()
    .tls(ClientTlsSettings::trusting_ca_file(&certs.ca_cert).unwrap())
    .client_id("recovering")
    // A reconnect would show up as a second connection, which this broker never accepts.
    .reconnect(ReconnectPolicy::disabled());

    let client_task = tokio::spawn(Client::connect(options));
    let accepted = listener.accept().await.unwrap();
    let quic = accepted.quic.expect("a QUIC connection");
    let mut control = PacketStream::new(accepted.stream);
    assert!(matches!(control.recv().await, Packet::Connect(_)));
    control
        .send(Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        }))
        .await;
    let (client, _messages) = client_task.await.unwrap().expect("connected");

    let (stream, mut stream_messages) = client.data_stream().unwrap();
    let subscribing = tokio::spawn({
        let stream = stream.clone();
        async move {
            stream
                .subscribe(Subscription::new("s/#", QoS::AtLeastOnce).unwrap())
                .await
        }
    });
    let mut first = PacketStream::new(quic.accept_data_stream().await.unwrap());
    let Packet::Subscribe(subscribe) = first.recv().await else {
        panic!("expected SUBSCRIBE on the data stream");
    };
    first
        .send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: vec![ReasonCode::GrantedQoS1],
            properties: Properties::default(),
        }))
        .await;
    assert!(subscribing.await.unwrap().unwrap().all_granted());

    // A publish the broker reads and never acknowledges; then it finishes the stream.
    let publishing = stream
        .publish(Message::new("p/1", "once").unwrap().qos(QoS::AtLeastOnce))
        .unwrap();
    let Packet::Publish(unacknowledged) = first.recv().await else {
        panic!("expected PUBLISH on the data stream");
    };
    assert_eq!(unacknowledged.payload, "once");
    first.stream.shutdown().await.unwrap();
    drop(first);

    // The same connection, a new stream: the subscription first, then the publish again.
    let mut second = PacketStream::new(
        tokio::time::timeout(PATIENCE, quic.accept_data_stream())
            .await
            .expect("a new data stream in time")
            .unwrap(),
    );
    let Packet::Subscribe(renewed) = second.recv().await else {
        panic!("expected the renewed SUBSCRIBE");
    };
    assert_eq!(renewed.filters, subscribe.filters);
    second
        .send(Packet::SubAck(SubAck {
            packet_id: renewed.packet_id,
            reason_codes: vec![ReasonCode::GrantedQoS1],
            properties: Properties::default(),
        }))
        .await;
    let Packet::Publish(again) = second.recv().await else {
        panic!("expected the publish again");
    };
    assert_eq!(again.payload, "once");
    // A new message on a new stream, not a re-delivery: the old stream's exchange is gone.
    assert!(!again.dup);
    let packet_id = again.packet_id.expect("QoS 1");
    second
        .send(Packet::PubAck(PubAck::success(packet_id)))
        .await;
    let outcome = tokio::time::timeout(PATIENCE, publishing)
        .await
        .expect("the publish completes")
        .unwrap();
    assert_eq!(outcome.packet_id, Some(packet_id));

    // Deliveries on the new stream reach the stream's receiver.
    second
        .send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("s/1").unwrap(),
            packet_id: mquictt_protocol::PacketId::new(7),
            properties: Properties::default(),
            payload: "delivered".into(),
        }))
        .await;
    let message = tokio::time::timeout(PATIENCE, stream_messages.recv())
        .await
        .expect("a message in time")
        .expect("a message");
    assert_eq!(message.payload, "delivered");
    // Acknowledged on the stream it came on.
    match second.recv().await {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), 7),
        other => panic!("expected PUBACK on the new data stream, got {other:?}"),
    }
    assert!(matches!(client.status(), ConnectionStatus::Connected(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        quic.connection().close_reason(),
        None,
        "the connection stayed up"
    );
}
