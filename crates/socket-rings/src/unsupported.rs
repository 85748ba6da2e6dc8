//! [`SocketRings`] where there is no io_uring: it cannot be created.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::Refused;

/// Sockets held without file descriptors: only on Linux.
#[derive(Debug)]
pub struct SocketRings {
    never: std::convert::Infallible,
}

impl SocketRings {
    /// Fails: only Linux can hold sockets without descriptors.
    pub fn new(_slots_per_ring: u32) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "holding sockets without file descriptors needs Linux's io_uring",
        ))
    }

    /// How many sockets are held.
    pub fn len(&self) -> usize {
        match self.never {}
    }

    /// Whether no socket is held.
    pub fn is_empty(&self) -> bool {
        match self.never {}
    }

    /// Whether a socket is held under `key`.
    pub fn contains(&self, _key: u64) -> bool {
        match self.never {}
    }

    /// How many rings are open.
    pub fn rings(&self) -> usize {
        match self.never {}
    }

    /// The descriptor of ring `index`.
    pub fn ring_fd(&self, _index: usize) -> Option<BorrowedFd<'_>> {
        match self.never {}
    }

    /// Holds `socket` under `key`.
    pub fn hold(&mut self, _key: u64, _socket: OwnedFd) -> Result<Option<usize>, Refused> {
        match self.never {}
    }

    /// Gives the socket under `key` a descriptor again.
    pub fn release(&mut self, _key: u64) -> io::Result<OwnedFd> {
        match self.never {}
    }

    /// Stops holding the socket under `key`.
    pub fn let_go(&mut self, _key: u64) {
        match self.never {}
    }

    /// Keys of sockets that turned readable.
    pub fn take_ready(&mut self, _index: usize, _out: &mut Vec<u64>) {
        match self.never {}
    }
}
