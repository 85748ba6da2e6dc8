//! The one byte-stream type every transport hands out ([`BoxStream`]) and what is known about
//! the peer at the other end ([`PeerInfo`]). MQTT framing runs on top of it unchanged: this
//! module knows nothing about packets.

use std::any::Any;
use std::net::SocketAddr;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::url::TransportKind;

/// A bidirectional, ordered byte stream: TCP, TLS, a WebSocket carrying binary messages, or a
/// QUIC bidirectional stream. Implemented for every type with the four bounds.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + Any {
    /// The plain TCP socket, when this stream is one (`mqtt://`), so that a server can treat
    /// it as the socket it is (for example hold it idle without a task); any other stream is
    /// handed back unchanged.
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, BoxStream>;

    /// The stream as the type it is, so that a reader can take a faster way for a transport it
    /// knows (a QUIC stream's received chunks, say).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_tcp(self: Box<Self>) -> Result<TcpStream, BoxStream> {
        if !(&*self as &dyn Any).is::<TcpStream>() {
            return Err(self);
        }
        let any: Box<dyn Any> = self;
        // The type was checked just above, so the downcast cannot fail.
        any.downcast::<TcpStream>()
            .map(|tcp| *tcp)
            .map_err(|_| unreachable!("checked to be a TcpStream"))
    }
}

/// A byte stream of any transport.
pub type BoxStream = Box<dyn ByteStream>;

impl std::fmt::Debug for dyn ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteStream")
    }
}

/// The negotiated TLS protocol version of an encrypted transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446); QUIC always uses it.
    Tls13,
}

#[cfg(feature = "tls")]
impl TlsVersion {
    pub(crate) fn from_rustls(version: Option<rustls::ProtocolVersion>) -> Option<Self> {
        match version? {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

/// What the transport knows about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address (for QUIC: at the time of the handshake; it may migrate later).
    pub remote: SocketAddr,
    /// Our address of the connection (for a QUIC server: the endpoint's bound address).
    pub local: SocketAddr,
    /// The transport carrying the stream.
    pub transport: TransportKind,
    /// On a server: the client's end-entity certificate (DER), when it presented one that the
    /// verifier accepted (TLS, WSS, QUIC with client certificates enabled). Always `None` on the
    /// client side. On a QUIC connection handed out before its handshake completed (0-RTT),
    /// ask `QuicConnection::client_certificate` once the handshake is complete.
    pub client_cert_der: Option<CertificateDer<'static>>,
    /// The TLS version negotiated, `None` on TCP and WS.
    pub tls_version: Option<TlsVersion>,
}
