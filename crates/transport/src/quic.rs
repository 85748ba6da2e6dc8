//! MQTT over QUIC as EMQX does it: ALPN `mqtt`, TLS 1.3, and MQTT's own framing on
//! client-opened bidirectional streams. Owns the quinn endpoint and transport settings, the
//! server-side accept (connection, then its first bidirectional stream: the single stream, or
//! the control stream of multi-stream mode), the client-side connect (with 0-RTT when a
//! session ticket allows), and the connection handles [`QuicConnection`] (server) and
//! [`QuicClientConnection`] (client): further data streams for multi-stream mode, the 0-RTT
//! outcome and handshake state, and migration to a new local socket.
//!
//! Multi-stream mode: the stream handed out with the connection is the control stream (the
//! first client-opened bidirectional stream); the server takes further client-opened streams
//! with [`QuicConnection::accept_data_stream`], the client opens them with
//! [`QuicClientConnection::open_data_stream`]. QUIC announces a stream to the peer only with
//! its first bytes, so a data stream becomes visible to the server when the client writes.
//!
//! 0-RTT: a client [`crate::Connector`] with [`QuicClientOptions::zero_rtt`] keeps session
//! tickets across connections and writes its first bytes in 0-RTT when it has one; if the
//! server rejects them, [`QuicStream`] sends them again after the handshake. A server accepts
//! 0-RTT only with [`crate::ServerTlsSettings::quic_zero_rtt`]; 0-RTT bytes can be replayed
//! by an attacker, so [`QuicConnection::early_data`] tells the broker that the first bytes came
//! early and [`QuicConnection::handshake_complete`] when it is safe to act on anything that is
//! not idempotent. rustls' single-use session cache refuses a second resumption with the same
//! ticket on the same server, which stops replays against one broker process.
//!
//! The option types exist in every build, so that configuration code compiles the same
//! everywhere; the connection code only in builds with the `quic` feature.

#[cfg(feature = "quic")]
use std::io;
#[cfg(feature = "quic")]
use std::net::SocketAddr;
#[cfg(feature = "quic")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "quic")]
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
#[cfg(feature = "quic")]
use quinn::{Connection, Endpoint, IdleTimeout, Incoming, TransportConfig, VarInt};
#[cfg(feature = "quic")]
use rustls::pki_types::CertificateDer;
#[cfg(feature = "quic")]
use tokio::sync::watch;

#[cfg(feature = "quic")]
use crate::error::TransportError;
#[cfg(feature = "quic")]
use crate::quic_routing;
#[cfg(feature = "quic")]
use crate::quic_socket;
#[cfg(feature = "quic")]
pub use crate::quic_socket::LOOPBACK_MAX_UDP_PAYLOAD;
#[cfg(feature = "quic")]
pub use crate::quic_stream::QuicStream;
#[cfg(feature = "quic")]
use crate::quic_threads::{Placement, QuicThreads};
#[cfg(feature = "quic")]
use crate::tls::MQTT_ALPN;

/// QUIC application error code with which a multi-stream connection is closed when its
/// control stream is lost, as EMQX does.
pub const CONTROL_STREAM_LOST_CODE: u32 = 1;

/// QUIC application error code for "the peer spoke the wrong application protocol".
#[cfg(feature = "quic")]
const WRONG_ALPN_CODE: u32 = 0x10;

/// Receive and send buffer requested for a QUIC endpoint's UDP socket by default: 4 MiB. The
/// kernel caps the request at `net.core.rmem_max` / `net.core.wmem_max` and uses the memory
/// only while datagrams wait, so an idle endpoint costs nothing more. With Linux's default of
/// 208 KiB, a receiver descheduled for a few milliseconds while its peer sends at full speed
/// overflows the buffer; every drop is a lost packet to QUIC, which then halves its congestion
/// window.
pub const DEFAULT_SOCKET_BUFFER: usize = 4 << 20;

