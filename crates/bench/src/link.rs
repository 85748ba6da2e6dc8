//! One bench client's connection: the transport (any scheme, or plain TCP from a chosen local
//! address), the CONNECT/CONNACK and SUBSCRIBE/SUBACK exchanges, and the buffers the client
//! loops read into and write from. The halves and buffers are separate fields so a loop can
//! wait on reading and writing at once; packets are decoded by the protocol crate's decoder.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mquictt_protocol::codec::MAX_PACKET_SIZE;
use mquictt_protocol::{
    Connect, Decoder, MqttString, Packet, PacketId, Properties, ReasonCode, Subscribe,
    SubscriptionOptions, TopicFilter,
};
use mquictt_protocol::{ProtocolVersion, QoS};
use mquictt_transport::url::Host;
use mquictt_transport::{BoxStream, QuicClientConnection, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::BenchError;
use crate::spec::Target;

/// Read buffer growth step of busy clients: one syscall takes up to this much.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// An MQTT connection of the bench.
pub(crate) struct Link {
    pub(crate) reader: ReadHalf<BoxStream>,
    pub(crate) writer: WriteHalf<BoxStream>,
    pub(crate) inbuf: BytesMut,
    pub(crate) outbuf: BytesMut,
    pub(crate) version: ProtocolVersion,
    /// The broker's Receive Maximum (MQTT 5); 65,535 when it announces none.
    pub(crate) server_receive_maximum: u16,
    decoder: Decoder,
    /// Keeps a QUIC connection's endpoint alive as long as the stream.
    _quic: Option<QuicClientConnection>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Opens the transport and completes CONNECT/CONNACK within the target's connect timeout.
    /// Returns the link and the time from the first socket call to the CONNACK.
    pub(crate) async fn connect(
        target: &Target,
        client_index: usize,
        client_id: &str,
    ) -> Result<(Self, Duration), BenchError> {
        let started = Instant::now();
        let link = tokio::time::timeout(
            target.connect_timeout,
            Self::connect_inner(target, client_index, client_id),
        )
        .await
        .map_err(|_| BenchError::Timeout("CONNACK"))??;
        Ok((link, started.elapsed()))
    }

    async fn connect_inner(
        target: &Target,
        client_index: usize,
        client_id: &str,
    ) -> Result<Self, BenchError> {
        let (stream, quic) = match target
            .source_addrs
            .get(client_index % target.source_addrs.len().max(1))
        {
            Some(source) if target.url.kind == TransportKind::Tcp => (
                tcp_from(*source, &target.url.host, target.url.port).await?,
                None,
            ),
            _ => {
                let connected = target.connector.connect(&target.url).await?;
                (connected.stream, connected.quic)
            }
        };
        let (reader, writer) = tokio::io::split(stream);
        let mut link = Link {
            reader,
            writer,
            inbuf: BytesMut::with_capacity(1024),
            outbuf: BytesMut::with_capacity(1024),
            version: target.version,
            server_receive_maximum: u16::MAX,
            decoder: Decoder::with_version(target.version, MAX_PACKET_SIZE),
            _quic: quic,
        };
        let keep_alive = u16::try_from(target.keep_alive.as_secs()).unwrap_or(u16::MAX);
        let connect = Connect {
            protocol: target.version,
            clean_start: true,
            keep_alive,
            client_id: mqtt_string(client_id)?,
            will: None,
            username: target.username.as_deref().map(mqtt_string).transpose()?,
            password: target
                .password
                .as_ref()
                .map(|p| Bytes::copy_from_slice(p.as_bytes())),
            properties: Properties::default(),
        };
        link.send(&Packet::Connect(Box::new(connect))).await?;
        match link.next_packet().await? {
            Packet::ConnAck(connack) if connack.reason_code == ReasonCode::Success => {
                if let Some(maximum) = connack.properties.receive_maximum {
                    link.server_receive_maximum = maximum;
                }
                Ok(link)
            }
            Packet::ConnAck(connack) => Err(BenchError::Refused(connack.reason_code)),
            _ => Err(BenchError::Unexpected("packet before CONNACK")),
        }
    }

    /// Subscribes to one filter and waits for its SUBACK.
    pub(crate) async fn subscribe(
        &mut self,
        filter: TopicFilter,
        qos: QoS,
    ) -> Result<(), BenchError> {
        let packet_id = PacketId::new(1).ok_or(BenchError::Unexpected("packet id 0"))?;
        let subscribe = Subscribe {
            packet_id,
            filters: vec![(filter.clone(), SubscriptionOptions::with_qos(qos))],
            properties: Properties::default(),
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        loop {
            match self.next_packet().await? {
                Packet::SubAck(suback) if suback.packet_id == packet_id => {
                    let reason = suback
                        .reason_codes
                        .first()
                        .copied()
                        .unwrap_or(ReasonCode::UnspecifiedError);
                    // SUBACK carries the granted QoS 0, 1 or 2 on success; anything from 0x80 up
                    // is a failure (3.9.3).
                    return if reason.as_u8() < 0x80 {
                        Ok(())
                    } else {
                        Err(BenchError::SubscribeRefused {
                            topic: filter.as_str().to_owned(),
                            reason,
                        })
                    };
                }
                Packet::PingResp => {}
                _ => return Err(BenchError::Unexpected("packet before SUBACK")),
            }
        }
    }

    /// Appends `packet` to the output buffer.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<(), BenchError> {
        packet.encode(self.version, &mut self.outbuf)?;
        Ok(())
    }

    /// Queues `packet` and writes the whole output buffer.
    pub(crate) async fn send(&mut self, packet: &Packet) -> Result<(), BenchError> {
        self.queue(packet)?;
        self.flush().await
    }

    /// Writes the whole output buffer.
    pub(crate) async fn flush(&mut self) -> Result<(), BenchError> {
        self.writer.write_all_buf(&mut self.outbuf).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// The next complete packet already in the input buffer.
    pub(crate) fn decode(&mut self) -> Result<Option<Packet>, BenchError> {
        Ok(self.decoder.decode(&mut self.inbuf)?)
    }

    /// Reads until one packet is complete.
    pub(crate) async fn next_packet(&mut self) -> Result<Packet, BenchError> {
        loop {
            if let Some(packet) = self.decode()? {
                return Ok(packet);
            }
            // Only handshake packets are read here: a small buffer keeps many connections cheap.
            read_more(&mut self.reader, &mut self.inbuf, 1024).await?;
        }
    }

    /// The plain TCP socket under this link and what goes with it; the link itself when it
    /// is not plain TCP.
    pub(crate) fn into_tcp(self) -> Result<TcpParts, Box<Self>> {
        let Link {
            reader,
            writer,
            inbuf,
            outbuf,
            version,
            server_receive_maximum,
            decoder,
            _quic,
        } = self;
        match reader.unsplit(writer).into_tcp() {
            Ok(stream) => Ok(TcpParts {
                stream,
                decoder,
                inbuf,
                version,
            }),
            Err(stream) => {
                let (reader, writer) = tokio::io::split(stream);
                Err(Box::new(Link {
                    reader,
                    writer,
                    inbuf,
                    outbuf,
                    version,
                    server_receive_maximum,
                    decoder,
                    _quic,
                }))
            }
        }
    }

    /// A link again, from [`Self::into_tcp`]'s parts.
    pub(crate) fn from_tcp(parts: TcpParts) -> Self {
        let TcpParts {
            stream,
            decoder,
            inbuf,
            version,
        } = parts;
        let (reader, writer) = tokio::io::split(Box::new(stream) as BoxStream);
        Link {
            reader,
            writer,
            inbuf,
            outbuf: BytesMut::new(),
            version,
            server_receive_maximum: u16::MAX,
            decoder,
            _quic: None,
        }
    }

    /// Sends DISCONNECT (best effort) and closes the stream.
    pub(crate) async fn disconnect(mut self) {
        // Reason 0x00, Normal disconnection: the will is not published (3.14.2.1).
        let disconnect = Packet::Disconnect(mquictt_protocol::Disconnect::new(ReasonCode::Success));
        if self.send(&disconnect).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.writer.shutdown()).await;
        }
    }
}

