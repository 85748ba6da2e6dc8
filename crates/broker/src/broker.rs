//! `Broker`: the running broker as a cheap-to-clone handle. It owns the router behind its
//! lock, the metrics and the housekeeping task (will delays, session expiry, retained expiry,
//! `$SYS` publication), and it is the entry point for connections: any byte stream, whatever
//! transport produced it, is served by [`Broker::serve_connection`]. Listening is done by the
//! caller; [`Broker::serve_tcp`] is a small accept loop for tests and simple deployments.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use mquictt_protocol::session::ServerConfig;
use mquictt_protocol::ReasonCode;
use mquictt_transport::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};

use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::limits::SourceRateLimiter;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::parking::ParkingLot;
use crate::router::{Router, WakesAfterUnlock};
use crate::storage::journal::Journal;
use crate::storage::{Storage, StorageError};
use crate::sys::{sys_messages, SysSnapshot};

/// Why a broker could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Loading stored state failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `Broker::new` was called outside a Tokio runtime, so housekeeping cannot run.
    #[error("the broker must be created inside a Tokio runtime")]
    NoRuntime,
}

/// What the broker knows about the other end of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote address, when the transport has one.
    pub remote_addr: Option<SocketAddr>,
    /// A short transport label for logs: "tcp", "ws", "tls", "quic".
    pub transport: &'static str,
    /// The user name a verified client certificate vouches for, when the listener maps
    /// certificates to user names (see [`crate::auth::certificate_username`]).
    pub certificate_username: Option<String>,
}

impl PeerInfo {
    /// A peer reached over plain TCP.
    pub fn tcp(remote_addr: SocketAddr) -> Self {
        Self {
            remote_addr: Some(remote_addr),
            transport: "tcp",
            certificate_username: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<BrokerConfig>,
    /// What every connection's protocol machine is configured with, shared by all of them.
    pub(crate) session_config: Arc<ServerConfig>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    /// Where changes of persistent state go; acknowledgements wait for its tickets.
    pub(crate) journal: Arc<Journal>,
    router: Mutex<Router>,
    /// Woken when a change may have moved the next housekeeping deadline earlier.
    pub(crate) housekeeping: Arc<Notify>,
    /// Limits concurrent connections to `max_connections`.
    pub(crate) connection_slots: Arc<Semaphore>,
    /// Limits connections that have not completed CONNECT to `max_pending_connections`.
    pub(crate) pending_slots: Arc<Semaphore>,
    /// Password checks running at once: each argon2id check takes ~20 MiB and tens of
    /// milliseconds of a core, so a CONNECT flood must queue rather than exhaust memory.
    pub(crate) password_checks: Arc<Semaphore>,
    /// New connections per source address.
    pub(crate) source_rate: Mutex<SourceRateLimiter>,
    /// Becomes `true` when the broker shuts down.
    pub(crate) shutting_down: watch::Sender<bool>,
    /// Where idle connections wait without a task; `None` if the runtime could not
    /// give it a readiness set (such connections then keep their task).
    pub(crate) parking: Option<Arc<ParkingLot>>,
    started: Instant,
}

/// The protocol machine's configuration for every connection.
fn session_config(config: &BrokerConfig) -> ServerConfig {
    ServerConfig {
        connect_timeout: Some(config.connect_timeout),
        // The broker's session queue is the only buffer, with its own bound and drop policy;
        // messages are handed over only as the client's window allows.
        max_queued_publishes: 0,
        send_window_v3: config.v3_inflight,
        outbound_topic_aliases: config.outbound_topic_aliases,
        ..ServerConfig::default()
    }
}

impl Shared {
    /// The router, even if a panic elsewhere poisoned the lock: its data stays consistent
    /// because every method finishes its changes before it can panic.
    pub(crate) fn router(&self) -> RouterGuard<'_> {
        RouterGuard {
            router: self
                .router
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            _wakes: WakesAfterUnlock::new(),
        }
    }
}

/// The router, locked. The connections that routing queued messages for are woken when it is
/// dropped, after the lock is released (see [`ConnectionSignal::wake_after_unlock`]).
///
/// [`ConnectionSignal::wake_after_unlock`]: crate::router::ConnectionSignal::wake_after_unlock
#[derive(Debug)]
pub(crate) struct RouterGuard<'a> {
    // Fields are dropped in order: the lock is released first, then the wakes run.
    router: MutexGuard<'a, Router>,
    _wakes: WakesAfterUnlock,
}

impl std::ops::Deref for RouterGuard<'_> {
    type Target = Router;

    fn deref(&self) -> &Router {
        &self.router
    }
}