/// The smallest ceiling of path MTU discovery, in UDP payload bytes: the datagram size every
/// QUIC path must carry (RFC 9000 section 14). A smaller `max_udp_payload` is raised to it.
pub const MIN_UDP_PAYLOAD: u16 = 1_200;

/// The largest ceiling of path MTU discovery, in UDP payload bytes: the largest
/// `max_udp_payload_size` QUIC allows (RFC 9000 section 18.2). A larger `max_udp_payload` is
/// lowered to it.
pub const MAX_UDP_PAYLOAD: u16 = 65_527;

/// QUIC settings of a listener.
#[derive(Debug, Clone)]
pub struct QuicServerOptions {
    /// Close a connection after this long without any packet. 60 s by default: clients keep
    /// NAT bindings (and this timer) alive with QUIC PINGs, so this only ends dead peers; the
    /// MQTT keep alive still applies on top.
    pub idle_timeout: Duration,
    /// Bidirectional streams a client may have open at once: the control stream plus data
    /// streams in multi-stream mode. [`DEFAULT_MAX_BIDI_STREAMS`] by default.
    pub max_bidi_streams: u32,
    /// Path MTU discovery: after the handshake, probe with datagrams above the 1,200 bytes
    /// every QUIC path carries and use the largest size that gets through, so that large
    /// messages to clients take fewer packets. Off by default on a server: the probes were
    /// two thirds of the bytes a client needs to connect and delayed CONNACK on a slow link,
    /// and quinn keeps each connection's transmit buffer at the size of its largest probe
    /// (about 1.6 KiB more per idle connection). Switch it on for large messages over
    /// ordinary networks.
    pub mtu_discovery: bool,
    /// Ceiling of path MTU discovery, in UDP payload bytes (1200 to 65527), with
    /// `mtu_discovery` on. `None`: quinn's 1452 (an Ethernet path);
    /// [`LOOPBACK_MAX_UDP_PAYLOAD`] suits loopback. Datagrams grow only as far as discovery
    /// confirms the path carries them, and never beyond what the peer announces (at least
    /// 1472, more when it sets a ceiling too).
    pub max_udp_payload: Option<u16>,
    /// Receive and send buffer requested for the UDP socket, in bytes. 4 MiB by default (see
    /// [`DEFAULT_SOCKET_BUFFER`]); the kernel caps it at `net.core.rmem_max`/`wmem_max`.
    pub socket_buffer: usize,
    /// Threads of the listener's own (at most [`MAX_SERVER_THREADS`]; more are cut to it), each
    /// with its own endpoint on the listener's port (`SO_REUSEPORT`) and serving the connections
    /// that endpoint accepted, from the handshake on: quinn's tasks for a connection and the
    /// application's, so that they never hand work across cores. 0 (the default) serves them on the
    /// runtime the listener was bound from, with one endpoint. Spawn a connection's tasks on
    /// [`QuicConnection::runtime`].
    pub threads: usize,
}

/// The most threads a QUIC listener may have ([`QuicServerOptions::threads`]): a connection
/// ID names its thread in one byte. Far more than the cores of any machine a broker serves
/// from, few enough that a typo does not start thousands of threads.
pub const MAX_SERVER_THREADS: usize = 256;

/// Bidirectional streams a client may have open at once unless configured: the control
/// stream and 13 data streams. quinn reserves an entry in two hash tables for every stream
/// the peer may open, from the start of each connection; 14 entries fit tables of 16 slots
/// (about 0.7 KiB per connection), where quinn's default of 100 costs 128 slots (about
/// 5.5 KiB per connection, measured). A stream that ends frees its place for a new one.
pub const DEFAULT_MAX_BIDI_STREAMS: u32 = 14;

impl Default for QuicServerOptions {
    fn default() -> Self {
        QuicServerOptions {
            idle_timeout: Duration::from_secs(60),
            max_bidi_streams: DEFAULT_MAX_BIDI_STREAMS,
            mtu_discovery: false,
            max_udp_payload: None,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            threads: 0,
        }
    }
}

