//! [`SocketRings`] on Linux, with io_uring.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use io_uring::{opcode, squeue, types, IoUring, Probe};

use crate::{is_out_of_descriptors, Refused, MAX_KEY};

/// The top two bits of an operation's user data say what it was; the rest is the key.
const POLL: u64 = 0;
const INSTALL: u64 = 1 << 62;
const CANCEL: u64 = 2 << 62;
const KIND: u64 = 3 << 62;

/// Submission queue entries per ring: every operation is submitted as soon as it is queued.
const SUBMISSION_ENTRIES: u32 = 16;

/// Completion queue entries per ring: room for that many sockets turning readable between two
/// looks at the ring. The kernel keeps completions that do not fit until there is room
/// (`IORING_FEAT_NODROP`), so this bounds memory, not correctness.
const COMPLETION_ENTRIES: u32 = 4096;

/// A new ring is opened once fewer than this fraction of a ring's slots are free.
const SPARE_FRACTION: usize = 8;

/// What a held socket is watched for: input, the peer closing its side, and (always reported)
/// errors and hang-ups.
const WATCHED: u32 = (libc::POLLIN | libc::POLLRDHUP) as u32;

/// Sockets held in the fixed-file tables of io_uring rings, each under a key of the caller's
/// choosing, watched for input.
///
/// Not thread-safe by itself: the caller keeps it behind its own lock. Each ring's descriptor
/// ([`Self::ring_fd`]) turns readable when a held socket has input; [`Self::take_ready`] then
/// says which. Watch it edge-triggered or level-triggered: either works, since `take_ready`
/// takes every completion there is.
pub struct SocketRings {
    rings: Vec<Ring>,
    slots_per_ring: u32,
    completion_entries: u32,
    held: HashMap<u64, Place>,
    /// Keys whose socket turned readable, seen while a release looked for its own completion.
    seen: Vec<u64>,
}

impl std::fmt::Debug for SocketRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRings")
            .field("rings", &self.rings.len())
            .field("slots_per_ring", &self.slots_per_ring)
            .field("held", &self.held.len())
            .finish()
    }
}

/// Where a held socket is.
#[derive(Debug, Clone, Copy)]
struct Place {
    ring: usize,
    slot: u32,
}

struct Ring {
    uring: IoUring,
    /// Slots of the table holding no socket.
    free: Vec<u32>,
}

impl SocketRings {
    /// Opens the first ring, with a table of `slots_per_ring` files (at most the open-file
    /// soft limit: the kernel refuses larger tables). Fails if this kernel lacks an operation
    /// this needs (Linux 6.8 or later has them all) or io_uring is switched off
    /// (`kernel.io_uring_disabled`, a seccomp filter).
    pub fn new(slots_per_ring: u32) -> io::Result<Self> {
        Self::with_completion_entries(slots_per_ring, COMPLETION_ENTRIES)
    }

