//! Parking an idle connection and resuming it. A driver whose connection had nothing to do for
//! [`IDLE_BEFORE_PARKING`] (and nothing under way, see `Driver::is_parkable`) ends its task:
//! what the connection must remember moves, trimmed, into a [`ParkedConnection`] that the
//! broker's parking lot (`parking/`) holds. When the lot resumes it (input, its deadline, a
//! wake or close from the router), the driver is rebuilt around its transport and runs as
//! before. A task costs a connection several KiB whether it is busy or not; this is what keeps
//! idle connections small. A plain TCP socket leaves Tokio's reactor for the lot's readiness
//! set (this file); any other stream stays as it is and wakes the lot itself
//! (`park_stream.rs`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mquictt_protocol::session::IdleServerSession;
use mquictt_protocol::Decoder;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::OwnedSemaphorePermit;

use super::park_stream::{drive_stream, ParkedStream};
use super::{read, Attached, Driver, QuicStreamHooks, RunEnd};
use crate::broker::{PeerInfo, Shared};
use crate::limits::TokenBucket;
use crate::parking::ParkingLot;
use crate::registry::Departure;
use crate::router::ConnectionSignal;

/// How long a connection must have been idle before it parks: long enough that a client
/// exchanging messages 20 times a second or more keeps its task (parking and resuming cost a
/// few system calls and a task spawn), short enough that a burst of new connections does not
/// hold many tasks at once, whose memory the allocator keeps after they end. Measured with
/// 10,000 connections opened at 5,000 a second: 4.25 KiB per connection after 200 ms, 3.03
/// after 50 ms, 2.95 after 20 ms (docs/benchmarks.md).
pub(crate) const IDLE_BEFORE_PARKING: Duration = Duration::from_millis(50);

/// What a driver finds when its timer fires.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AtTimer {
    /// Idle for the whole of [`IDLE_BEFORE_PARKING`], with no wake-up waiting: it may park.
    Quiet,
    /// A wake-up was waiting (and is taken): there is something to deliver.
    Woken,
    /// Another of its deadlines came first.
    Busy,
}

/// Sorts out a timer that fired at `now` for a driver with the idle deadline `idle_at`. A task
/// polled late, on a busy runtime, can find its idle deadline passed and a wake-up waiting at
/// once, and `select!` picks either: the wake-up is taken first, or the driver would park and
/// trim its session's maps and queues, messages still in them, only to be resumed at once. In
/// one burst to 100 subscribers, 1,444 of 1,645 parks were such (docs/benchmarks.md, "After the
/// burst").
pub(super) fn at_timer(
    signal: Option<&ConnectionSignal>,
    idle_at: Option<Instant>,
    now: Instant,
) -> AtTimer {
    if signal.is_some_and(ConnectionSignal::take_wake_permit) {
        AtTimer::Woken
    } else if idle_at.is_some_and(|at| now >= at) {
        AtTimer::Quiet
    } else {
        AtTimer::Busy
    }
}

/// An idle connection without a task: its transport and what of its driver outlives an idle
/// period. Buffers, deferred answers, barriers, pauses and exchanges in progress are all empty
/// when a connection parks, so they are not kept.
pub(crate) struct ParkedConnection {
    transport: ParkedTransport,
    state: IdleDriver,
}

/// How a parked connection's input reaches the lot.
enum ParkedTransport {
    /// A plain TCP socket that Tokio no longer watches: the lot's readiness set does.
    Socket(mio::net::TcpStream),
    /// The same socket, held by the lot without a file descriptor (`parking/held.rs`), which
    /// watches it: the lot gives it back ([`ParkedConnection::restore_socket`]) before the
    /// connection resumes.
    Held,
    /// Any other stream, which wakes the lot through the waker it was last polled with.
    /// Boxed: a parked TCP connection need not have its room.
    Stream(Box<ParkedStream>),
}

/// The part of a driver that an idle connection keeps.
pub(super) struct IdleDriver {
    shared: Arc<Shared>,
    peer: PeerInfo,
    /// Compact when nothing is under way, which is the rule for a parked connection.
    session: IdleServerSession,
    decoder: Decoder,
    attached: Attached,
    slot: Option<OwnedSemaphorePermit>,
    client_departure: Option<Departure>,
    publish_bucket: Option<TokenBucket>,
}

impl std::fmt::Debug for ParkedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedConnection")
            .field("peer", &self.state.peer)
            .field("client", &self.state.attached.client_id)
            .finish_non_exhaustive()
    }
}

