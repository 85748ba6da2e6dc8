//! The parking lot: idle connections wait here without a task of their own. A driver that has
//! had nothing to do for a while hands over its connection in compact form
//! (`connection/park.rs`), and the connection's next deadline (keep alive) joins one ordered
//! set of deadlines. A plain TCP socket is taken out of Tokio's reactor and watched in one
//! readiness set ([`mio::Poll`]) that a single task waits on. Any other stream (TLS, WebSocket,
//! the control stream of a QUIC connection) keeps its own registration: it was last polled with
//! a waker of the lot's making ([`ParkingLot::waker`]), which stands for the connection's place
//! here. Input, the deadline, that waker, or a wake from the router (a message queued, a close
//! asked, through the connection's [`ConnectionSignal`](crate::router::ConnectionSignal)) takes
//! the connection out again and spawns a driver that carries on exactly where the last one
//! stopped. The lot knows nothing of MQTT: it holds sockets, streams, deadlines and the values
//! to resume. A parked TCP socket may also leave the process's table of file descriptors
//! while it waits (`held.rs`), so that idle connections are not bounded by the open-file
//! limit.

mod held;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};
use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::config::IdleWithoutDescriptor;
use crate::connection::ParkedConnection;
use crate::router::ParkedAt;
use held::{ring_of, HeldSockets, Released};
use mquictt_socket_rings::RELEASE_RETRY;

/// Readiness events taken from the set per system call.
const EVENTS_PER_POLL: usize = 1024;

/// Idle connections held without tasks.
pub(crate) struct ParkingLot {
    /// Registers and deregisters sockets in the readiness set the lot's task polls.
    registry: mio::Registry,
    /// Where resumed drivers are spawned (a wake may come from any thread).
    runtime: Handle,
    state: Mutex<LotState>,
    /// Wakes the lot's task when a deadline earlier than all others was added.
    earlier_deadline: Notify,
    /// Wakes the lot's task when a parked stream's waker fired (see [`LotWaker`]).
    stream_woken: Notify,
}

impl std::fmt::Debug for ParkingLot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkingLot")
            .field("parked", &self.len())
            .finish_non_exhaustive()
    }
}

struct LotState {
    /// Tokens are never reused, so a late wake for a connection that has left cannot resume
    /// another one.
    next_token: usize,
    /// The parked connections; a parked connection's deadline does not change while it is
    /// parked, so it is found again from the connection itself.
    parked: HashMap<usize, Box<ParkedConnection>>,
    deadlines: BTreeSet<(Instant, usize)>,
    /// Tokens handed out for a stream that is being readied to park (see [`ParkingLot::reserve`]),
    /// each with whether its waker fired meanwhile. Rarely more than one or two at a time.
    reserved: Vec<(usize, bool)>,
    /// Parked streams whose waker fired, for the lot's task to resume.
    woken: Vec<usize>,
    /// Sockets held without a file descriptor.
    held: HeldSockets,
    /// Connections that were to resume while no descriptor was to spare for their socket,
    /// and when they are tried again.
    no_descriptor: HashSet<usize>,
    retry_at: Option<Instant>,
}