/// QUIC settings of a client connection.
#[derive(Debug, Clone)]
pub struct QuicClientOptions {
    /// Our idle timeout; the connection uses the smaller of ours and the server's. 60 s by
    /// default.
    pub idle_timeout: Duration,
    /// Send a QUIC PING after this long without sending, so that NAT bindings and the idle
    /// timers stay open between MQTT packets. 15 s by default: common NAT UDP timeouts are
    /// 30 s or more.
    pub keep_alive_interval: Option<Duration>,
    /// Send the first bytes in 0-RTT when a session ticket from an earlier connection to the
    /// same server is available. Off by default: 0-RTT data can be replayed by an attacker.
    pub zero_rtt: bool,
    /// Path MTU discovery (see [`QuicServerOptions::mtu_discovery`]): on by default on a
    /// client, so that its large messages take fewer packets; off keeps every datagram at
    /// 1,200 bytes, for narrowband links.
    pub mtu_discovery: bool,
    /// Ceiling of path MTU discovery, in UDP payload bytes (1200 to 65527). `None`: quinn's
    /// 1452 (an Ethernet path); [`LOOPBACK_MAX_UDP_PAYLOAD`] suits loopback, set on both ends.
    pub max_udp_payload: Option<u16>,
    /// Receive and send buffer requested for the connection's UDP socket, in bytes. 4 MiB by
    /// default; memory is used only while datagrams wait.
    pub socket_buffer: usize,
}

impl Default for QuicClientOptions {
    fn default() -> Self {
        QuicClientOptions {
            idle_timeout: Duration::from_secs(60),
            keep_alive_interval: Some(Duration::from_secs(15)),
            zero_rtt: false,
            mtu_discovery: true,
            max_udp_payload: None,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
        }
    }
}

impl QuicClientOptions {
    /// Options derived from the MQTT keep alive the client will announce: the idle timeout is
    /// one and a half keep-alive periods (the grace the broker gives, [MQTT-3.1.2-24]) and
    /// QUIC PINGs go out at half the keep alive, at most every 15 s. A keep alive of zero
    /// (switched off) keeps the defaults.
    pub fn for_keep_alive(keep_alive: Duration) -> Self {
        let mut options = QuicClientOptions::default();
        if !keep_alive.is_zero() {
            options.idle_timeout = keep_alive + keep_alive / 2;
            options.keep_alive_interval = Some((keep_alive / 2).min(Duration::from_secs(15)));
        }
        options
    }
}

#[cfg(feature = "quic")]
fn idle_timeout(duration: Duration) -> Option<IdleTimeout> {
    // Durations beyond QUIC's 2^62 ms limit cannot be expressed; fall back to no timeout
    // rather than fail, since the MQTT keep alive still bounds a dead connection.
    IdleTimeout::try_from(duration).ok()
}

/// The transport settings both sides share: bidirectional streams only, and path MTU
/// discovery as asked.
#[cfg(feature = "quic")]
fn transport_config(
    idle: Duration,
    mtu_discovery: bool,
    max_udp_payload: Option<u16>,
) -> TransportConfig {
    let mut transport = TransportConfig::default();
    transport
        .max_idle_timeout(idle_timeout(idle))
        // MQTT over QUIC uses bidirectional streams only.
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    match (mtu_discovery, max_udp_payload) {
        // Without discovery every datagram stays at the initial 1,200 bytes (RFC 9000
        // section 14: every QUIC path carries them), and no probes are sent; a ceiling for
        // discovery then has nothing to bound.
        (false, _) => {
            transport.mtu_discovery_config(None);
        }
        (true, Some(size)) => quic_socket::raise_mtu_ceiling(&mut transport, size),
        (true, None) => {}
    }
    transport
}