impl ParkedConnection {
    /// A parked stream that wakes the lot itself (see `park_stream.rs`).
    pub(super) fn stream(state: IdleDriver, stream: Box<ParkedStream>) -> Box<Self> {
        Self::new(state, ParkedTransport::Stream(stream))
    }

    fn new(state: IdleDriver, transport: ParkedTransport) -> Box<Self> {
        Box::new(ParkedConnection { transport, state })
    }

    /// The socket, for the lot's readiness set; `None` for a stream that wakes the lot
    /// itself.
    pub(crate) fn socket_mut(&mut self) -> Option<&mut mio::net::TcpStream> {
        match &mut self.transport {
            ParkedTransport::Socket(socket) => Some(socket),
            ParkedTransport::Held | ParkedTransport::Stream(_) => None,
        }
    }

    /// Takes the socket, for the lot to hold without a file descriptor; `None` for a stream.
    pub(crate) fn take_socket(&mut self) -> Option<mio::net::TcpStream> {
        match std::mem::replace(&mut self.transport, ParkedTransport::Held) {
            ParkedTransport::Socket(socket) => Some(socket),
            other => {
                self.transport = other;
                None
            }
        }
    }

    /// Whether the lot holds the socket ([`Self::take_socket`]).
    pub(crate) fn socket_is_held(&self) -> bool {
        matches!(self.transport, ParkedTransport::Held)
    }

    /// Gives back the socket taken with [`Self::take_socket`].
    pub(crate) fn restore_socket(&mut self, socket: mio::net::TcpStream) {
        self.transport = ParkedTransport::Socket(socket);
    }

    /// The signal the router wakes this connection through.
    pub(crate) fn signal(&self) -> &Arc<ConnectionSignal> {
        self.state.attached.signal.signal()
    }

    /// When the connection must run again even if nothing wakes it (keep alive).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.state.session.poll_timeout()
    }

    /// Serves the connection again. With `first_step_here`, the driver first runs here, up to
    /// its first wait, and gets a task only if it has to wait: a client that closed its
    /// connection (a whole fleet going away at once, for instance) is then finished without
    /// one. Only the lot's own task may ask for that; a wake from the router holds the
    /// router's lock, which the driver takes. A stream's driver always runs in a new task.
    pub(crate) fn resume(self: Box<Self>, runtime: &Handle, first_step_here: bool) {
        // A wake may come from a thread outside the runtime; registering the socket with
        // Tokio needs it.
        let _runtime = runtime.enter();
        let ParkedConnection {
            transport, state, ..
        } = *self;
        let mut socket = match transport {
            ParkedTransport::Socket(socket) => socket,
            ParkedTransport::Held => {
                // The lot could not give the socket back (see `ParkingLot::resume`): it is
                // gone, and the session is handed back as if the client had left.
                let closed = state.into_driver(tokio::io::empty(), BytesMut::new(), None);
                runtime.spawn(Box::pin(closed.finish()));
                return;
            }
            ParkedTransport::Stream(parked) => {
                let ParkedStream {
                    stream,
                    beside,
                    quic,
                } = *parked;
                // A QUIC stream goes back to the thread its connection lives on, if any.
                let runtime = quic
                    .as_ref()
                    .and_then(|hooks| hooks.control.as_ref())
                    .and_then(|control| control.connection.runtime())
                    .unwrap_or(runtime)
                    .clone();
                let driver = state.into_driver(stream, BytesMut::new(), quic);
                runtime.spawn(drive_stream(driver, beside));
                return;
            }
        };
        // Read here, not through Tokio: a socket registered anew reports no readiness until
        // Tokio's next turn, and input that already came (a DISCONNECT and the end of the
        // stream, typically) can be handled at once.
        let mut read_buf = BytesMut::new();
        let ended = match read::read_ready_into(&mut socket, &mut read_buf) {
            Ok(0) => true,
            Ok(n) => {
                state.shared.metrics.bytes_received.add(n as u64);
                false
            }
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        // Built here rather than in one async block, which would keep the parked state in
        // the future beside the driver made of it.
        let mut serving: Pin<Box<dyn Future<Output = ()> + Send>> = if ended {
            // Nothing more can be read or sent: the session is handed back as the client
            // left it.
            drop(socket);
            let mut closed = state.into_driver(tokio::io::empty(), read_buf, None);
            closed.decode_input();
            Box::pin(closed.finish())
        } else {
            match TcpStream::from_std(std::net::TcpStream::from(socket)) {
                Ok(stream) => {
                    let mut driver = state.into_driver(stream, read_buf, None);
                    driver.decode_input();
                    Box::pin(drive_tcp(driver))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a parked connection could not be resumed");
                    Box::pin(
                        state
                            .into_driver(tokio::io::empty(), read_buf, None)
                            .finish(),
                    )
                }
            }
        };
        if first_step_here {
            // A waker that does nothing is enough for one step: the task spawned below polls
            // again at once, and every Tokio resource the driver waits on (socket readiness,
            // notifications, timers, channels) reports on that poll what happened meanwhile.
            // Unconstrained: the lot's task has spent its cooperative budget on earlier
            // connections, and a resource out of budget would only report `Pending`.
            let step = std::pin::pin!(tokio::task::unconstrained(serving.as_mut()))
                .poll(&mut Context::from_waker(Waker::noop()));
            if step.is_ready() {
                return;
            }
        }
        runtime.spawn(serving);
    }
}

