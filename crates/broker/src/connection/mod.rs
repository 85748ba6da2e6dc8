//! The driver of one client connection: a single task that moves bytes and nothing else
//! (STYLE habit 2). It reads from the stream, decodes with the protocol codec, feeds the
//! sans-IO `ServerSession`, answers its events through the router (CONNECT, PUBLISH,
//! SUBSCRIBE, ...), hands the session the messages queued for this client as its send quota
//! allows, encodes what the session wants to transmit, and sleeps until the next input, the
//! next queued message or the session's next deadline. QoS flows, keep alive and topic aliases
//! are the session's; routing is the router's; CONNECT policy (client identifiers, limits,
//! CONNACK properties) is in `connect.rs`, the authentication exchanges in `authenticate.rs`.
//! The connect deadline is enforced here until the session is attached; the connection rate,
//! pending-connection cap and publish rate are in `admission.rs`; decoding input and answering
//! malformed input in `input.rs`; parking an idle TCP connection in `park.rs`.
//!
//! Durability: an answer that promises the client something is stored (PUBACK, PUBREC, SUBACK,
//! UNSUBACK) waits in `deferred` until the journal's commit holding it is durable; packets
//! that must not reach the client before a change is durable (a QoS 2 PUBLISH with its packet
//! identifier, a PUBREL, a PUBCOMP that frees an identifier) wait behind a write barrier.
//! Waiting never blocks the task: the driver keeps reading while commits run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mquictt_protocol::session::{OutboundMessage, ServerSession, SessionState};
use mquictt_protocol::{
    Decoder, Disconnect, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, SubAck, UnsubAck,
};
use mquictt_transport::BoxStream;
use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::broker::{PeerInfo, Shared};
use crate::limits::TokenBucket;
use crate::message::ClientId;
use crate::metrics::Metrics;
use crate::registry::{ConnectionId, Departure};
use crate::router::{DeliveryState, Departing, InFlight, Pause, SignalHandle, WokenTurn};
use crate::session::Outgoing;
use crate::storage::CommitTicket;

mod admission;
mod authenticate;
mod deliver;
mod durable;
mod events;
mod exchanges;
mod inbound;
mod input;
mod park;
mod park_stream;
mod quic_streams;
mod read;
#[cfg(test)]
mod tests;

pub(crate) use park::ParkedConnection;
pub(crate) use park_stream::Beside;
pub(crate) use quic_streams::{serve_data_stream, Activation, ControlStream, QuicStreamHooks};

use admission::{admit_pending, PendingSlot};
use authenticate::PendingAuth;
use exchanges::Exchanges;

/// How long a new connection waits for the one it takes over to hand back the session.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// The session this connection holds once its CONNECT was accepted.
#[derive(Debug)]
struct Attached {
    /// Whose session this is: the client identifier, or on a QUIC data stream the stream's
    /// own subscriber key (see `quic/subscriber.rs`).
    client_id: ClientId,
    /// The client that publishes through this connection, for authorization and No Local.
    owner: ClientId,
    /// The user name it authenticated as, for authorization. Boxed strings: 8 bytes less each
    /// than a `String`, for text that never changes.
    username: Option<Box<str>>,
    /// The Authentication Method of its CONNECT; re-authentication must use the same.
    auth_method: Option<Box<str>>,
    connection: ConnectionId,
    version: ProtocolVersion,
    expiry: Duration,
    /// How the router wakes and closes this connection; dropped when this driver has
    /// detached, which a successor waits for.
    signal: SignalHandle,
    /// Whether the session outlives the connection, so its exchanges are persisted.
    persistent: bool,
    /// Outgoing QoS 1/2 exchanges and incoming QoS 2 identifiers recorded in storage.
    exchanges: Exchanges,
}

/// An answer that may go out only once the changes it acknowledges are durable.
#[derive(Debug)]
enum Deferred {
    /// PUBACK or PUBREC for an incoming message.
    Ack {
        packet_id: PacketId,
        reason: ReasonCode,
    },
    SubAck(SubAck),
    UnsubAck(UnsubAck),
}