/// A plain TCP link taken apart ([`Link::into_tcp`]): an idle holder's socket, which may wait
/// without a descriptor, and what it must keep to go on reading.
pub(crate) struct TcpParts {
    pub(crate) stream: TcpStream,
    pub(crate) decoder: Decoder,
    /// Read, not yet decoded.
    pub(crate) inbuf: BytesMut,
    pub(crate) version: ProtocolVersion,
}

/// One read of up to about `chunk` bytes into `inbuf`; the end of the stream is
/// [`BenchError::Closed`].
pub(crate) async fn read_more(
    reader: &mut ReadHalf<BoxStream>,
    inbuf: &mut BytesMut,
    chunk: usize,
) -> Result<(), BenchError> {
    if inbuf.capacity() - inbuf.len() < chunk / 4 + 1 {
        inbuf.reserve(chunk);
    }
    match reader.read_buf(inbuf).await? {
        0 => Err(BenchError::Closed),
        _ => Ok(()),
    }
}

/// Writes some of `outbuf` and flushes once it is empty. Cancel-safe: bytes leave `outbuf`
/// only when they were written.
pub(crate) async fn write_some(
    writer: &mut WriteHalf<BoxStream>,
    outbuf: &mut BytesMut,
) -> Result<(), BenchError> {
    writer.write_buf(outbuf).await?;
    if outbuf.is_empty() {
        writer.flush().await?;
    }
    Ok(())
}