    /// [`Self::new`] with completion queues of `completion_entries` (at least
    /// [`SUBMISSION_ENTRIES`]).
    fn with_completion_entries(slots_per_ring: u32, completion_entries: u32) -> io::Result<Self> {
        let first = Ring::open(slots_per_ring, completion_entries)?;
        let mut probe = Probe::new();
        first.uring.submitter().register_probe(&mut probe)?;
        let needed = [
            opcode::PollAdd::CODE,
            opcode::PollRemove::CODE,
            opcode::FixedFdInstall::CODE,
        ];
        if let Some(missing) = needed.iter().find(|code| !probe.is_supported(**code)) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("this kernel's io_uring lacks operation {missing} (Linux 6.8 has it)"),
            ));
        }
        Ok(SocketRings {
            rings: vec![first],
            slots_per_ring: slots_per_ring.max(1),
            completion_entries,
            held: HashMap::new(),
            seen: Vec::new(),
        })
    }

    /// How many sockets are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no socket is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether a socket is held under `key`.
    pub fn contains(&self, key: u64) -> bool {
        self.held.contains_key(&key)
    }

    /// How many rings are open; each takes one file descriptor.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// The descriptor of ring `index`, which turns readable when one of its sockets does.
    pub fn ring_fd(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.rings.get(index).map(|ring| {
            // SAFETY: the ring's descriptor stays open for as long as the ring, which `self`
            // owns and the borrow keeps.
            #[allow(unsafe_code)]
            unsafe {
                BorrowedFd::borrow_raw(ring.uring.as_raw_fd())
            }
        })
    }

    /// Holds `socket` under `key` and closes its descriptor. Returns the index of a ring it
    /// opened, because all others were full or nearly: the caller watches that ring's
    /// descriptor from now on. A key already held, or above [`MAX_KEY`], is refused.
    pub fn hold(&mut self, key: u64, socket: OwnedFd) -> Result<Option<usize>, Refused> {
        if key > MAX_KEY || self.held.contains_key(&key) {
            return Err(Refused {
                socket,
                error: io::Error::new(io::ErrorKind::InvalidInput, "key in use or too large"),
            });
        }
        let (index, opened) = match self.rings.iter().position(|ring| !ring.free.is_empty()) {
            Some(index) => (index, None),
            None => match Ring::open(self.slots_per_ring, self.completion_entries) {
                Ok(ring) => {
                    self.rings.push(ring);
                    (self.rings.len() - 1, Some(self.rings.len() - 1))
                }
                Err(error) => return Err(Refused { socket, error }),
            },
        };
        let ring = &mut self.rings[index];
        let Some(slot) = ring.free.pop() else {
            return Err(Refused {
                socket,
                error: io::Error::other("no free slot in a ring said to have one"),
            });
        };
        let placed = ring
            .uring
            .submitter()
            .register_files_update(slot, &[socket.as_raw_fd()]);
        if let Err(error) = placed {
            ring.free.push(slot);
            return Err(Refused { socket, error });
        }
        let watch = opcode::PollAdd::new(types::Fixed(slot), WATCHED)
            .build()
            .user_data(POLL | key);
        if let Err(error) = ring.submit(&watch) {
            ring.empty_slot(slot);
            return Err(Refused { socket, error });
        }
        self.held.insert(key, Place { ring: index, slot });
        // The table's reference keeps the socket open.
        drop(socket);
        Ok(opened.or_else(|| self.open_spare()))
    }

    /// Opens the next ring while a descriptor is sure to be free (the one just closed), once
    /// the open rings are nearly full: a process near its open-file limit would otherwise find
    /// none for the ring when the last slot is taken. Returns its index if it opened one.
    fn open_spare(&mut self) -> Option<usize> {
        let free: usize = self.rings.iter().map(|ring| ring.free.len()).sum();
        if free >= (self.slots_per_ring as usize / SPARE_FRACTION).max(1) {
            return None;
        }
        self.rings
            .push(Ring::open(self.slots_per_ring, self.completion_entries).ok()?);
        Some(self.rings.len() - 1)
    }

    /// Gives the socket held under `key` a file descriptor again and stops holding it.
    ///
    /// When the process has no descriptor to spare ([`is_out_of_descriptors`]), the socket
    /// stays held and watched: try again once descriptors were closed. On any other error it
    /// is let go (closed), and `key` is free. A key not held gives
    /// [`io::ErrorKind::NotFound`].
    pub fn release(&mut self, key: u64) -> io::Result<OwnedFd> {
        let place = *self
            .held
            .get(&key)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let ring = &mut self.rings[place.ring];
        let install = opcode::FixedFdInstall::new(types::Fixed(place.slot), 0)
            .build()
            .user_data(INSTALL | key);
        ring.submit(&install)?;
        // The operation runs as it is submitted; the loop only guards against a kernel that
        // would complete it later.
        let installed = loop {
            if let Some(result) = ring.take_completions(&mut self.seen, Some(INSTALL | key)) {
                break result;
            }
            ring.uring.submit_and_wait(1)?;
        };
        if installed < 0 {
            let error = io::Error::from_raw_os_error(-installed);
            if !is_out_of_descriptors(&error) {
                self.let_go(key);
            }
            return Err(error);
        }
        // SAFETY: the kernel has just installed this descriptor for this call (close-on-exec,
        // as without `IORING_FIXED_FD_NO_CLOEXEC`); nothing else knows it, so it is ours to own.
        #[allow(unsafe_code)]
        let socket = unsafe { OwnedFd::from_raw_fd(installed) };
        self.let_go(key);
        Ok(socket)
    }

    /// Stops holding the socket under `key` without giving it a descriptor: closed, unless the
    /// caller still holds a descriptor of its own. Does nothing for a key not held.
    pub fn let_go(&mut self, key: u64) {
        let Some(place) = self.held.remove(&key) else {
            return;
        };
        let ring = &mut self.rings[place.ring];
        // Its completion (and that of the watch, cancelled) are taken by `take_ready`, which
        // skips keys no longer held. Should the cancel fail, the watch ends with the socket.
        let cancel = opcode::PollRemove::new(POLL | key)
            .build()
            .user_data(CANCEL | key);
        let _ = ring.submit(&cancel);
        ring.empty_slot(place.slot);
    }

    /// Adds to `out` the keys of sockets in ring `index` (or seen by a release in any ring)
    /// that turned readable, closed or failed, once each; their watch ended, so each is woken
    /// only once: release it, or let it go. A key may also be reported for a socket whose
    /// input was taken meanwhile; readiness is a hint, as with `epoll`.
    pub fn take_ready(&mut self, index: usize, out: &mut Vec<u64>) {
        let held = &self.held;
        out.extend(self.seen.drain(..).filter(|key| held.contains_key(key)));
        if let Some(ring) = self.rings.get_mut(index) {
            let mut ready = Vec::new();
            ring.take_completions(&mut ready, None);
            out.extend(ready.into_iter().filter(|key| held.contains_key(key)));
        }
    }
}

