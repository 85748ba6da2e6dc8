//! Idle holders without file descriptors: when a run asks for more connections than the
//! process's open-file limit allows, each idle holder's plain TCP socket waits in an io_uring
//! ring ([`mquictt_socket_rings`]) instead of the table of descriptors, as the broker's parked
//! sockets do. A holder gets its socket back when the broker sends something (or closes), and
//! to ping; at the end of the run the socket is closed from the ring, without DISCONNECT,
//! since a hundred thousand holders cannot all have a descriptor at once to send one.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use mquictt_socket_rings::{is_out_of_descriptors, slots_per_ring, SocketRings};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, watch};

/// The rings of one run, and who waits on which socket.
pub(crate) struct HolderRings {
    state: Mutex<State>,
    /// Ends the rings' watchers ([`Self::close`]).
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for HolderRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderRings").finish_non_exhaustive()
    }
}

struct State {
    rings: SocketRings,
    /// Each held socket's holder, told when its socket turns readable.
    waiting: HashMap<u64, oneshot::Sender<()>>,
}

/// A ring's descriptor for Tokio's reactor, with the rings it belongs to: they, and so the
/// descriptor, stay open for as long as the reactor may refer to it.
struct RingFd {
    rings: Arc<HolderRings>,
    fd: RawFd,
}

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl HolderRings {
    /// Opens the first ring, sized for the open-file soft limit `soft_limit`, and starts
    /// watching it; the caller runs [`Self::close`] when the run ends.
    pub(crate) fn open(soft_limit: u64) -> io::Result<Arc<Self>> {
        let rings = Arc::new(HolderRings {
            state: Mutex::new(State {
                rings: SocketRings::new(slots_per_ring(soft_limit))?,
                waiting: HashMap::new(),
            }),
            closing: watch::Sender::new(false),
        });
        rings.watch(0)?;
        Ok(rings)
    }

    /// Stops watching; the rings, and every socket still in them, close once no holder refers
    /// to them.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Holds `socket` under `key`; the receiver fires when it turns readable or closed.
    pub(crate) fn hold(
        self: &Arc<Self>,
        key: u64,
        socket: std::net::TcpStream,
    ) -> Result<oneshot::Receiver<()>, (std::net::TcpStream, io::Error)> {
        let (tell, told) = oneshot::channel();
        let opened = {
            let mut state = self.state();
            let opened = state
                .rings
                .hold(key, OwnedFd::from(socket))
                .map_err(|refused| (std::net::TcpStream::from(refused.socket), refused.error))?;
            state.waiting.insert(key, tell);
            opened
        };
        if let Some(index) = opened {
            if let Err(e) = self.watch(index) {
                // Its sockets are still given back to ping, and at the end.
                tracing::warn!(error = %e, "a ring of idle holders cannot be watched");
            }
        }
        Ok(told)
    }

    /// Gives back the socket held under `key`; `Ok(None)` while the process has no
    /// descriptor to spare (try again after [`RELEASE_RETRY`]).
    ///
    /// [`RELEASE_RETRY`]: mquictt_socket_rings::RELEASE_RETRY
    pub(crate) fn release(&self, key: u64) -> io::Result<Option<std::net::TcpStream>> {
        let mut state = self.state();
        match state.rings.release(key) {
            Ok(socket) => {
                state.waiting.remove(&key);
                Ok(Some(std::net::TcpStream::from(socket)))
            }
            Err(e) if is_out_of_descriptors(&e) => Ok(None),
            Err(e) => {
                state.waiting.remove(&key);
                Err(e)
            }
        }
    }

    /// Closes the socket held under `key`.
    pub(crate) fn let_go(&self, key: u64) {
        let mut state = self.state();
        state.waiting.remove(&key);
        state.rings.let_go(key);
    }

    /// Watches ring `index` until [`Self::close`].
    fn watch(self: &Arc<Self>, index: usize) -> io::Result<()> {
        let fd = self
            .state()
            .rings
            .ring_fd(index)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?
            .as_raw_fd();
        let ring = RingFd {
            rings: self.clone(),
            fd,
        };
        // Deprecated because a type that does not own its descriptor could close it under
        // Tokio; `RingFd` keeps the rings, which own it, until Tokio has let go of it.
        #[allow(deprecated)]
        let readiness = AsyncFd::with_interest(ring, Interest::READABLE)?;
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            let rings = readiness.get_ref().rings.clone();
            loop {
                tokio::select! {
                    ready = readiness.readable() => {
                        let Ok(mut guard) = ready else { return };
                        // Cleared before the completions are taken: one that comes after
                        // makes the descriptor readable again.
                        guard.clear_ready();
                        rings.wake_ready(index);
                    }
                    _ = closing.wait_for(|closed| *closed) => return,
                }
            }
        });
        Ok(())
    }

    /// Tells the holders whose socket in ring `index` turned readable.
    fn wake_ready(&self, index: usize) {
        let mut ready = Vec::new();
        let mut state = self.state();
        state.rings.take_ready(index, &mut ready);
        for key in ready {
            if let Some(tell) = state.waiting.remove(&key) {
                let _ = tell.send(());
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; the maps stay consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