impl ParkingLot {
    /// Creates the lot and starts its task on the current runtime; `without_descriptor` says
    /// which parked sockets leave the table of file descriptors.
    pub(crate) fn start(without_descriptor: IdleWithoutDescriptor) -> io::Result<Arc<Self>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let held = HeldSockets::new(without_descriptor, &registry);
        // Deprecated because a type that does not own its descriptor could close it under
        // Tokio; `mio::Poll` owns its epoll descriptor and is only dropped with the watcher.
        #[allow(deprecated)]
        let readiness = AsyncFd::new(poll)?;
        let lot = Arc::new(Self {
            registry,
            runtime: Handle::current(),
            state: Mutex::new(LotState {
                next_token: 0,
                parked: HashMap::new(),
                deadlines: BTreeSet::new(),
                reserved: Vec::new(),
                woken: Vec::new(),
                held,
                no_descriptor: HashSet::new(),
                retry_at: None,
            }),
            earlier_deadline: Notify::new(),
            stream_woken: Notify::new(),
        });
        tokio::spawn(watch(lot.clone(), readiness));
        Ok(lot)
    }

    /// How many connections are parked.
    pub(crate) fn len(&self) -> usize {
        self.state().parked.len()
    }

    /// How many parked connections' sockets are held without a file descriptor.
    pub(crate) fn held_without_descriptor(&self) -> usize {
        self.state().held.len()
    }

    /// The runtime resumed drivers run on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// A token for a stream about to park, so that it can be polled with [`Self::waker`]
    /// before it is handed over: a wake in between is remembered, and [`Self::park`] then
    /// hands the connection back instead of parking it. Given back by `park`, or by
    /// [`Self::release`] when the connection does not park after all.
    pub(crate) fn reserve(&self) -> usize {
        let mut state = self.state();
        let token = state.next_token;
        state.next_token += 1;
        state.reserved.push((token, false));
        token
    }

    /// Gives back a token from [`Self::reserve`] that is not used to park.
    pub(crate) fn release(&self, token: usize) {
        self.state()
            .reserved
            .retain(|(reserved, _)| *reserved != token);
    }

    /// A waker that resumes the connection parked (or about to park) as `token`. It holds the
    /// lot weakly: a stream that outlives the lot's runtime does not keep the lot alive.
    pub(crate) fn waker(self: &Arc<Self>, token: usize) -> Waker {
        Waker::from(Arc::new(LotWaker {
            lot: Arc::downgrade(self),
            token,
        }))
    }

    /// Parks `connection`, unless its signal says it was woken since it last looked, its
    /// socket cannot be watched, or (with `reserved`, a token from [`Self::reserve`]) its
    /// waker fired meanwhile: then it is handed back, to be resumed at once.
    pub(crate) fn park(
        self: &Arc<Self>,
        connection: Box<ParkedConnection>,
        reserved: Option<usize>,
    ) -> Result<(), Box<ParkedConnection>> {
        let signal = connection.signal().clone();
        let deadline = connection.deadline();
        let mut connection = Some(connection);
        let parked = signal.park_unless_woken(|| {
            let mut state = self.state();
            let token = match reserved {
                Some(token) => {
                    let at = state.reserved.iter().position(|(t, _)| *t == token)?;
                    let (_, woken) = state.reserved.swap_remove(at);
                    if woken {
                        return None;
                    }
                    token
                }
                None => state.next_token,
            };
            let mut taken = connection.take()?;
            if let Some(socket) = taken.take_socket() {
                if let Err(mut socket) = state.held.hold(&self.registry, token, socket) {
                    let registered =
                        self.registry
                            .register(&mut socket, Token(token), Interest::READABLE);
                    taken.restore_socket(socket);
                    if let Err(e) = registered {
                        tracing::debug!(error = %e, "idle connection could not be parked");
                        connection = Some(taken);
                        return None;
                    }
                }
            }
            if reserved.is_none() {
                state.next_token += 1;
            }
            let earliest = state.deadlines.first().map(|(at, _)| *at);
            if let Some(at) = deadline {
                state.deadlines.insert((at, token));
                if earliest.is_none_or(|earliest| at < earliest) {
                    self.earlier_deadline.notify_one();
                }
            }
            state.parked.insert(token, taken);
            Some(ParkedAt {
                lot: self.clone(),
                token,
            })
        });
        if let (false, Some(token)) = (parked, reserved) {
            // Not parked before its place was looked at (a wake or close from the router).
            self.release(token);
        }
        match (parked, connection) {
            (false, Some(connection)) => Err(connection),
            _ => Ok(()),
        }
    }

    /// Resumes the connection parked as `token`, if it still is (a wake from the router).
    pub(crate) fn unpark(&self, token: usize) {
        self.resume(token, false);
    }

    /// What a waker from [`Self::waker`] does: has the lot's task resume the connection
    /// parked as `token`, or remembers the wake if the connection is still on its way here.
    /// The waker does not resume it itself: a stream may call it while holding its own locks
    /// (quinn wakes a stream's reader and writer with the connection's lock held), and a
    /// resumed driver may be dropped at once, stream and all, if the runtime is shutting
    /// down, and dropping a stream takes those locks.
    fn wake_token(&self, token: usize) {
        {
            let mut state = self.state();
            if !state.parked.contains_key(&token) {
                if let Some(entry) = state.reserved.iter_mut().find(|(t, _)| *t == token) {
                    entry.1 = true;
                }
                // Otherwise a late wake for a connection that has left: nothing to do.
                return;
            }
            if !state.woken.contains(&token) {
                state.woken.push(token);
            }
        }
        self.stream_woken.notify_one();
    }

    /// Resumes the parked streams whose waker fired; run by the lot's task.
    fn resume_woken(&self) {
        let woken = std::mem::take(&mut self.state().woken);
        for token in woken {
            // A token whose connection was resumed another way meanwhile is no longer parked.
            self.resume(token, true);
        }
    }

    /// Takes the connection parked as `token` out of the lot and serves it again; with
    /// `from_lot_task`, its first step runs here (see `ParkedConnection::resume`).
    fn resume(&self, token: usize, from_lot_task: bool) {
        let (mut connection, was_held) = {
            let mut state = self.state();
            let Some(mut parked) = state.parked.remove(&token) else {
                return;
            };
            if let Some(at) = parked.deadline() {
                state.deadlines.remove(&(at, token));
            }
            let was_held = parked.socket_is_held();
            if was_held {
                match state.held.release(token) {
                    Released::Socket(socket) => parked.restore_socket(socket),
                    Released::NoDescriptor => {
                        // Stays parked, its socket still watched, until a descriptor is free.
                        state.parked.insert(token, parked);
                        state.no_descriptor.insert(token);
                        if state.retry_at.is_none() {
                            state.retry_at = Some(Instant::now() + RELEASE_RETRY);
                            self.earlier_deadline.notify_one();
                        }
                        return;
                    }
                    Released::Lost(e) => {
                        // Resumed without a socket, the session handed back as the client
                        // left it.
                        tracing::debug!(error = %e, "an idle connection's socket was lost");
                    }
                }
            }
            (parked, was_held)
        };
        if let (false, Some(socket)) = (was_held, connection.socket_mut()) {
            // Deregistered before Tokio registers it again; failing only if it was never
            // registered, which cannot be for a parked socket.
            let _ = self.registry.deregister(socket);
        }
        connection.signal().unparked(token);
        connection.resume(&self.runtime, from_lot_task);
    }

    /// Resumes every connection whose deadline has come, and tries again those that were
    /// short of a descriptor when their retry is due; returns when to look again.
    fn resume_due(&self, now: Instant) -> Option<Instant> {
        let retry = {
            let mut state = self.state();
            match state.retry_at {
                Some(at) if at <= now => {
                    state.retry_at = None;
                    std::mem::take(&mut state.no_descriptor)
                }
                _ => HashSet::new(),
            }
        };
        for token in retry {
            self.resume(token, true);
        }
        loop {
            let due = {
                let state = self.state();
                match state.deadlines.first() {
                    Some(&(at, token)) if at <= now => token,
                    next => {
                        let next = next.map(|&(at, _)| at);
                        return [next, state.retry_at].into_iter().flatten().min();
                    }
                }
            };
            self.resume(due, true);
        }
    }

    /// Resumes the connections whose socket, held in ring `index`, turned readable.
    fn resume_ready_in_ring(&self, index: usize) {
        let mut ready = Vec::new();
        self.state().held.take_ready(index, &mut ready);
        for token in ready {
            self.resume(token, true);
        }
    }

    fn state(&self) -> MutexGuard<'_, LotState> {
        // No code panics while holding it; a poisoned lock still holds consistent maps.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The waker of a parked stream: its wake resumes the connection.