impl Ring {
    fn open(slots: u32, completion_entries: u32) -> io::Result<Ring> {
        let uring = IoUring::builder()
            .setup_cqsize(completion_entries.max(SUBMISSION_ENTRIES))
            .build(SUBMISSION_ENTRIES)?;
        let slots = slots.max(1);
        uring.submitter().register_files_sparse(slots)?;
        // Popped from the end: slot 0 is handed out first.
        let free = (0..slots).rev().collect();
        Ok(Ring { uring, free })
    }

    /// Queues `entry` and submits it.
    fn submit(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: the operations queued here (POLL_ADD and FIXED_FD_INSTALL on a slot of this
        // ring's table, POLL_REMOVE by user data) point at no memory of ours that the kernel
        // could read or write after this call.
        #[allow(unsafe_code)]
        let queued = unsafe { self.uring.submission().push(entry) };
        if queued.is_err() {
            // Full only if an earlier submit failed; submitting makes room.
            self.uring.submit()?;
            // SAFETY: as above.
            #[allow(unsafe_code)]
            let again = unsafe { self.uring.submission().push(entry) };
            again.map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        self.uring.submit()?;
        Ok(())
    }

    /// Takes every completion there is: the keys of finished watches go to `ready`; returns
    /// the result of the operation whose user data is `wanted`, if it is among them.
    ///
    /// Completions that did not fit the queue wait in the kernel, which moves them in only
    /// when asked (`io_uring_enter`); the ring's descriptor stays readable meanwhile, but a
    /// readiness set that reports edges would not say so again. So they are asked for until
    /// none is left.
    fn take_completions(&mut self, ready: &mut Vec<u64>, wanted: Option<u64>) -> Option<i32> {
        let mut found = None;
        loop {
            for completion in self.uring.completion() {
                let data = completion.user_data();
                let result = completion.result();
                if Some(data) == wanted {
                    found = Some(result);
                } else if data & KIND == POLL && result != -libc::ECANCELED {
                    ready.push(data & !KIND);
                } else if data & KIND == INSTALL && result >= 0 {
                    // An install nobody waits for: its release gave up when the submission
                    // failed, and the kernel took the entry later. Closed, so the descriptor
                    // does not leak.
                    // SAFETY: the kernel installed this descriptor for that operation, and
                    // nothing else knows it.
                    #[allow(unsafe_code)]
                    drop(unsafe { OwnedFd::from_raw_fd(result) });
                }
                // Cancels, and watches that ended because they were cancelled, need nothing.
            }
            if !self.uring.submission().cq_overflow() || self.uring.submit().is_err() {
                return found;
            }
        }
    }

    /// Takes the socket in `slot` out of the table, and frees the slot. A slot the kernel
    /// would not empty stays out of use, so it is never handed out with a socket still in it.
    fn empty_slot(&mut self, slot: u32) {
        if self
            .uring
            .submitter()
            .register_files_update(slot, &[-1])
            .is_ok()
        {
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests;
