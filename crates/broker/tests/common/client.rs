//! A deliberately small MQTT test client built on the protocol crate's codec: it sends exactly
//! the packets a test gives it and returns exactly what the broker sends, so tests can check
//! conformance packet by packet, including packets a well-behaved client would never send.

use mquictt_protocol::PropertySet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mquictt_protocol::codec::{decode, MAX_PACKET_SIZE};
use mquictt_protocol::{
    ConnAck, Connect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubAck, Publish,
    QoS, Subscribe, SubscriptionOptions, TopicFilter, TopicName, Will,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for a packet before concluding none is coming.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct TestClient {
    pub stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
}

/// A CONNECT with the given version, client id and clean start, keep alive 60 s.
pub fn connect_packet(version: ProtocolVersion, client_id: &str, clean_start: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start,
        keep_alive: 60,
        client_id: MqttString::new(client_id).expect("test client id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A will message on `topic`.
pub fn will(topic: &str, payload: &'static [u8], delay: Option<u32>) -> Will {
    Will {
        topic: TopicName::new(topic).expect("test topic"),
        payload: Bytes::from_static(payload),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::from(PropertySet {
            will_delay_interval: delay,
            ..PropertySet::default()
        }),
    }
}

/// A PUBLISH without properties.
pub fn publish(topic: &str, payload: &'static [u8], qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::new(topic).expect("test topic"),
        packet_id: if qos == QoS::AtMostOnce {
            None
        } else {
            PacketId::new(id)
        },
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    }
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero test packet id")
}

impl TestClient {
    /// Opens a TCP connection without sending anything.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Connects with `connect` and returns the CONNACK.
    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut client = Self::open(addr, connect.protocol).await;
        client.send(&Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Some(Packet::ConnAck(ack)) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with a plain CONNECT and checks that it is accepted.
    pub async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        client_id: &str,
        clean: bool,
    ) -> (Self, ConnAck) {
        let (client, ack) =
            Self::connect_with(addr, connect_packet(version, client_id, clean)).await;
        assert_eq!(
            ack.reason_code,
            mquictt_protocol::ReasonCode::Success,
            "CONNACK {ack:?}"
        );
        (client, ack)
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .expect("test packet encodes");
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the connection; tests check that separately.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet, or `None` when the broker closed the connection or sent nothing
    /// within 5 s.
    pub async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(Duration::from_secs(5)).await
    }

    /// The next packet within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match decode(&mut self.buf, self.version, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(e) => panic!("broker sent a malformed packet: {e}"),
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Asserts that the broker sends nothing for a short while.
    pub async fn expect_nothing(&mut self) {
        if let Some(packet) = self.recv_within(QUIET).await {
            panic!("expected no packet, got {packet:?}");
        }
    }

    /// Reads until the broker closes the connection; returns the packets sent before.
    pub async fn until_closed(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(packet) = self.recv().await {
            packets.push(packet);
        }
        packets
    }

    /// Subscribes to one filter and returns the SUBACK reason code.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        id: u16,
    ) -> mquictt_protocol::ReasonCode {
        self.subscribe_with(filter, options, id, Properties::default())
            .await
    }

    pub async fn subscribe_with(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        id: u16,
        properties: Properties,
    ) -> mquictt_protocol::ReasonCode {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(id),
            filters: vec![(TopicFilter::new(filter).expect("test filter"), options)],
            properties,
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.packet_id, pid(id));
                ack.reason_codes.first().copied().expect("one reason code")
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes and completes the QoS flow as a well-behaved client.
    pub async fn publish(&mut self, publish: Publish) {
        let qos = publish.qos;
        let id = publish.packet_id;
        self.send(&Packet::Publish(publish)).await;
        match (qos, id) {
            (QoS::AtMostOnce, _) | (_, None) => {}
            (QoS::AtLeastOnce, Some(id)) => match self.recv().await {
                Some(Packet::PubAck(ack)) => assert_eq!(ack.packet_id, id),
                other => panic!("expected PUBACK, got {other:?}"),
            },
            (QoS::ExactlyOnce, Some(id)) => {
                match self.recv().await {
                    Some(Packet::PubRec(ack)) => assert_eq!(ack.packet_id, id),
                    other => panic!("expected PUBREC, got {other:?}"),
                }
                self.send(&Packet::PubRel(PubAck::success(id))).await;
                match self.recv().await {
                    Some(Packet::PubComp(ack)) => assert_eq!(ack.packet_id, id),
                    other => panic!("expected PUBCOMP, got {other:?}"),
                }
            }
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(publish)) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Acknowledges a received PUBLISH as a well-behaved client (PUBACK, or PUBREC then
    /// PUBCOMP after the broker's PUBREL).
    pub async fn ack(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else { return };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubAck::success(id))).await,
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubAck::success(id))).await;
                match self.recv().await {
                    Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, id),
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(&Packet::PubComp(PubAck::success(id))).await;
            }
        }
    }
}