/// Runs a TCP connection's driver until the connection ends or parks.
///
/// Not an `async fn`: those keep their arguments twice in their future (the argument and
/// the body's binding of it), and this argument is the whole driver.
#[allow(clippy::manual_async_fn)]
pub(super) fn drive_tcp(mut driver: Driver<TcpStream>) -> impl Future<Output = ()> + Send {
    async move {
        let lot = driver.shared.parking.clone();
        match driver.run(lot.is_some()).await {
            RunEnd::Closed => Box::pin(driver.finish()).await,
            RunEnd::Idle => {
                if let Some(lot) = lot {
                    park(driver, &lot);
                }
            }
        }
    }
}

/// Hands `driver`'s connection to the lot; a connection woken meanwhile is resumed at once.
fn park(driver: Driver<TcpStream>, lot: &Arc<ParkingLot>) {
    let Some((state, stream, _)) = IdleDriver::from_idle(driver) else {
        // Only attached connections are parkable (`is_parkable`): nothing else reaches here.
        return;
    };
    match stream.into_std() {
        Ok(socket) => {
            let parked = ParkedConnection::new(
                state,
                ParkedTransport::Socket(mio::net::TcpStream::from_std(socket)),
            );
            if let Err(woken) = lot.park(parked, None) {
                woken.resume(lot.runtime(), false);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "an idle connection could not be parked");
            let closed = state.into_driver(tokio::io::empty(), BytesMut::new(), None);
            lot.runtime().spawn(Box::pin(closed.finish()));
        }
    }
}

impl IdleDriver {
    /// Keeps what an idle driver must remember, with the spare room of its session's queues
    /// and maps let go, and hands back its stream and QUIC hooks; `None` if it is not
    /// attached to a session.
    pub(super) fn from_idle<S>(
        mut driver: Driver<S>,
    ) -> Option<(Self, S, Option<Box<QuicStreamHooks>>)> {
        driver.trim();
        let Driver {
            shared,
            stream,
            peer,
            session,
            decoder,
            attached,
            slot,
            client_departure,
            publish_bucket,
            quic,
            ..
        } = driver;
        let attached = attached?;
        let state = IdleDriver {
            shared,
            peer,
            session: session.into_idle(),
            decoder,
            attached,
            slot,
            client_departure,
            publish_bucket,
        };
        Some((state, stream, quic))
    }

    /// A driver again, around `stream`, with `read_buf` as what was read so far.
    pub(super) fn into_driver<S>(
        self,
        stream: S,
        read_buf: BytesMut,
        quic: Option<Box<QuicStreamHooks>>,
    ) -> Driver<S> {
        Driver {
            shared: self.shared,
            stream,
            peer: self.peer,
            session: self.session.into_session(),
            decoder: self.decoder,
            read_buf,
            write_buf: BytesMut::new(),
            attached: Some(self.attached),
            slot: self.slot,
            client_departure: self.client_departure,
            pending: None,
            // Only enforced until the session is attached, which it is.
            connect_deadline: Instant::now(),
            auth: None,
            publish_bucket: self.publish_bucket,
            throttled_until: None,
            paused: None,
            unrouted: None,
            deferred: VecDeque::new(),
            barrier: None,
            quic,
            held: None,
            deliver_due: true,
            more_queued: false,
            answers_wait_for: None,
        }
    }
}
