//! The client side: [`Connector`] opens a byte stream to a [`TransportUrl`] over any
//! transport, trusting the configured CAs and presenting an optional client certificate.
//! A connector keeps its TLS configuration, and with it the session tickets that QUIC 0-RTT
//! resumption needs, across connections; [`connect`] is the one-shot form. A URL whose
//! transport this build lacks fails before anything touches the network.

use std::net::SocketAddr;
#[cfg(feature = "quic")]
use std::net::{Ipv4Addr, Ipv6Addr};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use tokio_rustls::{client::TlsStream, TlsConnector};

use crate::error::TransportError;
use crate::quic::QuicClientOptions;
#[cfg(feature = "quic")]
use crate::quic::{self, QuicClientConnection};
use crate::stream::{BoxStream, PeerInfo};
use crate::tcp;
#[cfg(feature = "tls")]
use crate::tls::session_facts;
use crate::tls::ClientTlsSettings;
use crate::url::{Host, TransportKind, TransportUrl};
#[cfg(feature = "ws")]
use crate::ws;

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
    #[cfg(feature = "quic")]
    pub quic: Option<QuicClientConnection>,
}

/// Opens connections with one TLS configuration; re-use it so QUIC can resume sessions.
#[derive(Clone)]
pub struct Connector {
    tls: ClientTlsSettings,
    /// `None` when no CA is trusted: plain transports still work, encrypted ones fail with
    /// [`TransportError::NoTrustedCa`].
    #[cfg(feature = "tls")]
    tcp_tls: Option<TlsConnector>,
    #[cfg(feature = "quic")]
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
        Ok(Connector {
            #[cfg(feature = "tls")]
            tcp_tls: if tls.trusted_cas.is_empty() {
                None
            } else {
                Some(TlsConnector::from(Arc::new(tls.rustls_config(false)?)))
            },
            #[cfg(feature = "quic")]
            quic: if tls.trusted_cas.is_empty() {
                None
            } else {
                Some(quic::client_config(
                    tls.rustls_config(true)?,
                    &options.quic,
                )?)
            },
            tls: tls.clone(),
            options,
        })
    }

    /// Connects to `url` and completes every handshake of its transport.
    pub async fn connect(&self, url: &TransportUrl) -> Result<Connected, TransportError> {
        if !url.kind.is_built_in() {
            return Err(TransportError::not_built_in(url.kind));
        }
        tokio::time::timeout(self.options.timeout, self.connect_inner(url))
            .await
            .map_err(|_| TransportError::Timeout(url.to_string()))?
    }

    async fn connect_inner(&self, url: &TransportUrl) -> Result<Connected, TransportError> {
        let addrs = resolve(&url.host, url.port).await?;
        #[cfg(feature = "quic")]
        if url.kind == TransportKind::Quic {
            let config = self.quic.as_ref().ok_or(TransportError::NoTrustedCa)?;
            let server_name = self.tls.server_name.clone().unwrap_or(url.server_name());
            return quic::connect(&addrs, config.clone(), &server_name, &self.options.quic).await;
        }
        let socket = tcp::connect(&addrs).await?;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut peer = PeerInfo {
            remote: socket.peer_addr()?,
            local: socket.local_addr()?,
            transport: url.kind,
            client_cert_der: None,
            tls_version: None,
        };
        let stream: BoxStream = match url.kind {
            TransportKind::Tcp => Box::new(socket),
            #[cfg(feature = "ws")]
            TransportKind::Ws => Box::new(ws::connect(socket, &ws_uri(url)).await?),
            #[cfg(feature = "tls")]
            TransportKind::Tls => Box::new(self.tls_handshake(socket, url, &mut peer).await?),
            #[cfg(all(feature = "tls", feature = "ws"))]
            TransportKind::Wss => {
                let tls = self.tls_handshake(socket, url, &mut peer).await?;
                Box::new(ws::connect(tls, &ws_uri(url)).await?)
            }
            // QUIC returned above when built in; `connect` refused every kind not built in.
            kind => return Err(TransportError::not_built_in(kind)),
        };
        Ok(Connected {
            stream,
            peer,
            #[cfg(feature = "quic")]
            quic: None,
        })
    }

    /// The TLS handshake of `mqtts://` and `wss://` on a connected socket, noting the
    /// negotiated version in `peer`.
    #[cfg(feature = "tls")]
    async fn tls_handshake(
        &self,
        socket: tokio::net::TcpStream,
        url: &TransportUrl,
        peer: &mut PeerInfo,
    ) -> Result<TlsStream<tokio::net::TcpStream>, TransportError> {
        let connector = self.tcp_tls.as_ref().ok_or(TransportError::NoTrustedCa)?;
        let server_name = self.tls.server_name_for(&url.server_name())?;
        let tls = connector.connect(server_name, socket).await?;
        (_, peer.tls_version) = session_facts(tls.get_ref().1);
        Ok(tls)
    }
}

/// The HTTP URI of a WebSocket handshake: `ws://` even over TLS, since the scheme only names
/// the host and path here.
#[cfg(feature = "ws")]
fn ws_uri(url: &TransportUrl) -> String {
    format!("ws://{}:{}{}", url.host, url.port, url.path)
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
#[cfg(feature = "quic")]
pub(crate) fn unspecified_for(remote: &SocketAddr) -> SocketAddr {
    if remote.is_ipv6() {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_for_a_missing_transport_names_the_features_to_enable() {
        assert_eq!(
            TransportError::not_built_in(TransportKind::Quic).to_string(),
            "this build has no QUIC support; rebuild with --features quic"
        );
        assert_eq!(
            TransportError::not_built_in(TransportKind::Wss).to_string(),
            "this build has no WebSocket over TLS support; rebuild with --features tls,ws"
        );
        assert!(TransportError::not_built_in(TransportKind::Tls).is_configuration());
    }

    #[test]
    fn built_in_transports_follow_the_features() {
        assert!(TransportKind::Tcp.is_built_in());
        assert_eq!(TransportKind::Tls.is_built_in(), cfg!(feature = "tls"));
        assert_eq!(TransportKind::Ws.is_built_in(), cfg!(feature = "ws"));
        assert_eq!(
            TransportKind::Wss.is_built_in(),
            cfg!(all(feature = "tls", feature = "ws"))
        );
        assert_eq!(TransportKind::Quic.is_built_in(), cfg!(feature = "quic"));
    }

    /// Runs in builds without some transports (`--no-default-features`): each one left out is
    /// refused by name before anything is resolved or connected.
    #[tokio::test]
    async fn connecting_with_a_transport_left_out_fails_before_the_network() {
        let connector = Connector::new(&ClientTlsSettings::default()).unwrap();
        for kind in TransportKind::ALL
            .into_iter()
            .filter(|kind| !kind.is_built_in())
        {
            // A name that cannot resolve: reaching the resolver would be a different error.
            let url = TransportUrl::parse(&format!("{}://host.invalid", kind.scheme())).unwrap();
            match connector.connect(&url).await {
                Err(TransportError::NotBuiltIn { kind: refused, .. }) => assert_eq!(refused, kind),
                other => panic!("{kind}: expected NotBuiltIn, got {other:?}"),
            }
        }
    }
}
