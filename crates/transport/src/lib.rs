//! One byte-stream abstraction over TCP, TLS, WebSocket, WebSocket over TLS and QUIC, for
//! MQTT: a server binds a [`Listener`] to a [`ListenUrl`] and gets [`Accepted`] connections, a
//! client uses a [`Connector`] (or [`connect`]) on a [`TransportUrl`]; both sides get a
//! [`BoxStream`] that MQTT framing runs on unchanged, plus [`PeerInfo`]. QUIC follows EMQX
//! (ALPN `mqtt`, the client opens bidirectional streams) and keeps the `quinn::Connection`
//! reachable for multi-stream mode, 0-RTT and migration. [`certs`] loads PEM files and makes
//! the development CA and server certificate. This crate knows nothing about MQTT packets.
//!
//! TCP is always built in; TLS (`tls`), WebSocket (`ws`, and `wss://` with `tls` too), QUIC
//! (`quic`) and certificate generation (`cert-gen`) are Cargo features, all on by default. A
//! URL whose transport this build lacks parses, and connecting or binding it fails with
//! [`TransportError::NotBuiltIn`], which names the feature to enable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mquictt_transport::{ClientTlsSettings, Connector, DevCertificates, Listener, ListenUrl,
//!     ServerTlsSettings, TransportUrl};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let dev = DevCertificates::load_or_create("certs".as_ref())?;
//! let mut listener = Listener::bind(
//!     &ListenUrl::parse("quic://127.0.0.1:0")?,
//!     &ServerTlsSettings::from_dev_certificates(&dev)?,
//! ).await?;
//! let url = TransportUrl::parse(&format!("quic://localhost:{}", listener.local_addr().port()))?;
//! let connector = Connector::new(&ClientTlsSettings::trusting_ca_file(&dev.ca_cert)?)?;
//! let mut client = connector.connect(&url).await?;
//! client.stream.write_all(b"\x10\x00").await?;
//! let mut server = listener.accept().await?;
//! let mut first = [0u8; 2];
//! server.stream.read_exact(&mut first).await?;
//! # Ok(()) }
//! ```

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod certs;
mod connector;
mod error;
mod listener;
pub mod quic;
#[cfg(feature = "quic")]
mod quic_routing;
#[cfg(feature = "quic")]
mod quic_socket;
#[cfg(feature = "quic")]
mod quic_stream;
#[cfg(feature = "quic")]
mod quic_threads;
mod stream;
mod tcp;
mod tls;
pub mod url;
#[cfg(feature = "ws")]
mod ws;

pub use certs::{CertError, TlsIdentity};
#[cfg(feature = "cert-gen")]
pub use certs::{CertificateAuthority, DevCertificates, IssuedCertificate};
pub use connector::{connect, ConnectOptions, Connected, Connector};
pub use error::TransportError;
pub use listener::{Accepted, Listener, ListenerOptions};
#[cfg(feature = "quic")]
pub use quic::{QuicClientConnection, QuicConnection, QuicStream};
pub use quic::{QuicClientOptions, QuicServerOptions, DEFAULT_MAX_BIDI_STREAMS};
pub use stream::{BoxStream, ByteStream, PeerInfo, TlsVersion};
pub use tls::{ClientAuth, ClientTlsSettings, ServerTlsSettings, TlsVersions, MQTT_ALPN};
pub use url::{Host, ListenUrl, TransportKind, TransportUrl, UrlError, DEFAULT_WS_PATH};
#[cfg(feature = "ws")]
pub use ws::{WsByteStream, MQTT_SUBPROTOCOL};

/// The QUIC implementation, re-exported so users name the same version.
#[cfg(feature = "quic")]
pub use quinn;
/// The TLS implementation, re-exported so users name the same version.
#[cfg(any(feature = "tls", feature = "quic"))]
pub use rustls;
/// The certificate and key types, re-exported so users name the same version in every build.
pub use rustls_pki_types as pki_types;