/// The quinn server configuration of a listener presenting `tls` (TLS 1.3, ALPN `mqtt`).
#[cfg(feature = "quic")]
fn server_config(
    tls: Arc<rustls::ServerConfig>,
    options: &QuicServerOptions,
    max_udp_payload: Option<u16>,
) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut transport =
        transport_config(options.idle_timeout, options.mtu_discovery, max_udp_payload);
    transport.max_concurrent_bidi_streams(VarInt::from_u32(options.max_bidi_streams));
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A server endpoint bound to `addr` presenting `tls`, driven by the current runtime.
#[cfg(feature = "quic")]
pub(crate) fn server_endpoint(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    options: &QuicServerOptions,
) -> Result<Endpoint, TransportError> {
    let max_udp_payload = quic_socket::max_udp_payload(options.max_udp_payload);
    let config = server_config(tls, options, max_udp_payload)?;
    let socket = quic_socket::bind_udp(addr, options.socket_buffer, false)?;
    Ok(quic_socket::endpoint(
        quic_socket::endpoint_config(max_udp_payload),
        Some(config),
        socket,
    )?)
}

/// One server endpoint per thread of `threads`, all bound to `addr` and presenting `tls`,
/// each driven by its thread and receiving the datagrams of the connections it issued
/// connection IDs for (see `quic_routing.rs`).
#[cfg(feature = "quic")]
pub(crate) fn server_endpoints(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    options: &QuicServerOptions,
    threads: &QuicThreads,
) -> Result<Vec<Endpoint>, TransportError> {
    let max_udp_payload = quic_socket::max_udp_payload(options.max_udp_payload);
    let config = server_config(tls, options, max_udp_payload)?;
    // One reset key for all: a stateless reset must carry the token the connection's own
    // endpoint announced, whichever endpoint sends it.
    let endpoint_config = quic_socket::endpoint_config(max_udp_payload);
    let sockets = quic_routing::bind_group(addr, threads.len(), options.socket_buffer)?;
    let routes = quic_routing::Routes::new(sockets.len());
    let runtime: Arc<dyn quinn::Runtime> = Arc::new(quinn::TokioRuntime);
    sockets
        .into_iter()
        .enumerate()
        .map(|(index, socket)| {
            // quinn spawns the endpoint's driver, and registers its socket, where it is made.
            let _thread = threads.runtime(index).enter();
            let mut endpoint_config = endpoint_config.clone();
            let thread = u8::try_from(index).unwrap_or(u8::MAX);
            endpoint_config
                .cid_generator(move || Box::new(quic_routing::ThreadConnectionIds::new(thread)));
            let socket = quic_routing::RoutedSocket::new(
                runtime.wrap_udp_socket(socket)?,
                index,
                routes.clone(),
            );
            Ok(Endpoint::new_with_abstract_socket(
                endpoint_config,
                Some(config.clone()),
                Arc::new(socket),
                runtime.clone(),
            )?)
        })
        .collect()
}

/// The quinn client configuration for `tls` (already TLS 1.3 with ALPN `mqtt`).
#[cfg(feature = "quic")]
pub(crate) fn client_config(
    tls: rustls::ClientConfig,
    options: &QuicClientOptions,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(client_transport(options, None)));
    Ok(config)
}

/// The transport settings of a client connection whose path MTU discovery searches up to
/// `max_udp_payload` (quinn's default ceiling when `None`).
#[cfg(feature = "quic")]
fn client_transport(options: &QuicClientOptions, max_udp_payload: Option<u16>) -> TransportConfig {
    let mut transport =
        transport_config(options.idle_timeout, options.mtu_discovery, max_udp_payload);
    transport
        .keep_alive_interval(options.keep_alive_interval)
        // The server never opens a stream: MQTT over QUIC streams are client-opened. quinn
        // would otherwise reserve room for 100 of them in every connection.
        .max_concurrent_bidi_streams(VarInt::from_u32(0));
    transport
}

