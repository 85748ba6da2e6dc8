//! The server side: [`Listener`] binds any transport and hands out [`Accepted`] connections
//! (a byte stream and its [`PeerInfo`]) the same way for all of them. Handshakes (TLS,
//! WebSocket, QUIC) run in their own tasks with a timeout and a cap on how many run at once,
//! so a slow or hostile client never delays the others; a failed handshake is logged and
//! counted, never returned from `accept`. Binding a transport this build lacks fails with
//! [`io::ErrorKind::Unsupported`] and a message naming the feature to enable.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
#[cfg(feature = "tls")]
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use crate::error::TransportError;
use crate::quic::QuicServerOptions;
#[cfg(feature = "quic")]
use crate::quic::{self, QuicConnection};
#[cfg(feature = "quic")]
use crate::quic_threads::QuicThreads;
use crate::stream::{BoxStream, PeerInfo};
use crate::tcp;
#[cfg(feature = "tls")]
use crate::tls::session_facts;
use crate::tls::ServerTlsSettings;
use crate::url::{ListenUrl, TransportKind};
#[cfg(feature = "ws")]
use crate::ws;

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
    #[cfg(feature = "quic")]
    pub quic: Option<QuicConnection>,
}

/// Accepts connections of one transport on one address.
#[derive(Debug)]
pub struct Listener {
    url: ListenUrl,
    local_addr: SocketAddr,
    ready: mpsc::Receiver<Accepted>,
    failed_handshakes: Arc<AtomicU64>,
    /// One per transport listener; a QUIC listener with threads has one per thread.
    accept_tasks: Vec<JoinHandle<()>>,
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
    #[cfg_attr(not(any(feature = "tls", feature = "quic")), allow(unused_variables))]
    pub async fn bind_with_options(
        url: &ListenUrl,
        tls: &ServerTlsSettings,
        options: ListenerOptions,
    ) -> io::Result<Listener> {
        if !url.kind.is_built_in() {
            return Err(TransportError::not_built_in(url.kind).into());
        }
        let (ready_tx, ready) = mpsc::channel(READY_QUEUE);
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let context = HandshakeContext {
            kind: url.kind,
            #[cfg(feature = "ws")]
            path: url.path.clone(),
            #[cfg(feature = "tls")]
            tls: match url.kind {
                TransportKind::Tls | TransportKind::Wss => {
                    Some(TlsAcceptor::from(tls.rustls_config(url.kind)?))
                }
                _ => None,
            },
            timeout: options.handshake_timeout,
            permits: Arc::new(Semaphore::new(options.max_pending_handshakes.max(1))),
            ready: ready_tx,
            failed: failed_handshakes.clone(),
            #[cfg(feature = "quic")]
            quic_zero_rtt: tls.quic_zero_rtt,
        };
        let (local_addr, accept_tasks) = match url.kind {
            #[cfg(feature = "quic")]
            TransportKind::Quic => {
                let config = tls.rustls_config(TransportKind::Quic)?;
                match options.quic.threads {
                    0 => {
                        let endpoint = quic::server_endpoint(url.addr, config, &options.quic)?;
                        let local_addr = endpoint.local_addr()?;
                        let task = tokio::spawn(accept_quic(endpoint, local_addr, context, None));
                        (local_addr, vec![task])
                    }
                    count => {
                        let threads = QuicThreads::start(count, "mquictt-quic")?;
                        let endpoints =
                            quic::server_endpoints(url.addr, config, &options.quic, &threads)?;
                        // All endpoints share the port; `start` made at least one thread.
                        let first = endpoints.first().ok_or_else(|| {
                            io::Error::other("a QUIC listener with threads has no endpoint")
                        })?;
                        let local_addr = first.local_addr()?;
                        let tasks = endpoints
                            .into_iter()
                            .enumerate()
                            .map(|(index, endpoint)| {
                                let thread = Some((threads.clone(), index));
                                threads.runtime(index).spawn(accept_quic(
                                    endpoint,
                                    local_addr,
                                    context.clone(),
                                    thread,
                                ))
                            })
                            .collect();
                        (local_addr, tasks)
                    }
                }
            }
            _ => {
                let listener = tcp::bind(url.addr).await?;
                let local_addr = listener.local_addr()?;
                let task = tokio::spawn(accept_tcp(listener, local_addr, context));
                (local_addr, vec![task])
            }
        };
        tracing::debug!(%url, %local_addr, "listening");
        Ok(Listener {
            url: url.clone(),
            local_addr,
            ready,
            failed_handshakes,
            accept_tasks,
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
        for task in &self.accept_tasks {
            task.abort();
        }
    }
}

#[derive(Clone)]
struct HandshakeContext {
    kind: TransportKind,
    /// The one WebSocket path served.
    #[cfg(feature = "ws")]
    path: String,
    /// The TLS side of `mqtts://` and `wss://` listeners.
    #[cfg(feature = "tls")]
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    permits: Arc<Semaphore>,
    ready: mpsc::Sender<Accepted>,
    failed: Arc<AtomicU64>,
    #[cfg(feature = "quic")]
    quic_zero_rtt: bool,
}

impl HandshakeContext {
    /// Runs `handshake` in its own task under the timeout, delivering its result to `accept`;
    /// on `runtime` if given, else on the current one.
    fn spawn<F>(
        &self,
        runtime: Option<&Handle>,
        remote: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
        handshake: F,
    ) where
        F: std::future::Future<Output = Result<Accepted, TransportError>> + Send + 'static,
    {
        let context = self.clone();
        let task = async move {
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
        };
        drop(runtime.cloned().unwrap_or_else(Handle::current).spawn(task));
    }
}

async fn accept_tcp(listener: TcpListener, local: SocketAddr, context: HandshakeContext) {
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
        let handshake = handshake_tcp(socket, remote, local, context.clone());
        context.spawn(None, remote, permit, handshake);
    }
}

async fn handshake_tcp(
    socket: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    context: HandshakeContext,
) -> Result<Accepted, TransportError> {
    tcp::configure(&socket)?;
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut peer = PeerInfo {
        remote,
        local,
        transport: context.kind,
        client_cert_der: None,
        tls_version: None,
    };
    let stream: BoxStream = match context.kind {
        TransportKind::Tcp => Box::new(socket),
        #[cfg(feature = "ws")]
        TransportKind::Ws => Box::new(ws::accept(socket, &context.path).await?),
        #[cfg(feature = "tls")]
        TransportKind::Tls => Box::new(tls_handshake(socket, context.tls, &mut peer).await?),
        #[cfg(all(feature = "tls", feature = "ws"))]
        TransportKind::Wss => {
            let tls = tls_handshake(socket, context.tls, &mut peer).await?;
            Box::new(ws::accept(tls, &context.path).await?)
        }
        // `bind_with_options` refused every kind not built in, and QUIC has its own loop.
        kind => return Err(TransportError::not_built_in(kind)),
    };
    Ok(Accepted {
        stream,
        peer,
        #[cfg(feature = "quic")]
        quic: None,
    })
}

/// The server side of the TLS handshake of `mqtts://` and `wss://`, noting the client
/// certificate and the negotiated version in `peer`.
#[cfg(feature = "tls")]
async fn tls_handshake(
    socket: TcpStream,
    acceptor: Option<TlsAcceptor>,
    peer: &mut PeerInfo,
) -> Result<TlsStream<TcpStream>, TransportError> {
    let acceptor = acceptor.ok_or(TransportError::MissingServerCertificate(peer.transport))?;
    let tls = acceptor.accept(socket).await?;
    (peer.client_cert_der, peer.tls_version) = session_facts(tls.get_ref().1);
    Ok(tls)
}

#[cfg(feature = "quic")]
async fn accept_quic(
    endpoint: quinn::Endpoint,
    local: SocketAddr,
    context: HandshakeContext,
    thread: Option<(Arc<QuicThreads>, usize)>,
) {
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
        // On the thread whose endpoint accepted it: its datagrams arrive there.
        let placement = thread.as_ref().map(|(threads, index)| {
            tracing::debug!(%remote, thread = index, "QUIC connection arrived");
            threads.place_on(*index)
        });
        // quinn spawns the connection's driver where the handshake runs: on its thread.
        let runtime = placement.as_ref().map(|p| p.runtime().clone());
        let handshake = async move {
            let (stream, connection) = quic::accept(incoming, zero_rtt, placement).await?;
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
        context.spawn(runtime.as_ref(), remote, permit, handshake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in builds without some transports (`--no-default-features`).
    #[tokio::test]
    async fn binding_a_transport_left_out_fails_as_unsupported() {
        let tls = ServerTlsSettings::default();
        for kind in TransportKind::ALL
            .into_iter()
            .filter(|kind| !kind.is_built_in())
        {
            let url = ListenUrl::new(kind, "127.0.0.1:0".parse().unwrap());
            let err = Listener::bind(&url, &tls).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{kind}");
            assert!(err.to_string().contains("rebuild with --features"), "{err}");
        }
    }
}
