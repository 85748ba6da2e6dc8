//! A raw MQTT 5 conversation on one byte stream, packet by packet, with the protocol crate's
//! codec: what the connection-cost experiment needs to time each step of a connection on its
//! own, and what the multi-stream clients speak on each QUIC stream. No session state, no
//! retries: the caller decides every packet.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::{
    Connect, Decoder, Disconnect, MqttString, Packet, PacketId, Properties, ProtocolVersion,
    Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Why a raw conversation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("codec: {0}")]
    Protocol(#[from] mquictt_protocol::ProtocolError),
    #[error("the broker closed the stream")]
    Closed,
    #[error("expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: String },
    #[error("{0}")]
    Invalid(String),
}

/// One MQTT 5 byte stream with its receive buffer.
pub(crate) struct MqttLine<S> {
    stream: S,
    decoder: Decoder,
    buffer: BytesMut,
}

impl<S> std::fmt::Debug for MqttLine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLine")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MqttLine<S> {
    pub(crate) fn new(stream: S) -> Self {
        MqttLine {
            stream,
            decoder: Decoder::with_version(ProtocolVersion::V5, MAX_PACKET_SIZE),
            buffer: BytesMut::with_capacity(4096),
        }
    }

    /// Writes one packet and flushes it.
    pub(crate) async fn send(&mut self, packet: &Packet) -> Result<(), ProbeError> {
        write_packet(&mut self.stream, packet).await
    }

    /// Reads the next packet.
    pub(crate) async fn recv(&mut self) -> Result<Packet, ProbeError> {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.buffer)? {
                return Ok(packet);
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(ProbeError::Closed);
            }
        }
    }

    /// Reads packets until one that `pick` accepts; PINGRESPs and other chatter are skipped.
    pub(crate) async fn recv_matching<T>(
        &mut self,
        expected: &'static str,
        mut pick: impl FnMut(Packet) -> Option<T>,
    ) -> Result<T, ProbeError> {
        loop {
            let packet = self.recv().await?;
            if let Packet::Disconnect(d) = &packet {
                return Err(ProbeError::Unexpected {
                    expected,
                    got: format!("DISCONNECT {:?}", d.reason_code),
                });
            }
            if let Some(value) = pick(packet) {
                return Ok(value);
            }
        }
    }

    /// Sends CONNECT (MQTT 5, clean start, the given keep alive) and waits for a successful
    /// CONNACK; returns the broker's Receive Maximum.
    pub(crate) async fn connect(
        &mut self,
        client_id: &str,
        keep_alive: Duration,
    ) -> Result<u16, ProbeError> {
        self.send(&connect_packet(client_id, keep_alive)?).await?;
        self.expect_connack().await
    }

    /// Waits for a successful CONNACK; returns the broker's Receive Maximum, the number of
    /// QoS 1 and 2 publishes it accepts unacknowledged (65,535 when absent) [MQTT-3.3.4-7].
    pub(crate) async fn expect_connack(&mut self) -> Result<u16, ProbeError> {
        let (code, receive_maximum) = self
            .recv_matching("CONNACK", |p| match p {
                Packet::ConnAck(ack) => Some((ack.reason_code, ack.properties.receive_maximum)),
                _ => None,
            })
            .await?;
        if code.is_error() {
            return Err(ProbeError::Invalid(format!("CONNACK refused: {code:?}")));
        }
        Ok(receive_maximum.unwrap_or(u16::MAX))
    }

    /// Subscribes to `filter` with packet id `id` and waits for a granting SUBACK.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        id: u16,
    ) -> Result<(), ProbeError> {
        let packet_id = packet_id(id)?;
        let filter =
            TopicFilter::new(filter).map_err(|e| ProbeError::Invalid(format!("{filter}: {e}")))?;
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            filters: vec![(filter, SubscriptionOptions::with_qos(qos))],
            properties: Properties::default(),
        }))
        .await?;
        let codes = self
            .recv_matching("SUBACK", |p| match p {
                Packet::SubAck(ack) if ack.packet_id == packet_id => Some(ack.reason_codes),
                _ => None,
            })
            .await?;
        if codes.iter().any(|c| c.is_error()) {
            return Err(ProbeError::Invalid(format!("SUBACK refused: {codes:?}")));
        }
        Ok(())
    }

    /// Sends a QoS 0 PUBLISH.
    pub(crate) async fn publish_qos0(
        &mut self,
        topic: &str,
        payload: Bytes,
    ) -> Result<(), ProbeError> {
        self.send(&publish_packet(topic, payload, QoS::AtMostOnce, None)?)
            .await
    }

    /// Sends DISCONNECT (normal disconnection) and shuts our sending side down.
    pub(crate) async fn disconnect(&mut self) -> Result<(), ProbeError> {
        self.send(&Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )))
        .await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Splits the line into a reader (keeping what is buffered) and the write half.
    pub(crate) fn into_split(self) -> (PacketReader<ReadHalf<S>>, WriteHalf<S>) {
        let (read, write) = tokio::io::split(self.stream);
        (
            PacketReader {
                reader: read,
                decoder: self.decoder,
                buffer: self.buffer,
            },
            write,
        )
    }
}

/// The reading half of a split [`MqttLine`].
pub(crate) struct PacketReader<R> {
    reader: R,
    decoder: Decoder,
    buffer: BytesMut,
}

impl<R> std::fmt::Debug for PacketReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketReader")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Reads the next packet.
    pub(crate) async fn recv(&mut self) -> Result<Packet, ProbeError> {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.buffer)? {
                return Ok(packet);
            }
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return Err(ProbeError::Closed);
            }
        }
    }
}

/// Writes one packet to `writer` and flushes it.
pub(crate) async fn write_packet<W: AsyncWrite + Unpin>(
    writer: &mut W,
    packet: &Packet,
) -> Result<(), ProbeError> {
    let mut out = BytesMut::with_capacity(packet.encoded_len(ProtocolVersion::V5));
    packet.encode(ProtocolVersion::V5, &mut out)?;
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(())
}

/// A clean-start MQTT 5 CONNECT.
pub(crate) fn connect_packet(client_id: &str, keep_alive: Duration) -> Result<Packet, ProbeError> {
    let client_id =
        MqttString::new(client_id).map_err(|e| ProbeError::Invalid(format!("client id: {e}")))?;
    Ok(Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX),
        client_id,
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })))
}

/// A PUBLISH; `id` is required for QoS 1 and 2.
pub(crate) fn publish_packet(
    topic: &str,
    payload: Bytes,
    qos: QoS,
    id: Option<u16>,
) -> Result<Packet, ProbeError> {
    let topic =
        TopicName::new(topic).map_err(|e| ProbeError::Invalid(format!("topic {topic}: {e}")))?;
    let packet_id = match (qos, id) {
        (QoS::AtMostOnce, _) => None,
        (_, Some(id)) => Some(packet_id(id)?),
        (_, None) => return Err(ProbeError::Invalid("QoS 1/2 needs a packet id".to_owned())),
    };
    Ok(Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id,
        properties: Properties::default(),
        payload,
    }))
}

pub(crate) fn packet_id(id: u16) -> Result<PacketId, ProbeError> {
    PacketId::new(id).ok_or_else(|| ProbeError::Invalid("packet id 0".to_owned()))
}