/// The state of the TLS handshake of a connection, shared by its handles. Most connections
/// are accepted (or connected) with the handshake already complete; only a 0-RTT one watches
/// it, so only that one pays for a channel and a task.
#[cfg(feature = "quic")]
#[derive(Debug, Clone)]
enum HandshakeState {
    /// Completed when the handle was made (on a server: before the first stream arrived), so
    /// no 0-RTT data is in play.
    Complete,
    /// `None` while the handshake runs, `Some(accepted)` once it completed (`accepted`:
    /// whether 0-RTT data was accepted; always true on a server, where data arriving before
    /// completion *was* 0-RTT).
    Watched(watch::Receiver<Option<bool>>),
}

#[cfg(feature = "quic")]
impl HandshakeState {
    fn watch(zero_rtt: quinn::ZeroRttAccepted) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let accepted = zero_rtt.await;
            // No receiver left means nobody asks any more.
            let _ = tx.send(Some(accepted));
        });
        HandshakeState::Watched(rx)
    }

    /// `None` while the handshake runs, then whether 0-RTT data was accepted.
    fn outcome(&self) -> Option<bool> {
        match self {
            HandshakeState::Complete => Some(false),
            HandshakeState::Watched(rx) => *rx.borrow(),
        }
    }

    /// Waits until the handshake completed and tells whether 0-RTT data was accepted;
    /// `None` if the watching task ended first (the connection failed).
    async fn completed(&self) -> Option<bool> {
        match self {
            HandshakeState::Complete => Some(false),
            HandshakeState::Watched(rx) => {
                let mut rx = rx.clone();
                // The watch guard is dropped before any await, so the future stays `Send`.
                let state = rx.wait_for(Option::is_some).await.ok()?;
                *state
            }
        }
    }
}

/// A QUIC connection as seen by the server, with what MQTT needs on top of the byte stream.
#[cfg(feature = "quic")]
#[derive(Debug, Clone)]
pub struct QuicConnection {
    connection: Connection,
    handshake: HandshakeState,
    early_data: bool,
    control_stream_id: u64,
    /// The listener's thread the connection lives on, if it has threads of its own.
    placement: Option<Placement>,
}

#[cfg(feature = "quic")]
impl QuicConnection {
    /// The quinn connection, for anything this type does not cover.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The runtime of the thread this connection lives on, when its listener has threads of
    /// its own ([`QuicServerOptions::threads`]): its tasks belong there. `None`: the
    /// runtime the listener was bound from.
    pub fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.placement.as_ref().map(Placement::runtime)
    }

    /// Whether the first stream was accepted before the TLS handshake completed, which means
    /// its first bytes arrived as 0-RTT data. Such bytes may be a replay: act on nothing
    /// non-idempotent in them until [`Self::handshake_complete`] resolves.
    pub fn early_data(&self) -> bool {
        self.early_data
    }

    /// Whether the TLS handshake has completed (client authenticated, no replay possible for
    /// data that arrives from now on).
    pub fn is_handshake_complete(&self) -> bool {
        self.handshake.outcome().is_some()
    }

    /// Resolves when the TLS handshake has completed; an error if the connection failed first.
    pub async fn handshake_complete(&self) -> Result<(), quinn::ConnectionError> {
        tokio::select! {
            outcome = self.handshake.completed() => match outcome {
                Some(_) => Ok(()),
                None => Err(self.connection.closed().await),
            },
            err = self.connection.closed() => Err(err),
        }
    }

    /// The client's end-entity certificate, once the handshake has completed and if the
    /// client presented one.
    pub fn client_certificate(&self) -> Option<CertificateDer<'static>> {
        client_certificate(&self.connection)
    }

    /// The id of the stream handed out with the connection: the single stream, or the
    /// control stream in multi-stream mode (0 in practice).
    pub fn control_stream_id(&self) -> u64 {
        self.control_stream_id
    }

    /// The next bidirectional stream the client opens after the control stream: a data
    /// stream in multi-stream mode. Fails when the connection ends.
    pub async fn accept_data_stream(&self) -> Result<QuicStream, quinn::ConnectionError> {
        let (send, recv) = self.connection.accept_bi().await?;
        Ok(QuicStream::new(send, recv, self.connection.clone()))
    }

    /// Closes the connection because the control stream was lost.
    pub fn close_for_lost_control_stream(&self) {
        self.connection.close(
            VarInt::from_u32(CONTROL_STREAM_LOST_CODE),
            b"control stream lost",
        );
    }
}