struct Driver<S> {
    shared: Arc<Shared>,
    stream: S,
    peer: PeerInfo,
    session: ServerSession,
    decoder: Decoder,
    read_buf: BytesMut,
    write_buf: BytesMut,
    attached: Option<Attached>,
    /// Held while the connection counts against `max_connections`; `None` when over the limit,
    /// which refuses the CONNECT.
    slot: Option<OwnedSemaphorePermit>,
    /// Set when the client closed with DISCONNECT; any other end counts as a lost connection
    /// (EOF, IO error, protocol error, timeout, takeover, shutdown).
    client_departure: Option<Departure>,
    /// Held until the session is attached: counts against `max_pending_connections`.
    pending: Option<PendingSlot>,
    /// When a connection that has not been admitted yet is closed: `connect_timeout` after it
    /// was opened, whether it is silent, trickling bytes or stuck in an AUTH exchange.
    connect_deadline: Instant,
    /// An enhanced authentication exchange in progress; boxed, as it is rare and large beside
    /// an idle connection's state.
    auth: Option<Box<PendingAuth>>,
    /// Limits PUBLISH packets read from this client.
    publish_bucket: Option<TokenBucket>,
    /// While set, nothing more is read or decoded: the client published too fast.
    throttled_until: Option<Instant>,
    /// While set, nothing more is read, decoded or routed: a subscriber this client publishes
    /// to is congested (back-pressure, `router/backpressure.rs`).
    paused: Option<Pause>,
    /// What the pause interrupted in a batch of publishes, taken up first when it ends.
    unrouted: Option<Box<inbound::Unrouted>>,
    /// Answers waiting for their commit, in the order they were made.
    deferred: VecDeque<(CommitTicket, Deferred)>,
    /// A commit that must be durable before the next write.
    barrier: Option<CommitTicket>,
    /// On a QUIC stream: the 0-RTT gate and, on the control stream, its data streams. Boxed
    /// so that TCP connections do not carry its room.
    quic: Option<Box<QuicStreamHooks>>,
    /// A packet that waits for the QUIC handshake to complete (0-RTT replay policy); nothing
    /// after it is read until then.
    held: Option<Packet>,
    /// Whether the session's queue may hold something this driver can send: set when the
    /// router woke it, when an exchange ended and freed room in the client's window, and when
    /// it starts; cleared by `deliver_queued`. A publisher that nobody sends to so never takes
    /// the router's lock a second time per message just to find its own queue empty.
    deliver_due: bool,
    /// Set when `deliver_queued` stopped at `DELIVERY_BYTES_PER_WRITE` (`deliver.rs`) with
    /// messages left: the driver comes back for them once the write is done, without waiting
    /// for a wake.
    more_queued: bool,
    /// The connection that routing woke last, when answers to this client are to be written:
    /// they wait for its next turn, so that it writes the message first
    /// (`router/answer_turn.rs`).
    answers_wait_for: Option<WokenTurn>,
}

/// How a driver's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// The connection is over: what is left is finishing it.
    Closed,
    /// Nothing happened for [`park::IDLE_BEFORE_PARKING`] and nothing is under way: the
    /// connection may wait in the parking lot.
    Idle,
}

/// Serves one connection to its end, without parking it while idle.
pub(crate) async fn serve<S>(shared: Arc<Shared>, stream: S, peer: PeerInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(mut driver) = Driver::open(shared, stream, peer, None) else {
        return;
    };
    driver.run(false).await;
    // Boxed: runs once, and its state need not make every connection's future larger.
    Box::pin(driver.finish()).await;
}

/// Serves one plain TCP connection until it ends or, idle, is parked (it then carries on in
/// tasks of the parking lot's making).
pub(crate) async fn serve_tcp(shared: Arc<Shared>, stream: TcpStream, peer: PeerInfo) {
    // Not `if let`: its scrutinee, the whole driver, would stay in the future until the end.
    let Some(driver) = Driver::open(shared, stream, peer, None) else {
        return;
    };
    park::drive_tcp(driver).await;
}

/// Serves one connection over a stream that is not a plain socket (TLS, WebSocket, a QUIC
/// control stream with its QUIC hooks and the work `beside` its driver) until it ends or, idle,
/// is parked (it then carries on in tasks of the parking lot's making).
pub(crate) async fn serve_stream(
    shared: Arc<Shared>,
    stream: BoxStream,
    peer: PeerInfo,
    quic: Option<QuicStreamHooks>,
    beside: Option<Beside>,
) {
    // Not `if let`: its scrutinee, the whole driver, would stay in the future until the end.
    let Some(driver) = Driver::open(shared, stream, peer, quic) else {
        return;
    };
    park_stream::drive_stream(driver, beside).await;
}

