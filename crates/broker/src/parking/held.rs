//! Parked sockets held without a file descriptor, so that a broker holds more idle
//! connections than its open-file limit (`RLIMIT_NOFILE`), which only an administrator can
//! raise. The socket goes into an io_uring ring's table of fixed files
//! ([`mquictt_socket_rings`]), its descriptor is closed, and the ring watches it for input;
//! each ring's own descriptor sits in the lot's readiness set under a token of its own
//! ([`ring_of`]). A socket gets a descriptor again when its connection resumes. When the
//! process has none to spare at that moment, the connection stays parked and is tried again
//! shortly ([`Released::NoDescriptor`]): it waits, and loses nothing.
//!
//! Which sockets go there is the broker's `idle_without_descriptor` setting. Under the default
//! (`Auto`), only a socket whose descriptor number is in the top quarter of the open-file
//! limit does: a broker far from its limit parks exactly as it did without this. The first
//! ring is opened with the lot, while descriptors are to spare; a kernel without the
//! operations (before Linux 6.8) or with io_uring switched off leaves every socket with its
//! descriptor, after one message in the log.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use mquictt_socket_rings::{is_out_of_descriptors, slots_per_ring, SocketRings};

use crate::config::IdleWithoutDescriptor;

/// The most rings the lot opens; their tokens are the last this many values of `usize`, far
/// above any connection's token (counted from 0).
const MAX_RINGS: usize = 1 << 16;

/// The ring a readiness token names, if it names one.
pub(super) fn ring_of(token: Token) -> Option<usize> {
    let from_top = usize::MAX - token.0;
    (from_top < MAX_RINGS).then_some(from_top)
}

fn ring_token(index: usize) -> Token {
    Token(usize::MAX - index)
}

/// The lot's sockets without descriptors.
pub(super) struct HeldSockets {
    /// Sockets whose descriptor is at least this go to the rings; `RawFd::MAX` for none.
    from_descriptor: RawFd,
    policy: IdleWithoutDescriptor,
    /// Fixed files per ring (`slots_per_ring`: at most the open-file soft limit).
    slots_per_ring: u32,
    /// Opened for the first socket held; never closed before the lot, which would close
    /// every socket in them.
    rings: Option<SocketRings>,
}

/// What [`HeldSockets::release`] gives.
pub(super) enum Released {
    /// The socket, with a descriptor again.
    Socket(mio::net::TcpStream),
    /// No descriptor to spare: the socket stays held and watched.
    NoDescriptor,
    /// The socket could not be given back and is closed.
    Lost(io::Error),
}

impl HeldSockets {
    /// Follows `policy`, against the process's open-file soft limit as it is now. The first
    /// ring is opened here, while descriptors are to spare: a broker that has reached its
    /// limit could open none.
    pub(super) fn new(policy: IdleWithoutDescriptor, registry: &Registry) -> Self {
        let soft = rlimit::Resource::NOFILE
            .get()
            .map_or(1024, |(soft, _hard)| soft);
        let from_descriptor = match policy {
            IdleWithoutDescriptor::Always => 0,
            IdleWithoutDescriptor::Never => RawFd::MAX,
            IdleWithoutDescriptor::Auto => RawFd::try_from(soft / 4 * 3).unwrap_or(RawFd::MAX),
        };
        let mut held = HeldSockets {
            from_descriptor,
            policy,
            slots_per_ring: slots_per_ring(soft),
            rings: None,
        };
        held.open(registry);
        held
    }

    /// How many sockets are held.
    pub(super) fn len(&self) -> usize {
        self.rings.as_ref().map_or(0, SocketRings::len)
    }

    /// Holds `socket`, parked as `token`, if the policy says so and the rings take it; hands
    /// it back otherwise, for the readiness set to watch.
    pub(super) fn hold(
        &mut self,
        registry: &Registry,
        token: usize,
        socket: mio::net::TcpStream,
    ) -> Result<(), mio::net::TcpStream> {
        if socket.as_raw_fd() < self.from_descriptor {
            return Err(socket);
        }
        let Some(rings) = self.open(registry) else {
            return Err(socket);
        };
        let key = token as u64;
        let opened = match rings.hold(key, OwnedFd::from(socket)) {
            Ok(opened) => opened,
            Err(refused) => {
                tracing::debug!(error = %refused.error, "an idle socket keeps its descriptor");
                return Err(mio::net::TcpStream::from(refused.socket));
            }
        };
        let Some(index) = opened else {
            return Ok(());
        };
        let Err(e) = watch_ring(registry, rings, index) else {
            return Ok(());
        };
        // Its sockets would never be seen ready: this one is taken back, and no further
        // socket is held, so the ring's other slots stay unused.
        tracing::warn!(error = %e, "idle connections keep their file descriptors from now on: a new ring could not be watched");
        let back = rings.release(key);
        self.stop_holding();
        match back {
            Ok(socket) => Err(mio::net::TcpStream::from(socket)),
            // Still held (its deadline or a wake resumes it), or lost, which the resume finds.
            Err(_) => Ok(()),
        }
    }

