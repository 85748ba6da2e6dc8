//! Parking an idle plain-TCP connection and resuming it. A driver whose connection had nothing
//! to do for [`IDLE_BEFORE_PARKING`] (and nothing under way, see `Driver::is_parkable`) ends
//! its task: its socket leaves Tokio's reactor and the rest of its state moves, trimmed, into
//! a [`ParkedConnection`] that the broker's parking lot (`parking/`) holds. When the lot
//! resumes it (input, its deadline, a wake or close from the router), a new task rebuilds the
//! driver around the re-registered socket and runs it as before. A task costs a connection
//! several KiB whether it is busy or not; this is what keeps idle connections small. TLS,
//! WebSocket and QUIC connections keep their task (their streams are not plain sockets).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::runtime::Handle;

use super::{read, Driver, RunEnd};
use crate::metrics::Metrics;
use crate::parking::ParkingLot;
use crate::router::ConnectionSignal;

/// How long a connection must have been idle before it parks: long enough that a client
/// exchanging several messages a second keeps its task (parking and resuming cost a few
/// system calls and a task spawn), short enough that a burst of new connections (5,000 a
/// second in the idle benchmark) does not hold thousands of tasks at once, whose memory the
/// allocator keeps after they end.
pub(crate) const IDLE_BEFORE_PARKING: Duration = Duration::from_millis(200);

/// An idle connection without a task: the driver's state around a socket that Tokio no longer
/// watches.
pub(crate) struct ParkedConnection {
    driver: Driver<mio::net::TcpStream>,
    signal: Arc<ConnectionSignal>,
}

impl std::fmt::Debug for ParkedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedConnection")
            .field("peer", &self.driver.peer)
            .finish_non_exhaustive()
    }
}

impl ParkedConnection {
    /// The socket, for the lot's readiness set.
    pub(crate) fn socket_mut(&mut self) -> &mut mio::net::TcpStream {
        &mut self.driver.stream
    }

    /// The signal the router wakes this connection through.
    pub(crate) fn signal(&self) -> &Arc<ConnectionSignal> {
        &self.signal
    }

    /// When the connection must run again even if nothing wakes it (keep alive).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.driver.session.poll_timeout()
    }

    /// Serves the connection again. With `first_step_here`, the driver first runs here, up to
    /// its first wait, and gets a task only if it has to wait: a client that closed its
    /// connection (a whole fleet going away at once, for instance) is then finished without
    /// one. Only the lot's own task may ask for that; a wake from the router holds the
    /// router's lock, which the driver takes.
    pub(crate) fn resume(self: Box<Self>, runtime: &Handle, first_step_here: bool) {
        let mut driver = self.driver;
        let mut serving = Box::pin(async move {
            // Read here, not through Tokio: a socket registered anew reports no readiness
            // until Tokio's next turn, and input that already came (a DISCONNECT and the end
            // of the stream, typically) can be handled at once.
            let ended = match read::read_ready_into(&mut driver.stream, &mut driver.read_buf) {
                Ok(0) => true,
                Ok(n) => {
                    Metrics::add(&driver.shared.metrics.bytes_received, n as u64);
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            if ended {
                // Nothing more can be read or sent: the session is handed back as the
                // client left it.
                let mut closed = driver.into_closed();
                closed.decode_input();
                return closed.finish().await;
            }
            let resumed =
                driver.map_stream(|parked| TcpStream::from_std(std::net::TcpStream::from(parked)));
            match resumed {
                Ok(mut driver) => {
                    driver.decode_input();
                    drive_tcp(driver).await;
                }
                Err((dead, e)) => {
                    tracing::debug!(error = %e, "a parked connection could not be resumed");
                    dead.finish().await;
                }
            }
        });
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
pub(super) async fn drive_tcp(mut driver: Driver<TcpStream>) {
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

/// Hands `driver`'s connection to the lot; a connection woken meanwhile is resumed at once.
fn park(mut driver: Driver<TcpStream>, lot: &Arc<ParkingLot>) {
    let Some(signal) = driver.attached.as_ref().map(|a| a.signal.signal().clone()) else {
        // Only attached connections are parkable; nothing else reaches here.
        return;
    };
    driver.trim();
    match driver.map_stream(|stream| stream.into_std().map(mio::net::TcpStream::from_std)) {
        Ok(driver) => {
            if let Err(woken) = lot.park(Box::new(ParkedConnection { driver, signal })) {
                woken.resume(lot.runtime(), false);
            }
        }
        Err((dead, e)) => {
            tracing::debug!(error = %e, "an idle connection could not be parked");
            lot.runtime().spawn(Box::pin(dead.finish()));
        }
    }
}

impl<S> Driver<S> {
    /// Lets go of the spare room of buffers and maps that idle connections do not need.
    fn trim(&mut self) {
        self.read_buf = BytesMut::new();
        self.write_buf = BytesMut::new();
        self.deferred = VecDeque::new();
        if let Some(attached) = &mut self.attached {
            attached.in_flight.shrink_to_fit();
            attached.inbound_stored.shrink_to_fit();
        }
    }

    /// The same driver around a stream that is over: reads end, writes go nowhere.
    fn into_closed(self) -> Driver<tokio::io::Empty> {
        match self.map_stream(|_| Ok::<_, std::convert::Infallible>(tokio::io::empty())) {
            Ok(closed) | Err((closed, _)) => closed,
        }
    }

    /// The same driver around the same socket, watched differently; if the socket cannot be
    /// converted, the driver comes back around a closed stream, to be finished.
    #[allow(clippy::type_complexity)]
    fn map_stream<T, E>(
        self,
        convert: impl FnOnce(S) -> Result<T, E>,
    ) -> Result<Driver<T>, (Driver<tokio::io::Empty>, E)> {
        // Moves every field but the stream from `$from`; the types differ in the stream only.
        macro_rules! around {
            ($from:ident, $stream:expr) => {
                Driver {
                    stream: $stream,
                    shared: $from.shared,
                    peer: $from.peer,
                    session: $from.session,
                    decoder: $from.decoder,
                    read_buf: $from.read_buf,
                    write_buf: $from.write_buf,
                    attached: $from.attached,
                    slot: $from.slot,
                    client_departure: $from.client_departure,
                    pending: $from.pending,
                    connect_deadline: $from.connect_deadline,
                    auth: $from.auth,
                    publish_bucket: $from.publish_bucket,
                    throttled_until: $from.throttled_until,
                    paused: $from.paused,
                    deferred: $from.deferred,
                    barrier: $from.barrier,
                    quic: $from.quic,
                    held: $from.held,
                }
            };
        }
        match convert(self.stream) {
            Ok(stream) => Ok(around!(self, stream)),
            Err(e) => Err((around!(self, tokio::io::empty()), e)),
        }
    }
}