#[cfg(feature = "quic")]
pub(crate) fn client_certificate(connection: &Connection) -> Option<CertificateDer<'static>> {
    connection
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?
        .into_iter()
        .next()
}

/// Completes the handshake of an incoming connection (or only its first flight, when 0-RTT
/// is accepted) and accepts its first bidirectional stream.
#[cfg(feature = "quic")]
pub(crate) async fn accept(
    incoming: Incoming,
    zero_rtt: bool,
    placement: Option<Placement>,
) -> Result<(QuicStream, QuicConnection), TransportError> {
    let connecting = incoming.accept()?;
    let (connection, handshake) = if zero_rtt {
        match connecting.into_0rtt() {
            Ok((connection, accepted)) => (connection, HandshakeState::watch(accepted)),
            Err(connecting) => (connecting.await?, HandshakeState::Complete),
        }
    } else {
        (connecting.await?, HandshakeState::Complete)
    };
    // rustls already refuses a client whose ALPN list lacks `mqtt`; a client that sends no
    // ALPN at all is refused here.
    let protocol = connection
        .handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok())
        .and_then(|data| data.protocol);
    if protocol.as_deref() != Some(MQTT_ALPN) {
        connection.close(VarInt::from_u32(WRONG_ALPN_CODE), b"ALPN mqtt required");
        return Err(TransportError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "QUIC client did not negotiate ALPN mqtt",
        )));
    }
    let (send, recv) = connection.accept_bi().await?;
    let early_data = handshake.outcome().is_none();
    // A handshake that completed before the first stream arrived needs no watching for the
    // rest of the connection: let the channel go.
    let handshake = if early_data {
        handshake
    } else {
        HandshakeState::Complete
    };
    let stream = QuicStream::new(send, recv, connection.clone());
    let control_stream_id = stream.id();
    Ok((
        stream,
        QuicConnection {
            connection,
            handshake,
            early_data,
            control_stream_id,
            placement,
        },
    ))
}

/// A QUIC connection as seen by the client.
#[cfg(feature = "quic")]
#[derive(Debug, Clone)]
pub struct QuicClientConnection {
    endpoint: Endpoint,
    connection: Connection,
    handshake: HandshakeState,
    zero_rtt_attempted: bool,
}

#[cfg(feature = "quic")]
impl QuicClientConnection {
    /// The quinn connection, for anything this type does not cover.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The connection's own endpoint (one per client connection, like a TCP socket).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Moves the connection to a new local UDP socket, as when a device changes network or
    /// its NAT binding changes: the server sees packets from a new address, validates the
    /// path and carries on (RFC 9000 section 9).
    pub fn rebind(&self, socket: std::net::UdpSocket) -> io::Result<()> {
        self.endpoint.rebind(socket)
    }

    /// Opens another bidirectional stream: a data stream in multi-stream mode. The server
    /// sees it when the first bytes are written.
    pub async fn open_data_stream(&self) -> Result<QuicStream, quinn::ConnectionError> {
        let (send, recv) = self.connection.open_bi().await?;
        Ok(self.new_stream(send, recv))
    }

    fn new_stream(&self, send: quinn::SendStream, recv: quinn::RecvStream) -> QuicStream {
        match &self.handshake {
            HandshakeState::Watched(handshake)
                if self.zero_rtt_attempted && handshake.borrow().is_none() =>
            {
                QuicStream::new_early(send, recv, self.connection.clone(), handshake.clone())
            }
            _ => QuicStream::new(send, recv, self.connection.clone()),
        }
    }

