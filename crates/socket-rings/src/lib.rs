//! Idle sockets held without file descriptors.
//!
//! Every open socket of a process normally takes a file descriptor, and the open-file limit
//! (`RLIMIT_NOFILE`) caps how many a process may hold. Only an administrator can raise its
//! hard value. A broker holding idle connections past that limit can still keep them: Linux's
//! io_uring keeps a table of *fixed files* per ring, whose entries hold a reference to an open
//! file of their own. A socket placed in such a table keeps its connection after its file
//! descriptor is closed; the ring watches it for input (`POLL_ADD` on the fixed file); and
//! `FIXED_FD_INSTALL` (Linux 6.8) gives it a file descriptor again when its connection has
//! something to do.
//!
//! A ring's table may hold no more files than the open-file limit allows descriptors (and
//! holds at most [`MOST_SLOTS_PER_RING`] here), so [`SocketRings`] opens as many rings as it
//! needs: each ring takes one descriptor, and holds up to its table's size of sockets.
//!
//! On other systems [`SocketRings::new`] fails with [`std::io::ErrorKind::Unsupported`].
//!
//! This crate holds the project's only `unsafe` code besides `mquictt-malloc`: submitting an
//! io_uring operation, and taking ownership of the descriptor the kernel installed.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::SocketRings;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::SocketRings;

/// The largest key a socket may be held under.
pub const MAX_KEY: u64 = (1 << 62) - 1;

/// The most fixed files per ring. The kernel keeps each ring's table in memory of its own
/// whether it is used or not: 16,384 slots take 128 KiB, 20,000 took 256 KiB (ten rings each,
/// `VmallocUsed`). Rings are added as they fill, so a smaller table costs only more rings, each
/// a descriptor.
pub const MOST_SLOTS_PER_RING: u32 = 1 << 14;

/// Fixed files per ring for a process whose open-file soft limit is `soft_limit`: the kernel
/// refuses a table larger than that limit.
pub fn slots_per_ring(soft_limit: u64) -> u32 {
    u32::try_from(soft_limit.clamp(1, u64::from(MOST_SLOTS_PER_RING))).unwrap_or(1)
}

/// How long to wait before asking again to release a socket that found no descriptor to spare
/// ([`is_out_of_descriptors`]): long enough for connections that have resumed to do their work
/// and give theirs up, short enough that a waiting client is hardly kept waiting.
pub const RELEASE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// A socket that could not be held, handed back with the reason.
#[derive(Debug)]
pub struct Refused {
    /// The socket, still open.
    pub socket: std::os::fd::OwnedFd,
    /// Why it was not held.
    pub error: std::io::Error,
}

/// Whether `error` says the process (or the system) has no file descriptor to spare: the
/// socket stays held, and a release may succeed once other descriptors are closed.
pub fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE)
}

/// `EMFILE` and `ENFILE`, the same on every Linux architecture.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
