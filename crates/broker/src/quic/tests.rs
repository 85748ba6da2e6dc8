//! The 0-RTT replay policy inside the connection driver, with a handshake the test completes
//! by hand: what the policy admits is acted on at once, the rest waits for the handshake and
//! is never acted on if the handshake fails.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mquictt_protocol::{
    Connect, Decoder, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubAck, Publish,
    QoS, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::early_data::{EarlyDataGate, EarlyDataPolicy};
use crate::broker::{Broker, PeerInfo};
use crate::connection::{self, QuicStreamHooks};
use crate::{AllowAll, BrokerConfig, MemoryStorage};

const QUIET: Duration = Duration::from_millis(300);

struct Peer {
    stream: DuplexStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Peer {
    fn new(stream: DuplexStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::with_version(ProtocolVersion::V5, 1 << 20),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut bytes = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut bytes).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The next packet, `None` if nothing comes within `limit`.
    async fn next(&mut self, limit: Duration) -> Option<Packet> {
        tokio::time::timeout(limit, async {
            loop {
                if let Some(packet) = self.decoder.decode(&mut self.buf).unwrap() {
                    return packet;
                }
                assert!(
                    self.stream.read_buf(&mut self.buf).await.unwrap() > 0,
                    "closed"
                );
            }
        })
        .await
        .ok()
    }

    async fn recv(&mut self) -> Packet {
        self.next(Duration::from_secs(5))
            .await
            .expect("a packet from the broker")
    }
}

fn connect(client_id: &'static str) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::from_static(client_id),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
}

fn publish(payload: &'static [u8], qos: QoS, id: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::new("early").unwrap(),
        packet_id: PacketId::new(id).filter(|_| qos != QoS::AtMostOnce),
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    })
}

fn broker() -> Broker {
    Broker::new(
        BrokerConfig::default(),
        Arc::new(MemoryStorage::new()),
        Arc::new(AllowAll),
    )
    .unwrap()
}

async fn subscriber(broker: &Broker) -> Peer {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let serving = broker.clone();
    tokio::spawn(async move { serving.serve_connection(theirs, PeerInfo::default()).await });
    let mut peer = Peer::new(ours);
    peer.send(connect("subscriber")).await;
    assert!(matches!(peer.recv().await, Packet::ConnAck(_)));
    peer.send(Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: vec![(
            TopicFilter::new("early").unwrap(),
            SubscriptionOptions {
                qos: QoS::AtMostOnce,
                ..SubscriptionOptions::default()
            },
        )],
        properties: Properties::default(),
    }))
    .await;
    assert!(matches!(peer.recv().await, Packet::SubAck(_)));
    peer
}

/// A QUIC-like connection whose handshake is completed (or failed) by the returned sender.
fn early_connection(
    broker: &Broker,
    policy: EarlyDataPolicy,
) -> (tokio::sync::watch::Sender<bool>, Peer) {
    let (complete, gate) = EarlyDataGate::manual(policy);
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let hooks = QuicStreamHooks {
        gate: Some(gate),
        control: None,
    };
    let shared = broker.shared.clone();
    tokio::spawn(connection::serve_stream(
        shared,
        Box::new(theirs),
        PeerInfo::default(),
        Some(hooks),
        None,
    ));
    (complete, Peer::new(ours))
}

#[tokio::test]
async fn qos_2_waits_for_the_handshake_and_qos_1_does_not() {
    let broker = broker();
    let mut watcher = subscriber(&broker).await;
    let (complete, mut client) = early_connection(&broker, EarlyDataPolicy::Idempotent);
    client.send(connect("early")).await;
    client.send(publish(b"one", QoS::AtLeastOnce, 1)).await;
    client.send(publish(b"two", QoS::ExactlyOnce, 2)).await;
    client.send(publish(b"three", QoS::AtMostOnce, 0)).await;

    assert!(matches!(client.recv().await, Packet::ConnAck(_)));
    assert!(matches!(client.recv().await, Packet::PubAck(_)));
    let Some(Packet::Publish(first)) = watcher.next(QUIET).await else {
        panic!("the QoS 1 message was not acted on early");
    };
    assert_eq!(&first.payload[..], b"one");
    // The QoS 2 message, and the QoS 0 one behind it on the stream, wait.
    assert_eq!(client.next(QUIET).await, None);
    assert_eq!(watcher.next(QUIET).await, None);

    complete.send_replace(true);
    assert!(matches!(client.recv().await, Packet::PubRec(_)));
    let Packet::Publish(second) = watcher.recv().await else {
        panic!("expected the QoS 2 message");
    };
    assert_eq!(&second.payload[..], b"two");
    let Packet::Publish(third) = watcher.recv().await else {
        panic!("expected the QoS 0 message");
    };
    assert_eq!(&third.payload[..], b"three");
    client
        .send(Packet::PubRel(PubAck::success(PacketId::new(2).unwrap())))
        .await;
    assert!(matches!(client.recv().await, Packet::PubComp(_)));
}

#[tokio::test]
async fn packets_held_for_a_failed_handshake_are_never_acted_on() {
    let broker = broker();
    let mut watcher = subscriber(&broker).await;
    let (complete, mut client) = early_connection(&broker, EarlyDataPolicy::ConnectOnly);
    client.send(connect("replayed")).await;
    client.send(publish(b"replayed", QoS::AtMostOnce, 0)).await;
    assert!(matches!(client.recv().await, Packet::ConnAck(_)));
    assert_eq!(watcher.next(QUIET).await, None);
    drop(complete);
    assert_eq!(watcher.next(QUIET).await, None);
}