fn mqtt_string(text: &str) -> Result<MqttString, BenchError> {
    MqttString::new(text).map_err(|e| BenchError::InvalidSpec(format!("`{text}`: {e}")))
}

/// Plain TCP from a chosen local address. `SO_REUSEADDR` lets the bind reuse ports that still
/// sit in TIME_WAIT from an earlier run. On Linux the port is chosen only at `connect`
/// (`IP_BIND_ADDRESS_NO_PORT`): a bind to port 0 otherwise reserves a port for every
/// destination at once, searching the range for one, which with tens of thousands of sockets
/// in TIME_WAIT took 0.6 ms per bind and made connections time out; chosen at `connect`, a
/// port is shared by connections to different brokers.
async fn tcp_from(source: IpAddr, host: &Host, port: u16) -> Result<BoxStream, BenchError> {
    let remote = match host {
        Host::Ip(ip) => SocketAddr::new(*ip, port),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await?
            .find(|addr| addr.is_ipv4() == source.is_ipv4())
            .ok_or(BenchError::InvalidSpec(format!(
                "`{name}` has no address of the source addresses' family"
            )))?,
    };
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(target_os = "linux")]
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::IpBindAddressNoPort,
        &true,
    )
    .map_err(std::io::Error::from)?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream: TcpStream = socket.connect(remote).await?;
    // Nagle off, as every MQTT connection of the transport crate: a small PUBACK must not wait
    // for delayed ACKs.
    stream.set_nodelay(true)?;
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_from_a_chosen_source_address_comes_from_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let source: IpAddr = "127.0.0.7".parse().unwrap();
        let host = Host::Ip("127.0.0.1".parse().unwrap());
        let (stream, accepted) = tokio::join!(tcp_from(source, &host, port), listener.accept());
        let _stream = stream.unwrap();
        let (_, peer) = accepted.unwrap();
        assert_eq!(peer.ip(), source);
        assert_ne!(peer.port(), 0);
    }
}
