//! Interoperability with an independent MQTT-over-QUIC implementation: EMQ's `flowsdk` client
//! (its sans-IO `QuicMqttEngine`, which follows EMQX's single- and multi-stream model), driven
//! over a real UDP socket against the broker. Single-stream: everything on the control stream.
//! Multi-stream: a subscription and a publish on data streams of their own, each answered and
//! delivered on its own stream.

mod quic_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowsdk::mqtt_client::commands::{PublishCommand, SubscribeCommand};
use flowsdk::mqtt_client::engine::{MqttEvent, QuicMqttEngine};
use flowsdk::mqtt_client::opts::MqttClientOptions;
use mquictt_protocol::{Packet, ProtocolVersion, QoS};
use mquictt_transport::rustls;
use mquictt_transport::TransportKind;
use quic_support::{connect, publish, PacketStream, QuicBroker, PATIENCE};
use tokio::net::UdpSocket;

/// One flowsdk client and the UDP socket it runs on.
struct FlowClient {
    engine: QuicMqttEngine,
    socket: UdpSocket,
    /// Every event seen so far.
    events: Vec<MqttEvent>,
}

impl FlowClient {
    /// Connects `client_id` to the broker's QUIC listener, trusting its development CA.
    async fn connect(broker: &QuicBroker, client_id: &str) -> Self {
        let options = MqttClientOptions::builder()
            .client_id(client_id)
            .peer(format!(
                "localhost:{}",
                broker.url(TransportKind::Quic).port
            ))
            .keep_alive(30)
            .build();
        let mut engine = QuicMqttEngine::new(options).expect("flowsdk engine");
        let mut roots = rustls::RootCertStore::empty();
        for ca in broker.certs.ca_certificates().expect("CA") {
            roots.add(ca).expect("CA certificate");
        }
        let crypto = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server: SocketAddr = format!("127.0.0.1:{}", broker.url(TransportKind::Quic).port)
            .parse()
            .expect("address");
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("UDP socket");
        engine
            .connect(server, "localhost", crypto, Instant::now())
            .expect("start connecting");
        let mut client = FlowClient {
            engine,
            socket,
            events: Vec::new(),
        };
        client
            .run_until(
                "CONNACK",
                |e| matches!(e, MqttEvent::Connected(r) if r.is_success()),
            )
            .await;
        client
    }

    /// Moves datagrams and timers until an event satisfies `done` (one seen before counts).
    async fn run_until(&mut self, what: &str, mut done: impl FnMut(&MqttEvent) -> bool) {
        if self.events.iter().any(&mut done) {
            return;
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut buf = vec![0u8; 65536];
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "flowsdk: no {what}: {:?}",
                self.events
            );
            for (to, datagram) in self.engine.take_outgoing_datagrams() {
                self.socket
                    .send_to(&datagram, to)
                    .await
                    .expect("send datagram");
            }
            let received =
                tokio::time::timeout(Duration::from_millis(5), self.socket.recv_from(&mut buf))
                    .await;
            if let Ok(Ok((len, from))) = received {
                let datagram = buf.get(..len).expect("within the buffer").to_vec();
                self.engine.handle_datagram(datagram, from, Instant::now());
            }
            let mut finished = false;
            for event in self.engine.handle_tick(Instant::now()) {
                finished |= done(&event);
                self.events.push(event);
            }
            if finished {
                return;
            }
        }
    }
}

async fn tcp_client(
    broker: &QuicBroker,
    client_id: &str,
) -> PacketStream<mquictt_transport::BoxStream> {
    let mut client = PacketStream::new(
        broker.open(TransportKind::Tcp).await.stream,
        ProtocolVersion::V5,
    );
    client
        .connect(connect(ProtocolVersion::V5, client_id, true, 0))
        .await;
    client
}

fn subscription(filter: &str) -> SubscribeCommand {
    SubscribeCommand::builder()
        .add_topic(filter, 1)
        .build()
        .expect("subscribe command")
}

fn message(topic: &str, payload: &str) -> PublishCommand {
    PublishCommand::builder()
        .topic(topic)
        .payload(payload.as_bytes().to_vec())
        .qos(1)
        .build()
        .expect("publish command")
}

#[tokio::test]
async fn flowsdk_single_stream_subscribes_and_receives_on_the_control_stream() {
    let broker = QuicBroker::start().await;
    let mut flow = FlowClient::connect(&broker, "flow-single").await;
    flow.engine
        .subscribe_on_control(subscription("flow/single"))
        .expect("subscribe on the control stream");
    flow.run_until(
        "SUBACK",
        |e| matches!(e, MqttEvent::Subscribed(r) if r.is_success()),
    )
    .await;

    let mut publisher = tcp_client(&broker, "tcp-publisher").await;
    publisher
        .send(&publish("flow/single", "over tcp", QoS::AtLeastOnce, 1))
        .await;
    flow.run_until("the message", |e| {
        matches!(e, MqttEvent::MessageReceived(m) if m.topic_name == "flow/single" && m.payload == b"over tcp")
    })
    .await;
    assert!(
        !flow.events.iter().any(|e| matches!(
            e,
            MqttEvent::PublishReceived {
                stream: Some(_),
                ..
            }
        )),
        "delivered on a data stream: {:?}",
        flow.events
    );
}

#[tokio::test]
async fn flowsdk_multi_stream_gets_answers_and_messages_on_its_data_streams() {
    let broker = QuicBroker::start().await;
    let mut flow = FlowClient::connect(&broker, "flow-multi").await;
    let sub_stream = flow.engine.open_data_stream().expect("sub stream");
    let pub_stream = flow.engine.open_data_stream().expect("pub stream");
    flow.engine
        .subscribe_on(sub_stream, subscription("flow/multi/#"))
        .expect("subscribe on a data stream");
    flow.run_until(
        "SUBACK",
        |e| matches!(e, MqttEvent::Subscribed(r) if r.is_success()),
    )
    .await;

    let mut watcher = tcp_client(&broker, "tcp-watcher").await;
    watcher.subscribe(1, "flow/multi/#", QoS::AtLeastOnce).await;

    // A QoS 1 publish on the pub stream: PUBACK back on that stream, the message on the sub
    // stream (flowsdk's own subscription) and to the TCP watcher.
    flow.engine
        .publish_on(pub_stream, message("flow/multi/a", "from flowsdk"))
        .expect("publish on a data stream");
    flow.run_until(
        "PUBACK",
        |e| matches!(e, MqttEvent::Published(r) if r.is_success()),
    )
    .await;
    flow.run_until(
        "its own message",
        |e| matches!(e, MqttEvent::MessageReceived(m) if m.payload == b"from flowsdk"),
    )
    .await;
    let seen = watcher.expect_publish().await;
    assert_eq!(&seen.payload[..], b"from flowsdk");

    // A message from elsewhere reaches the sub stream, and only it.
    watcher
        .send(&publish("flow/multi/b", "from tcp", QoS::AtLeastOnce, 1))
        .await;
    assert!(matches!(watcher.recv().await, Packet::PubAck(_)));
    flow.run_until(
        "the TCP message",
        |e| matches!(e, MqttEvent::MessageReceived(m) if m.payload == b"from tcp"),
    )
    .await;
    let streams: Vec<Option<u64>> = flow
        .events
        .iter()
        .filter_map(|e| match e {
            MqttEvent::PublishReceived { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect();
    assert!(!streams.is_empty());
    assert!(
        streams.iter().all(|s| *s == Some(sub_stream)),
        "messages arrived on {streams:?}, expected only on stream {sub_stream}"
    );
}
