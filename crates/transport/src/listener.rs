//! The server side: [`Listener`] binds any transport and hands out [`Accepted`] connections
//! (a byte stream and its [`PeerInfo`]) the same way for all of them. Handshakes (TLS,
//! WebSocket, QUIC) run in their own tasks with a timeout and a cap on how many run at once,
//! so a slow or hostile client never delays the others; a failed handshake is logged and
//! counted, never returned from `accept`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::error::TransportError;
use crate::quic::{self, QuicConnection, QuicServerOptions};
use crate::stream::{BoxStream, PeerInfo};
use crate::tls::{session_facts, ServerTlsSettings};
use crate::url::{ListenUrl, TransportKind};
use crate::{tcp, ws};

/// Limits of a listener.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// A connection whose TLS, WebSocket or QUIC handshake (and, for QUIC, the opening of
    /// its first stream) takes longer is dropped. 10 s by default: generous for a radio link,
    /// short enough that idle half-open sockets do not pile up.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; further sockets wait in the kernel backlog. 256 by
    /// default, to bound the memory a flood of half-open connections can take.
    pub max_pending_handshakes: usize,
    /// QUIC transport settings.
    pub quic: QuicServerOptions,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 256,
            quic: QuicServerOptions::default(),
        }
    }
}

/// A connection ready for MQTT.
#[derive(Debug)]
pub struct Accepted {
    /// The byte stream: for QUIC, the first client-opened bidirectional stream (the single
    /// stream, or the control stream in multi-stream mode).
    pub stream: BoxStream,
    /// What is known about the peer.
    pub peer: PeerInfo,
    /// For QUIC, the connection: further data streams, 0-RTT state, the live peer address.
    pub quic: Option<QuicConnection>,
}

/// Accepts connections of one transport on one address.
#[derive(Debug)]
pub struct Listener {
    url: ListenUrl,
    local_addr: SocketAddr,
    ready: mpsc::Receiver<Accepted>,
    failed_handshakes: Arc<AtomicU64>,
    accept_task: JoinHandle<()>,
}

/// How many finished handshakes may wait for `accept`: a little slack so handshake tasks
/// rarely block, while a server that stops accepting still pushes back.
const READY_QUEUE: usize = 64;

/// A pause after a failed `accept(2)` (for example out of file descriptors), so that the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

impl Listener {
    /// Binds `url` with default [`ListenerOptions`]. TLS, WSS and QUIC need a server
    /// certificate in `tls`; TCP and WS ignore `tls`.
    pub async fn bind(url: &ListenUrl, tls: &ServerTlsSettings) -> io::Result<Listener> {
        Self::bind_with_options(url, tls, ListenerOptions::default()).await
    }

    /// Binds `url` with the given limits.
    pub async fn bind_with_options(
        url: &ListenUrl,
        tls: &ServerTlsSettings,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        let (ready_tx, ready) = mpsc::channel(READY_QUEUE);
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let context = HandshakeContext {
            kind: url.kind,
            path: url.path.clone(),
            timeout: options.handshake_timeout,
            permits: Arc::new(Semaphore::new(options.max_pending_handshakes.max(1))),
            ready: ready_tx,
            failed: failed_handshakes.clone(),
            quic_zero_rtt: tls.quic_zero_rtt,
        };
        let (local_addr, accept_task) = match url.kind {
            TransportKind::Quic => {
                let config = tls.rustls_config(TransportKind::Quic)?;
                let endpoint = quic::server_endpoint(url.addr, config, &options.quic)?;
                let local_addr = endpoint.local_addr()?;
                let task = tokio::spawn(accept_quic(endpoint, local_addr, context));
                (local_addr, task)
            }
            kind => {
                let acceptor = if kind.is_encrypted() {
                    Some(TlsAcceptor::from(tls.rustls_config(kind)?))
                } else {
                    None
                };
                let listener = tcp::bind(url.addr).await?;
                let local_addr = listener.local_addr()?;
                let task = tokio::spawn(accept_tcp(listener, local_addr, acceptor, context));
                (local_addr, task)
            }
        };
        tracing::debug!(%url, %local_addr, "listening");
        Ok(Listener {
            url: url.clone(),
            local_addr,
            ready,
            failed_handshakes,
            accept_task,
        })
    }