struct LotWaker {
    lot: Weak<ParkingLot>,
    token: usize,
}

impl Wake for LotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A stream may wake from inside its own poll, or from a thread holding the stream's
        // locks: this only takes the lot's lock, which no stream code holds, and leaves the
        // resuming to the lot's task.
        if let Some(lot) = self.lot.upgrade() {
            lot.wake_token(self.token);
        }
    }
}

/// The lot's task: waits for readiness of any parked socket or the earliest deadline, and
/// resumes the connections concerned.
async fn watch(lot: Arc<ParkingLot>, mut readiness: AsyncFd<mio::Poll>) {
    let mut events = Events::with_capacity(EVENTS_PER_POLL);
    // Should the readiness set fail, deadlines and wakes from the router still resume
    // connections.
    let mut watching = true;
    loop {
        let next = lot.resume_due(Instant::now());
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            guard = readiness.readable_mut(), if watching => {
                let Ok(mut guard) = guard else {
                    tracing::warn!("the parking lot's readiness set failed; parked connections wait for their deadlines");
                    watching = false;
                    continue;
                };
                match guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "polling parked connections failed");
                        guard.clear_ready();
                        continue;
                    }
                }
                let mut taken = 0;
                for event in events.iter() {
                    taken += 1;
                    match ring_of(event.token()) {
                        Some(ring) => lot.resume_ready_in_ring(ring),
                        None => lot.resume(event.token().0, true),
                    }
                }
                // A full batch may have left more behind: poll again before waiting.
                if taken < EVENTS_PER_POLL {
                    guard.clear_ready();
                }
            }
            () = sleep => {}
            () = lot.earlier_deadline.notified() => {}
            () = lot.stream_woken.notified() => lot.resume_woken(),
        }
    }
}
