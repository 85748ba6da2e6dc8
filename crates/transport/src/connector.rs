//! The client side: [`Connector`] opens a byte stream to a [`TransportUrl`] over any
//! transport, trusting the configured CAs and presenting an optional client certificate.
//! A connector keeps its TLS configuration, and with it the session tickets that QUIC 0-RTT
//! resumption needs, across connections; [`connect`] is the one-shot form.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsConnector;

use crate::error::TransportError;
use crate::quic::{self, QuicClientConnection, QuicClientOptions};
use crate::stream::{BoxStream, PeerInfo};
use crate::tls::{session_facts, ClientTlsSettings};
use crate::url::{Host, TransportKind, TransportUrl};
use crate::{tcp, ws};

/// Client-side limits and QUIC settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Give up when resolving, connecting and every handshake together take longer. 10 s by
    /// default, as for the server's handshake timeout.
    pub timeout: Duration,
    /// QUIC transport settings.
    pub quic: QuicClientOptions,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            quic: QuicClientOptions::default(),
        }
    }
}

/// A connection ready for MQTT.
#[derive(Debug)]
pub struct Connected {
    /// The byte stream: for QUIC, the first bidirectional stream we opened.
    pub stream: BoxStream,
    /// What is known about the connection.
    pub peer: PeerInfo,
    /// For QUIC, the connection: more streams, 0-RTT outcome, migration.
    pub quic: Option<QuicClientConnection>,
}

/// Opens connections with one TLS configuration; re-use it so QUIC can resume sessions.
#[derive(Clone)]
pub struct Connector {
    tls: ClientTlsSettings,
    /// `None` when no CA is trusted: plain transports still work, encrypted ones fail with
    /// [`TransportError::NoTrustedCa`].
    tcp_tls: Option<TlsConnector>,
    quic: Option<quinn::ClientConfig>,
    options: ConnectOptions,
}

impl Connector {
    /// A connector with default options.
    pub fn new(tls: &ClientTlsSettings) -> Result<Self, TransportError> {
        Self::with_options(tls, ConnectOptions::default())
    }

    /// A connector with the given options.
    pub fn with_options(
        tls: &ClientTlsSettings,
        options: ConnectOptions,
    ) -> Result<Self, TransportError> {
        let (tcp_tls, quic) = if tls.trusted_cas.is_empty() {
            (None, None)
        } else {
            let tcp_tls = TlsConnector::from(Arc::new(tls.rustls_config(false)?));
            let quic = quic::client_config(tls.rustls_config(true)?, &options.quic)?;
            (Some(tcp_tls), Some(quic))
        };
        Ok(Connector {
            tls: tls.clone(),
            tcp_tls,
            quic,
            options,
        })
    }

    /// Connects to `url` and completes every handshake of its transport.
    pub async fn connect(&self, url: &TransportUrl) -> Result<Connected, TransportError> {
        tokio::time::timeout(self.options.timeout, self.connect_inner(url))
            .await
            .map_err(|_| TransportError::Timeout(url.to_string()))?
    }

    async fn connect_inner(&self, url: &TransportUrl) -> Result<Connected, TransportError> {
        let addrs = resolve(&url.host, url.port).await?;
        if url.kind == TransportKind::Quic {
            let config = self.quic.as_ref().ok_or(TransportError::NoTrustedCa)?;
            let server_name = self.tls.server_name.clone().unwrap_or(url.server_name());
            return quic::connect(&addrs, config.clone(), &server_name, &self.options.quic).await;
        }
        let socket = tcp::connect(&addrs).await?;
        let mut peer = PeerInfo {
            remote: socket.peer_addr()?,
            local: socket.local_addr()?,
            transport: url.kind,
            client_cert_der: None,
            tls_version: None,
        };
        let ws_uri = format!("ws://{}:{}{}", url.host, url.port, url.path);
        let stream: BoxStream = match url.kind {
            TransportKind::Tcp => Box::new(socket),
            TransportKind::Ws => Box::new(ws::connect(socket, &ws_uri).await?),
            // TLS and WSS (QUIC returned above).
            _ => {
                let connector = self.tcp_tls.as_ref().ok_or(TransportError::NoTrustedCa)?;
                let server_name = self.tls.server_name_for(&url.server_name())?;
                let tls = connector.connect(server_name, socket).await?;
                (_, peer.tls_version) = session_facts(tls.get_ref().1);
                if url.kind == TransportKind::Wss {
                    Box::new(ws::connect(tls, &ws_uri).await?)
                } else {
                    Box::new(tls)
                }
            }
        };
        Ok(Connected {
            stream,
            peer,
            quic: None,
        })
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tls", &self.tls)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Connects to `url` once: the stream and what is known about the server.
pub async fn connect(
    url: &TransportUrl,
    tls: &ClientTlsSettings,
) -> Result<(BoxStream, PeerInfo), TransportError> {
    let connected = Connector::new(tls)?.connect(url).await?;
    Ok((connected.stream, connected.peer))
}

async fn resolve(host: &Host, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
    match host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|source| TransportError::Resolve {
                    host: name.clone(),
                    source,
                })?
                .collect();
            if addrs.is_empty() {
                return Err(TransportError::NoAddress(name.clone()));
            }
            Ok(addrs)
        }
    }
}

/// The wildcard address of the same family as `remote`, for a client UDP socket.
pub(crate) fn unspecified_for(remote: &SocketAddr) -> SocketAddr {
    if remote.is_ipv6() {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
    }
}