    /// The next connection whose handshake completed. Fails only if the listener itself
    /// stopped (its accept task ended), never because one client misbehaved.
    pub async fn accept(&mut self) -> io::Result<Accepted> {
        self.ready.recv().await.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("listener {} stopped accepting", self.url),
            )
        })
    }

    /// The bound address (with the real port when the URL asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL this listener serves.
    pub fn url(&self) -> &ListenUrl {
        &self.url
    }

    /// How many connections were dropped because their handshake failed or timed out.
    pub fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Stop accepting; connections already handed out live on.
        self.accept_task.abort();
    }
}

#[derive(Clone)]
struct HandshakeContext {
    kind: TransportKind,
    path: String,
    timeout: Duration,
    permits: Arc<Semaphore>,
    ready: mpsc::Sender<Accepted>,
    failed: Arc<AtomicU64>,
    quic_zero_rtt: bool,
}

impl HandshakeContext {
    /// Runs `handshake` in its own task under the timeout, delivering its result to `accept`.
    fn spawn<F>(&self, remote: SocketAddr, permit: tokio::sync::OwnedSemaphorePermit, handshake: F)
    where
        F: std::future::Future<Output = Result<Accepted, TransportError>> + Send + 'static,
    {
        let context = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(context.timeout, handshake).await;
            drop(permit);
            match outcome {
                Ok(Ok(accepted)) => {
                    // The listener was dropped: nobody wants the connection any more.
                    let _ = context.ready.send(accepted).await;
                }
                Ok(Err(err)) => {
                    context.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, transport = %context.kind, "handshake failed: {err}");
                }
                Err(_) => {
                    context.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, transport = %context.kind, "handshake timed out");
                }
            }
        });
    }
}

async fn accept_tcp(
    listener: TcpListener,
    local: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    context: HandshakeContext,
) {
    loop {
        let Ok(permit) = context.permits.clone().acquire_owned().await else {
            return;
        };
        let (socket, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%local, "accept failed: {err}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if context.ready.is_closed() {
            return;
        }
        let handshake = handshake_tcp(
            socket,
            remote,
            local,
            acceptor.clone(),
            context.kind,
            context.path.clone(),
        );
        context.spawn(remote, permit, handshake);
    }
}

async fn handshake_tcp(
    socket: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    kind: TransportKind,
    path: String,
) -> Result<Accepted, TransportError> {
    tcp::configure(&socket)?;
    let mut peer = PeerInfo {
        remote,
        local,
        transport: kind,
        client_cert_der: None,
        tls_version: None,
    };
    let stream: BoxStream = match (kind, acceptor) {
        (TransportKind::Tcp, _) => Box::new(socket),
        (TransportKind::Ws, _) => Box::new(ws::accept(socket, &path).await?),
        (TransportKind::Tls | TransportKind::Wss, Some(acceptor)) => {
            let tls = acceptor.accept(socket).await?;
            (peer.client_cert_der, peer.tls_version) = session_facts(tls.get_ref().1);
            if kind == TransportKind::Wss {
                Box::new(ws::accept(tls, &path).await?)
            } else {
                Box::new(tls)
            }
        }
        (kind, _) => return Err(TransportError::MissingServerCertificate(kind)),
    };
    Ok(Accepted {
        stream,
        peer,
        quic: None,
    })
}

async fn accept_quic(endpoint: quinn::Endpoint, local: SocketAddr, context: HandshakeContext) {
    loop {
        let Ok(permit) = context.permits.clone().acquire_owned().await else {
            return;
        };
        // `None` means the endpoint was closed.
        let Some(incoming) = endpoint.accept().await else {
            return;
        };
        if context.ready.is_closed() {
            incoming.refuse();
            return;
        }
        let remote = incoming.remote_address();
        let zero_rtt = context.quic_zero_rtt;
        let handshake = async move {
            let (stream, connection) = quic::accept(incoming, zero_rtt).await?;
            let peer = PeerInfo {
                remote,
                local,
                transport: TransportKind::Quic,
                client_cert_der: connection.client_certificate(),
                tls_version: Some(crate::stream::TlsVersion::Tls13),
            };
            Ok(Accepted {
                stream: Box::new(stream),
                peer,
                quic: Some(connection),
            })
        };
        context.spawn(remote, permit, handshake);
    }
}