impl<S> Driver<S> {
    /// A driver for a new connection, or `None` when it is refused before anything is read.
    fn open(
        shared: Arc<Shared>,
        stream: S,
        peer: PeerInfo,
        quic: Option<QuicStreamHooks>,
    ) -> Option<Self> {
        if *shared.shutting_down.borrow() {
            return None;
        }
        let now = Instant::now();
        // Closed before anything is read: the cheapest answer to a flood.
        let pending = admit_pending(&shared, &peer, now)?;
        let slot = shared.connection_slots.clone().try_acquire_owned().ok();
        let shared_connect_timeout = shared.config.connect_timeout;
        let session = ServerSession::new(shared.session_config.clone(), now);
        let publish_rate = shared.config.publish_rate;
        Some(Driver {
            decoder: Decoder::new(shared.config.max_packet_size),
            shared,
            stream,
            peer,
            session,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            attached: None,
            slot,
            client_departure: None,
            pending: Some(pending),
            connect_deadline: now + shared_connect_timeout,
            auth: None,
            publish_bucket: publish_rate.map(|rate| TokenBucket::new(rate, now)),
            throttled_until: None,
            paused: None,
            unrouted: None,
            deferred: VecDeque::new(),
            barrier: None,
            quic: quic.map(Box::new),
            held: None,
            deliver_due: true,
            more_queued: false,
            answers_wait_for: None,
        })
    }
}

