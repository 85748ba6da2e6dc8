//! The crate's error type: everything that can go wrong while configuring a transport or
//! connecting to a server, with messages that say which part (URL, certificate file, TLS,
//! WebSocket, QUIC) failed, or that this build lacks the transport. Variants that carry a
//! TLS, WebSocket or QUIC library's error exist only in builds with that transport. Owns no
//! logic beyond sorting errors into "fix the configuration" and "the network failed".

use std::io;

use thiserror::Error;

use crate::certs::CertError;
use crate::url::{TransportKind, UrlError};

/// Why configuring a transport or connecting failed.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The URL's transport was left out of this build (a Cargo feature is off).
    #[error("this build has no {kind} support; rebuild with --features {features}")]
    NotBuiltIn {
        /// The transport the URL asked for.
        kind: TransportKind,
        /// The Cargo features that bring it, comma-separated.
        features: &'static str,
    },
    /// A certificate or key could not be loaded or generated.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// An encrypted listener without a server certificate.
    #[error("a {0} listener needs a server certificate and key")]
    MissingServerCertificate(TransportKind),
    /// An encrypted connection without any CA to verify the server against.
    #[error("no trusted CA certificate configured: give a CA file or use the development CA")]
    NoTrustedCa,
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[cfg(any(feature = "tls", feature = "quic"))]
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// The CA certificates for client authentication are unusable.
    #[cfg(any(feature = "tls", feature = "quic"))]
    #[error("client certificate verification: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// QUIC needs a TLS 1.3 configuration with the AES-128-GCM-SHA256 suite.
    #[cfg(feature = "quic")]
    #[error("QUIC TLS configuration: {0}")]
    QuicTlsConfig(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The host cannot be used as a TLS server name.
    #[error("`{0}` is not a valid TLS server name")]
    InvalidServerName(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The host name resolved to no address.
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// Connecting (including the TLS/WebSocket/QUIC handshake) took longer than allowed.
    #[error("connecting to {0} timed out")]
    Timeout(String),
    /// A socket or TLS error (the TLS alert, such as a refused certificate, is in the message).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The WebSocket handshake failed (wrong path, no `mqtt` subprotocol, HTTP error).
    #[cfg(feature = "ws")]
    #[error("WebSocket handshake: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// quinn refused to start the QUIC connection.
    #[cfg(feature = "quic")]
    #[error("QUIC connect: {0}")]
    QuicConnect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed (ALPN mismatch and certificate errors included).
    #[cfg(feature = "quic")]
    #[error("QUIC: {0}")]
    QuicConnection(#[from] quinn::ConnectionError),
}

impl TransportError {
    /// The error for a URL whose transport this build lacks.
    pub(crate) fn not_built_in(kind: TransportKind) -> Self {
        TransportError::NotBuiltIn {
            kind,
            features: kind.cargo_features(),
        }
    }

    /// Whether the configuration (URL, certificates, TLS settings, the build's transports) is
    /// at fault, so that trying again unchanged cannot help; otherwise the network or the peer
    /// failed.
    pub fn is_configuration(&self) -> bool {
        match self {
            TransportError::Url(_)
            | TransportError::NotBuiltIn { .. }
            | TransportError::Cert(_)
            | TransportError::MissingServerCertificate(_)
            | TransportError::NoTrustedCa
            | TransportError::InvalidServerName(_) => true,
            #[cfg(any(feature = "tls", feature = "quic"))]
            TransportError::TlsConfig(_) | TransportError::ClientVerifier(_) => true,
            #[cfg(feature = "quic")]
            TransportError::QuicTlsConfig(_) => true,
            _ => false,
        }
    }
}

#[cfg(feature = "ws")]
impl From<tokio_tungstenite::tungstenite::Error> for TransportError {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        TransportError::WebSocket(Box::new(err))
    }
}

impl From<TransportError> for io::Error {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::Io(err) => err,
            TransportError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, err),
            TransportError::NotBuiltIn { .. } => io::Error::new(io::ErrorKind::Unsupported, err),
            err if err.is_configuration() => io::Error::new(io::ErrorKind::InvalidInput, err),
            other => io::Error::other(other),
        }
    }
}