    /// Whether the first bytes were sent as 0-RTT (a session ticket was available and 0-RTT
    /// is switched on).
    pub fn zero_rtt_attempted(&self) -> bool {
        self.zero_rtt_attempted
    }

    /// Waits for the handshake and tells whether the server accepted our 0-RTT data; false
    /// when none was attempted. Rejected early bytes are sent again by [`QuicStream`].
    pub async fn zero_rtt_accepted(&self) -> Result<bool, quinn::ConnectionError> {
        tokio::select! {
            outcome = self.handshake.completed() => match outcome {
                Some(accepted) => Ok(accepted),
                None => Err(self.connection.closed().await),
            },
            err = self.connection.closed() => Err(err),
        }
    }
}

/// Connects to the first of `addrs` and opens the first bidirectional stream.
#[cfg(feature = "quic")]
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    config: quinn::ClientConfig,
    server_name: &str,
    options: &QuicClientOptions,
) -> Result<crate::connector::Connected, TransportError> {
    let remote = *addrs
        .first()
        .ok_or_else(|| TransportError::NoAddress(server_name.to_owned()))?;
    let max_udp_payload = quic_socket::max_udp_payload(options.max_udp_payload);
    let mut config = config;
    if max_udp_payload.is_some() {
        config.transport_config(Arc::new(client_transport(options, max_udp_payload)));
    }
    let socket = quic_socket::bind_udp(
        crate::connector::unspecified_for(&remote),
        options.socket_buffer,
        false,
    )?;
    let endpoint =
        quic_socket::endpoint(quic_socket::endpoint_config(max_udp_payload), None, socket)?;
    let connecting = endpoint.connect_with(config, remote, server_name)?;
    let (connection, handshake, zero_rtt_attempted) = if options.zero_rtt {
        match connecting.into_0rtt() {
            Ok((connection, accepted)) => (connection, HandshakeState::watch(accepted), true),
            Err(connecting) => (connecting.await?, HandshakeState::Complete, false),
        }
    } else {
        (connecting.await?, HandshakeState::Complete, false)
    };
    let handle = QuicClientConnection {
        endpoint,
        connection,
        handshake,
        zero_rtt_attempted,
    };
    let (send, recv) = handle.connection.open_bi().await?;
    let stream = handle.new_stream(send, recv);
    let peer = crate::stream::PeerInfo {
        remote,
        local: handle.endpoint.local_addr()?,
        transport: crate::url::TransportKind::Quic,
        client_cert_der: None,
        tls_version: Some(crate::stream::TlsVersion::Tls13),
    };
    Ok(crate::connector::Connected {
        stream: Box::new(stream),
        peer,
        quic: Some(handle),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_mqtt_keep_alive() {
        let options = QuicClientOptions::for_keep_alive(Duration::from_secs(60));
        assert_eq!(options.idle_timeout, Duration::from_secs(90));
        assert_eq!(options.keep_alive_interval, Some(Duration::from_secs(15)));
        let options = QuicClientOptions::for_keep_alive(Duration::from_secs(10));
        assert_eq!(options.idle_timeout, Duration::from_secs(15));
        assert_eq!(options.keep_alive_interval, Some(Duration::from_secs(5)));
        let off = QuicClientOptions::for_keep_alive(Duration::ZERO);
        assert_eq!(off.idle_timeout, QuicClientOptions::default().idle_timeout);
        assert!(!off.zero_rtt);
    }

    #[test]
    fn datagram_settings_default_to_discovery_and_large_socket_buffers() {
        // No ceiling of our own: quinn's applies.
        let client = QuicClientOptions::for_keep_alive(Duration::from_secs(60));
        assert_eq!(client.max_udp_payload, None);
        assert_eq!(client.socket_buffer, DEFAULT_SOCKET_BUFFER);
        let server = QuicServerOptions::default();
        assert_eq!(server.max_udp_payload, None);
        assert_eq!(server.socket_buffer, DEFAULT_SOCKET_BUFFER);
    }
}