impl<S> Driver<S> {
    /// Lets go of the spare room of the session's queues and maps and of the write buffer,
    /// for a connection that has been idle for a while.
    fn trim(&mut self) {
        self.session.shrink_to_fit();
        if let Some(attached) = &mut self.attached {
            attached.exchanges.shrink_to_fit();
            // The router's queue for this client keeps what its busiest moment needed, up to
            // `max_queued_messages` entries, as long as the session lives.
            self.shared
                .router()
                .release_queue_room(&attached.client_id, attached.connection);
        }
        if self.write_buf.is_empty() {
            self.write_buf = BytesMut::new();
        }
        self.deferred.shrink_to_fit();
    }
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Serves the connection until it is over or, when `may_park`, until it has been idle for
    /// [`park::IDLE_BEFORE_PARKING`].
    async fn run(&mut self, may_park: bool) -> RunEnd {
        let mut shutdown = self.shared.shutting_down.subscribe();
        // Set when the last wait ended because nothing happened for the whole idle period.
        let mut quiet = false;
        // Set once a connection that cannot park has let go of its spare room, until
        // something happens again.
        let mut trimmed = false;
        // One timer for the whole run, moved to each wait's deadline: a deadline that moved
        // later (the idle one, every time something happened) is moved without touching the
        // runtime's timer wheel, where a new timer per wait was registered and removed again.
        let sleep = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(sleep);
        loop {
            if let Some(attached) = &self.attached {
                attached.signal.turn_taken();
            }
            self.handle_events().await;
            self.release_deferred();
            self.deliver_queued();
            // One reading of the clock per turn: for the write's deadline and the idle one.
            let now = Instant::now();
            if self.flush(now).await.is_err() {
                return RunEnd::Closed;
            }
            if self.session.is_closed() {
                return RunEnd::Closed;
            }
            if let Some(reason) = self
                .attached
                .as_ref()
                .and_then(|a| a.signal.close_requested())
            {
                // Boxed: runs once, and need not make every connection's future larger.
                Box::pin(self.close_for(reason)).await;
                if !self.session.is_closed() {
                    return RunEnd::Closed;
                }
                continue;
            }
            let parkable = may_park && self.is_parkable();
            if quiet && parkable {
                return RunEnd::Idle;
            }
            if quiet && !trimmed {
                // A connection that cannot park (a QUIC data stream, or one served without
                // the lot) stays as it is while idle, so it lets go of what its busiest moment
                // left: the CONNACK's room in the session's queues alone is about 0.7 KiB.
                self.trim();
                trimmed = true;
            }
            let idle_at = (parkable || !trimmed).then(|| now + park::IDLE_BEFORE_PARKING);
            let deadline = [
                self.session.poll_timeout(),
                self.attached.is_none().then_some(self.connect_deadline),
                self.throttled_until,
                self.paused.as_ref().map(|pause| pause.until),
                idle_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let reading = self.throttled_until.is_none() && self.paused.is_none();
            let mut paused = self.paused.clone();
            let drained = async {
                match &mut paused {
                    Some(pause) => pause.drained().await,
                    None => std::future::pending().await,
                }
            };
            if let Some(at) = deadline {
                if sleep.deadline() != at.into() {
                    sleep.as_mut().reset(at.into());
                }
            }
            let timed = deadline.is_some();
            let awaiting_connect = self.attached.is_none();
            let signal = self.attached.as_ref().map(|a| a.signal.signal().clone());
            let woken = async {
                match &signal {
                    Some(signal) => signal.woken().await,
                    None => std::future::pending().await,
                }
            };
            let oldest_deferred = self.deferred.front().map(|(ticket, _)| ticket.clone());
            let committed = async {
                match oldest_deferred {
                    Some(mut ticket) => {
                        // The outcome is read again by `release_deferred`.
                        let _ = ticket.wait().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let more_queued = self.more_queued;
            let holding = self.held.is_some();
            let mut gate = self.quic.as_ref().and_then(|q| q.gate.clone());
            let handshake = async {
                match &mut gate {
                    Some(gate) => gate.wait().await,
                    None => std::future::pending().await,
                }
            };
            let read = std::future::poll_fn(|cx| {
                read::poll_read_into(&mut self.stream, cx, &mut self.read_buf)
            });
            quiet = false;
            tokio::select! {
                complete = handshake, if holding => {
                    if !self.release_held(complete) {
                        return RunEnd::Closed;
                    }
                }
                read = read, if reading && !holding => match read {
                    Ok(0) | Err(_) => return RunEnd::Closed,
                    Ok(n) => {
                        self.shared.metrics.bytes_received.add(n as u64);
                        trimmed = false;
                        self.decode_input();
                    }
                },
                () = &mut sleep, if timed => {
                    let now = Instant::now();
                    match park::at_timer(signal.as_deref(), idle_at, now) {
                        park::AtTimer::Quiet => quiet = true,
                        park::AtTimer::Woken => {
                            trimmed = false;
                            self.deliver_due = true;
                        }
                        park::AtTimer::Busy => {}
                    }
                    self.on_timer(now);
                }
                () = drained => self.resume(),
                // A close request is looked at before the next wait.
                () = woken => {
                    trimmed = false;
                    self.deliver_due = true;
                }
                () = committed => {}
                // The rest of a long queue, after its first part was written.
                () = std::future::ready(()), if more_queued => {}
                _ = shutdown.changed(), if awaiting_connect => {
                    let _ = self.session.disconnect(Disconnect::new(ReasonCode::ServerShuttingDown));
                }
            }
        }
    }

    /// Closes the connection as the router asked (takeover, shutdown).
    async fn close_for(&mut self, reason: ReasonCode) {
        // Input that had already arrived still counts. A client whose DISCONNECT 0x00 is
        // waiting here left normally, and its will must not be published by a takeover.
        self.paused = None;
        self.take_ready_input().await;
        if !self.session.is_closed() {
            let _ = self.session.disconnect(Disconnect::new(reason));
        }
    }

    /// Whether nothing is under way that a parked connection could not carry on later: the
    /// session is connected, no bytes wait in either direction, no answer waits for a commit,
    /// no exchange (authentication, QUIC handshake) is in progress, the client is neither
    /// throttled nor paused, and no delivery stopped halfway through its queue.
    /// Unacknowledged QoS 1/2 exchanges stay in the session.
    fn is_parkable(&self) -> bool {
        self.attached.is_some()
            && self.session.is_connected()
            && self.read_buf.is_empty()
            && self.write_buf.is_empty()
            && self.deferred.is_empty()
            && self.barrier.is_none()
            && self.held.is_none()
            && self.auth.is_none()
            && self.pending.is_none()
            && self.throttled_until.is_none()
            && self.paused.is_none()
            && self.unrouted.is_none()
            && !self.more_queued
    }

    /// Runs whatever deadline passed: the connect deadline, the end of a throttle, the
    /// session's own timers.
    fn on_timer(&mut self, now: Instant) {
        if self.attached.is_none() && now >= self.connect_deadline && !self.session.is_closed() {
            Metrics::add(&self.shared.metrics.connect_timeouts, 1);
            tracing::debug!(peer = ?self.peer.remote_addr, "no CONNECT in time, closed");
            // Before CONNACK there is nothing to send: the connection just closes.
            let _ = self
                .session
                .disconnect(Disconnect::new(ReasonCode::MaximumConnectTime));
            return;
        }
        if self.throttled_until.is_some_and(|until| now >= until) {
            self.throttled_until = None;
            self.decode_input();
        }
        if self.paused.as_ref().is_some_and(|pause| now >= pause.until) {
            self.resume();
        }
        // A timeout error already queued its DISCONNECT (0x8D in 5.0).
        if let Err(e) = self.session.handle_timeout(now) {
            tracing::debug!(peer = ?self.peer.remote_addr, error = %e, "connection timed out");
        }
    }

    /// Encodes everything the session wants to send and writes it, once what it depends on
    /// is durable. `now` is a recent reading of the clock: the write must be done within
    /// `write_timeout` of it, or of the end of a wait for storage.
    async fn flush(&mut self, mut now: Instant) -> std::io::Result<()> {
        while let Some(packet) = self.session.poll_transmit(now) {
            self.persist_before_sending(&packet);
            let version = self.session.version().unwrap_or(ProtocolVersion::V3_1_1);
            self.queue_raw(&packet, version);
        }
        let wait_for = self.answers_wait_for.take();
        if self.write_buf.is_empty() {
            return Ok(());
        }
        if let Some(woken) = wait_for {
            woken.taken().await;
        }
        if let Some(mut barrier) = self.barrier.take() {
            if let Err(e) = barrier.wait().await {
                // What these packets promise could not be stored: they are not sent, and the
                // session resumes from storage on the next connection.
                self.write_buf.clear();
                tracing::warn!(peer = ?self.peer.remote_addr, error = %e, "closing: session state could not be stored");
                return Err(std::io::Error::other(e));
            }
            now = Instant::now();
        }
        let bytes = self.write_buf.split();
        let signal = self.attached.as_ref().map(|a| &*a.signal);
        if let Some(signal) = signal {
            signal.writing(true);
        }
        let stream = &mut self.stream;
        let write = async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        };
        let deadline = tokio::time::Instant::from_std(now + self.shared.config.write_timeout);
        let written = tokio::time::timeout_at(deadline, write).await;
        if let Some(signal) = signal {
            signal.writing(false);
        }
        written.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped reading")
        })??;
        self.shared.metrics.bytes_sent.add(bytes.len() as u64);
        Ok(())
    }

    fn queue_raw(&mut self, packet: &Packet, version: ProtocolVersion) {
        if let Err(e) = packet.encode(version, &mut self.write_buf) {
            tracing::warn!(error = %e, packet = ?packet.packet_type(), "packet could not be encoded");
        }
    }

    /// Flushes what is left, closes the stream and hands the session back to the router.
    async fn finish(mut self) {
        // No longer pending, whatever happens next: the gauge is right by the time the peer
        // sees the connection close.
        self.pending = None;
        // Events a pause left unhandled (publishes, a DISCONNECT that decides the will) are
        // handled before the session is handed back.
        self.paused = None;
        self.handle_events().await;
        let _ = self.flush(Instant::now()).await;
        let _ = self.stream.shutdown().await;
        self.close_quic_connection();
        let Some(mut attached) = self.attached.take() else {
            return;
        };
        let departure = self.client_departure.unwrap_or(Departure::Lost);
        let mut state = self.session.take_state();
        let shared_unacked = match attached.exchanges.in_flight() {
            Some(in_flight) => take_shared_unacked(&mut state, in_flight),
            None => Vec::new(),
        };
        self.shared.router().detach(
            &attached.client_id,
            attached.connection,
            Departing {
                departure,
                expiry: attached.expiry,
                delivery: DeliveryState {
                    session: state,
                    in_flight: attached.exchanges.into_in_flight(),
                },
                shared_unacked,
            },
            Instant::now(),
        );
        self.shared.housekeeping.notify_one();
        if self.session.is_data_stream() {
            return;
        }
        Metrics::decrement(&self.shared.metrics.connections_current);
        tracing::debug!(client = %attached.client_id, ?departure, "client disconnected");
    }
}

/// Removes from `state` the QoS 1 shared-subscription copies that were sent but never
/// acknowledged, so they can go to another member of their group: the Server "MAY attempt to
/// send the message to another Client as soon as it loses its connection to the first Client"
/// (4.8.2). QoS 2 copies stay in the session: "the Server MUST complete the delivery of the
/// message to that Client when it reconnects" [MQTT-4.8.2-4], and "If the Client's Session
/// terminates before the Client reconnects, the Server MUST NOT send the Application Message
/// to any other subscribed Client" [MQTT-4.8.2-5].
fn take_shared_unacked(
    state: &mut SessionState,
    in_flight: &mut FxHashMap<PacketId, InFlight>,
) -> Vec<(u64, Outgoing)> {
    let mut taken = Vec::new();
    state.outbound.retain(|entry| match entry {
        OutboundMessage::Publish(publish) if publish.qos == QoS::AtLeastOnce => {
            let shared = publish.packet_id.and_then(|id| {
                let is_shared = in_flight.get(&id).is_some_and(|e| e.shared.is_some());
                if is_shared {
                    in_flight.remove(&id)
                } else {
                    None
                }
            });
            match shared {
                Some(InFlight {
                    seq,
                    shared: Some(outgoing),
                    ..
                }) => {
                    taken.push((seq, outgoing));
                    false
                }
                _ => true,
            }
        }
        OutboundMessage::Publish(_) | OutboundMessage::Release(_) => true,
    });
    taken
}