    /// Gives back the socket held for `token`.
    pub(super) fn release(&mut self, token: usize) -> Released {
        let Some(rings) = &mut self.rings else {
            return Released::Lost(io::Error::from(io::ErrorKind::NotFound));
        };
        match rings.release(token as u64) {
            Ok(socket) => Released::Socket(mio::net::TcpStream::from(socket)),
            Err(e) if is_out_of_descriptors(&e) => Released::NoDescriptor,
            Err(e) => Released::Lost(e),
        }
    }

    /// Adds to `out` the tokens of sockets in ring `index` that turned readable or closed.
    pub(super) fn take_ready(&mut self, index: usize, out: &mut Vec<usize>) {
        let Some(rings) = &mut self.rings else {
            return;
        };
        let mut keys = Vec::new();
        rings.take_ready(index, &mut keys);
        out.extend(keys.into_iter().filter_map(|key| usize::try_from(key).ok()));
    }

    /// Holds no further socket; those held stay until they resume.
    fn stop_holding(&mut self) {
        self.from_descriptor = RawFd::MAX;
    }

    /// The rings, opened (and the first watched) if they are not yet. A process short of
    /// descriptors tries again with the next socket; one whose kernel cannot hold sockets so
    /// gives up.
    fn open(&mut self, registry: &Registry) -> Option<&mut SocketRings> {
        if self.rings.is_none() && self.from_descriptor != RawFd::MAX {
            let opened = SocketRings::new(self.slots_per_ring).and_then(|mut rings| {
                watch_ring(registry, &mut rings, 0)?;
                Ok(rings)
            });
            match opened {
                Ok(rings) => self.rings = Some(rings),
                Err(e) if is_out_of_descriptors(&e) => {
                    tracing::debug!(error = %e, "no descriptor to spare for a ring yet");
                }
                Err(e) => {
                    // Only worth a warning when it was asked for: most brokers never come
                    // near their limit.
                    if self.policy == IdleWithoutDescriptor::Always {
                        tracing::warn!(error = %e, "idle connections keep their file descriptors: they cannot be held without here (io_uring, Linux 6.8 or later)");
                    } else {
                        tracing::info!(error = %e, "idle connections will keep their file descriptors: they cannot be held without here (io_uring, Linux 6.8 or later)");
                    }
                    self.stop_holding();
                }
            }
        }
        self.rings.as_mut()
    }
}

/// Puts ring `index`'s descriptor in the readiness set.
fn watch_ring(registry: &Registry, rings: &mut SocketRings, index: usize) -> io::Result<()> {
    if index >= MAX_RINGS {
        return Err(io::Error::other("too many rings"));
    }
    let fd = rings
        .ring_fd(index)
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?
        .as_raw_fd();
    registry.register(&mut SourceFd(&fd), ring_token(index), Interest::READABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_tokens_are_told_apart_from_connection_tokens() {
        assert_eq!(ring_of(ring_token(0)), Some(0));
        assert_eq!(ring_of(ring_token(MAX_RINGS - 1)), Some(MAX_RINGS - 1));
        assert_eq!(ring_of(Token(0)), None);
        assert_eq!(ring_of(Token(1 << 40)), None);
    }

    #[test]
    fn never_holds_nothing_and_always_holds_every_socket() {
        let poll = mio::Poll::new().unwrap();
        let never = HeldSockets::new(IdleWithoutDescriptor::Never, poll.registry());
        assert_eq!(never.from_descriptor, RawFd::MAX);
        assert!(never.rings.is_none(), "no ring is opened");
        let always = HeldSockets::new(IdleWithoutDescriptor::Always, poll.registry());
        assert_eq!(always.from_descriptor, 0);
        assert!(always.rings.is_some(), "the first ring is opened at once");
        let auto = HeldSockets::new(IdleWithoutDescriptor::Auto, poll.registry());
        assert!(
            auto.from_descriptor > 0,
            "auto waits for the top quarter of the limit"
        );
    }
}