impl std::ops::DerefMut for RouterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Router {
        &mut self.router
    }
}

/// A running broker. Clones share the same state.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) shared: Arc<Shared>,
}

impl Broker {
    /// Creates a broker with the given limits, persistence and authentication, restores
    /// retained messages and sessions from `storage`, and starts the housekeeping task and,
    /// for a durable store, the committer thread. Must be called from within a Tokio runtime.
    pub fn new(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Result<Self, BrokerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BrokerError::NoRuntime)?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let stored = storage.load()?;
        let journal = Arc::new(
            Journal::new(storage, config.max_storage_bytes, metrics.clone())
                .map_err(StorageError::Io)?,
        );
        let mut router = Router::new(
            config.clone(),
            journal.clone(),
            authenticator.clone(),
            metrics.clone(),
        );
        let restored = router.restore(stored, Instant::now());
        if restored != Default::default() {
            tracing::info!(
                sessions = restored.sessions,
                messages = restored.messages,
                retained = restored.retained,
                expired = restored.expired,
                expired_sessions = restored.expired_sessions,
                "restored from storage"
            );
        }
        let (shutting_down, _) = watch::channel(false);
        let parking = ParkingLot::start(config.idle_without_descriptor)
            .inspect_err(|e| tracing::warn!(error = %e, "idle connections will not be parked"))
            .ok();
        let shared = Arc::new(Shared {
            connection_slots: Arc::new(Semaphore::new(config.max_connections)),
            pending_slots: Arc::new(Semaphore::new(config.max_pending_connections)),
            password_checks: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            source_rate: Mutex::new(SourceRateLimiter::new(config.connection_rate)),
            session_config: Arc::new(session_config(&config)),
            config,
            metrics,
            authenticator,
            journal,
            router: Mutex::new(router),
            housekeeping: Arc::new(Notify::new()),
            shutting_down,
            parking,
            started: Instant::now(),
        });
        runtime.spawn(housekeeping(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// The broker's counters, for a metrics endpoint.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Publishes a message as if a client had sent it (for bridges and the application);
    /// returns the number of copies queued. What it changed in storage is committed with the
    /// next group; it does not wait for it.
    pub fn publish(&self, message: Message) -> usize {
        let routed = self
            .shared
            .router()
            .publish(Arc::new(message), Instant::now(), None);
        self.shared.housekeeping.notify_one();
        routed.receivers - routed.refused
    }

    /// Serves one client over any ordered, reliable byte stream until the connection ends.
    pub async fn serve_connection<S>(&self, stream: S, peer: PeerInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        crate::connection::serve(self.shared.clone(), stream, peer).await;
    }

    /// Serves one client over a plain TCP socket. Unlike [`Broker::serve_connection`], this
    /// may return while the connection lives on: once it has been idle for a moment (50 ms)
    /// it is parked, held without a task until its client sends something, a message is
    /// queued for it, it is closed or its keep alive runs out, and the broker then serves it
    /// in tasks of its own. Idle connections so cost a fraction of the memory.
    pub async fn serve_tcp_connection(&self, stream: TcpStream, peer: PeerInfo) {
        crate::connection::serve_tcp(self.shared.clone(), stream, peer).await;
    }

    /// Serves one client over a stream that is not a plain socket (TLS, WebSocket). Like
    /// [`Broker::serve_tcp_connection`], this may return while the connection lives on:
    /// once idle for a moment it is parked, and the broker serves it in tasks of its own
    /// when something happens.
    pub async fn serve_stream_connection(&self, stream: BoxStream, peer: PeerInfo) {
        crate::connection::serve_stream(self.shared.clone(), stream, peer, None, None).await;
    }

    /// How many idle connections are parked (held without a task) right now.
    pub fn parked_connections(&self) -> usize {
        self.shared.parking.as_ref().map_or(0, |lot| lot.len())
    }

    /// How many parked connections' sockets are held without a file descriptor right now
    /// (`BrokerConfig::idle_without_descriptor`).
    pub fn connections_without_descriptor(&self) -> usize {
        self.shared
            .parking
            .as_ref()
            .map_or(0, |lot| lot.held_without_descriptor())
    }

    /// Accepts TCP connections and serves each in its own task until `shutdown` completes,
    /// then shuts the broker down gracefully.
    pub async fn serve_tcp(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Running out of file descriptors must not end the listener.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let broker = self.clone();
                    tokio::spawn(async move {
                        broker.serve_tcp_connection(stream, PeerInfo::tcp(remote)).await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        self.shutdown().await;
        Ok(())
    }

    /// Graceful shutdown: refuses new connections, sends DISCONNECT 0x8B Server shutting down
    /// to MQTT 5 clients (3.1.1 clients are just closed), publishes the wills of the dropped
    /// connections, waits up to `shutdown_grace` for every connection to finish, then for the
    /// storage commit of what they left.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.send_replace(true);
        self.shared.connection_slots.close();
        let waiting = self
            .shared
            .router()
            .close_all(ReasonCode::ServerShuttingDown);
        let all_done = async {
            for connection in waiting {
                connection.finished().await;
            }
        };
        if tokio::time::timeout(self.shared.config.shutdown_grace, all_done)
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period passed with connections still open");
        }
        // What the departing connections left (sessions, wills) is on disk before the process
        // exits.
        if let Err(e) = self.shared.journal.ticket().wait().await {
            tracing::warn!(error = %e, "storage could not record the final state");
        }
    }

    /// A snapshot of the numbers published under `$SYS`.
    pub fn sys_snapshot(&self) -> SysSnapshot {
        snapshot(&self.shared)
    }

    /// The metrics in the Prometheus text exposition format, with the parking gauges read
    /// now.
    pub fn render_prometheus(&self) -> String {
        let (parked, without_descriptor) = parking_counts(&self.shared);
        let metrics = &self.shared.metrics;
        Metrics::set(&metrics.connections_parked, parked);
        Metrics::set(&metrics.connections_without_descriptor, without_descriptor);
        metrics.render_prometheus()
    }
}

/// Connections parked, and those of them held without a file descriptor.
fn parking_counts(shared: &Shared) -> (u64, u64) {
    shared.parking.as_ref().map_or((0, 0), |lot| {
        (lot.len() as u64, lot.held_without_descriptor() as u64)
    })
}

fn snapshot(shared: &Shared) -> SysSnapshot {
    // Read before the router's lock is taken: a wake under that lock takes the lot's.
    let (clients_parked, clients_without_descriptor) = parking_counts(shared);
    let router = shared.router();
    let m = &shared.metrics;
    SysSnapshot {
        uptime: shared.started.elapsed(),
        clients_connected: router.clients_connected() as u64,
        clients_parked,
        clients_without_descriptor,
        messages_received: m.messages_received.get(),
        messages_sent: m.messages_sent.get(),
        bytes_received: m.bytes_received.get(),
        bytes_sent: m.bytes_sent.get(),
        subscriptions: router.subscription_count() as u64,
        retained: router.retained_count() as u64,
        messages_dropped: Metrics::get(&m.messages_dropped),
        storage_bytes: Metrics::get(&m.storage_bytes),
        storage_commits: Metrics::get(&m.storage_commits),
        storage_quota_refusals: Metrics::get(&m.storage_quota_refusals),
        queue_qos0_dropped_messages_limit: Metrics::get(&m.queue_qos0_dropped_messages_limit),
        queue_qos0_dropped_bytes_limit: Metrics::get(&m.queue_qos0_dropped_bytes_limit),
        queue_refused_messages_limit: Metrics::get(&m.queue_refused_messages_limit),
        queue_refused_bytes_limit: Metrics::get(&m.queue_refused_bytes_limit),
    }
}

/// Fires will delays, session expiry and retained expiry when due, and publishes `$SYS`
/// every `sys_interval`. Holds only a weak reference, so it ends with the broker.
async fn housekeeping(shared: Weak<Shared>) {
    // Retained messages expire without anyone asking; look for them at least this often.
    const IDLE_CHECK: Duration = Duration::from_secs(60);
    let mut next_sys = shared
        .upgrade()
        .and_then(|s| s.config.sys_interval)
        .map(|interval| Instant::now() + interval);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        if *strong.shutting_down.borrow() {
            return;
        }
        let now = Instant::now();
        let next_deadline = strong.router().handle_timeout(now);
        if let (Some(due), Some(interval)) = (next_sys, strong.config.sys_interval) {
            if now >= due {
                let snapshot = snapshot(&strong);
                let mut router = strong.router();
                for message in sys_messages(&snapshot) {
                    router.publish(Arc::new(message), now, None);
                }
                next_sys = Some(now + interval);
            }
        }
        let wake_at = [next_deadline, next_sys]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + IDLE_CHECK)
            .min(now + IDLE_CHECK);
        let wake = strong.housekeeping.clone();
        let mut shutdown = strong.shutting_down.subscribe();
        drop(strong);
        // A notification sent since `handle_timeout` left a permit, so this cannot miss it.
        let notified = wake.notified();
        tokio::select! {
            () = tokio::time::sleep_until(wake_at.into()) => {}
            () = notified => {}
            _ = shutdown.changed() => {}
        }
    }
}
