//! glibc's heap trim threshold, raised for the broker and the load generator (`mquictt bench`).
//!
//! At high message rates over QUIC, quinn copies each batch of received datagrams and each
//! chunk of stream data written into fresh allocations of up to 64 KiB, and glibc gives the top
//! of a heap back to the kernel whenever more than 128 KiB of it is free, only to take the pages
//! again on the next allocation: tens to hundreds of thousands of page faults in 4 s of one pair
//! publishing at full speed, and 6 to 12 % of the broker's CPU per message with large datagrams
//! (docs/quic.md, *Datagram size and socket buffers*). A threshold of [`TRIM_THRESHOLD`] keeps
//! those pages; the memory per idle connection and after a burst did not move beyond the
//! spread of the measurements.
//!
//! glibc reads its tunables from the environment only when a process starts, so the binary
//! sets the same parameter with `mallopt(M_TRIM_THRESHOLD)` before it starts any other thread.
//! An operator who set the threshold in the environment keeps that setting. On other C
//! libraries nothing is done: their allocators do not trim this way.
//!
//! This crate's only `unsafe` block is the one call into the C library; besides it, only
//! `mquictt-socket-rings` has `unsafe` code.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::ffi::OsString;

/// The heap trim threshold the broker runs with: free memory at the top of a heap is returned
/// to the kernel once it exceeds 4 MiB instead of glibc's 128 KiB. With one pair publishing
/// 1 KiB messages over QUIC with 6,500-byte datagrams for 4 s, the broker took 2,800 to 3,400
/// page faults at 4 MiB, 24,000 to 56,000 in three rounds at 2 MiB (about 3,000 in two
/// others: the edge), 64,000 to 127,000 at 1 MiB and 95,000 to 237,000 at glibc's default
/// (docs/decisions.md, *The system allocator stays*). Each heap may keep this much it could
/// have returned.
pub const TRIM_THRESHOLD: usize = 4 * 1024 * 1024;

/// What [`raise_trim_threshold`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimThreshold {
    /// Set to [`TRIM_THRESHOLD`].
    Raised,
    /// The environment sets it (`glibc.malloc.trim_threshold` in `GLIBC_TUNABLES`, or
    /// `MALLOC_TRIM_THRESHOLD_`); left as the operator chose.
    SetByEnvironment,
    /// glibc did not accept the value.
    Refused,
    /// Not glibc: there is nothing to set.
    NotGlibc,
}

/// Raises glibc's heap trim threshold to [`TRIM_THRESHOLD`] unless the environment already
/// sets it. Call it early in `main`, before other threads start.
pub fn raise_trim_threshold() -> TrimThreshold {
    if set_by_environment(|name| std::env::var_os(name)) {
        return TrimThreshold::SetByEnvironment;
    }
    set_trim_threshold(TRIM_THRESHOLD)
}

/// Whether the environment, read through `var`, gives glibc a trim threshold of its own.
fn set_by_environment(var: impl Fn(&str) -> Option<OsString>) -> bool {
    if var("MALLOC_TRIM_THRESHOLD_").is_some() {
        return true;
    }
    // `GLIBC_TUNABLES` is a colon-separated list of `name=value` pairs.
    var("GLIBC_TUNABLES").is_some_and(|tunables| {
        tunables.to_string_lossy().split(':').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(name, _)| name == "glibc.malloc.trim_threshold")
        })
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_trim_threshold(bytes: usize) -> TrimThreshold {
    let Ok(value) = libc::c_int::try_from(bytes) else {
        return TrimThreshold::Refused;
    };
    // SAFETY: `mallopt` takes two integers, reads and writes no memory of the caller's, and
    // changes the allocator's parameters under glibc's own arena lock; the binary calls it
    // before any other thread exists besides.
    #[allow(unsafe_code)]
    let accepted = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, value) };
    if accepted == 1 {
        TrimThreshold::Raised
    } else {
        TrimThreshold::Refused
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_trim_threshold(_bytes: usize) -> TrimThreshold {
    TrimThreshold::NotGlibc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn an_operator_s_threshold_in_the_environment_wins() {
        assert!(set_by_environment(environment(&[(
            "MALLOC_TRIM_THRESHOLD_",
            "131072"
        )])));
        assert!(set_by_environment(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold=131072"
        )])));
        assert!(set_by_environment(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0"
        )])));
    }

    #[test]
    fn other_settings_leave_the_threshold_to_the_broker() {
        assert!(!set_by_environment(environment(&[])));
        assert!(!set_by_environment(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072"
        )])));
        // A tunable whose name only begins like the threshold's is another tunable.
        assert!(!set_by_environment(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold_x=1"
        )])));
        assert!(!set_by_environment(environment(&[(
            "MALLOC_TOP_PAD_",
            "0"
        )])));
    }

    /// Resident bytes of this process, from `/proc/self/smaps_rollup` (which walks the page
    /// tables; `statm`'s counters may lag by whole batches of pages). Read into the stack: a
    /// heap allocation made now and kept in glibc's per-thread cache would sit above the
    /// freed blocks and keep them from the top of the heap.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn resident_bytes(rollup: &std::fs::File) -> usize {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 4096];
        let n = rollup.read_at(&mut buf, 0).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let line = text.lines().find(|line| line.starts_with("Rss:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// The effect itself: 3 MiB freed from the top of a heap stay resident once the threshold
    /// is raised, where glibc's default of 128 KiB hands them back to the kernel at once.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_below_the_threshold_stays_with_the_process() {
        assert_eq!(set_trim_threshold(TRIM_THRESHOLD), TrimThreshold::Raised);
        const BLOCK: usize = 48 * 1024;
        const FREED: usize = 64 * BLOCK;
        // A thread of its own, so the blocks come from one heap and end at its top; blocks of
        // 48 KiB stay below glibc's 128 KiB threshold for mapping a block by itself.
        let dropped = std::thread::spawn(|| {
            let rollup = std::fs::File::open("/proc/self/smaps_rollup").unwrap();
            let mut blocks = Vec::with_capacity(FREED / BLOCK);
            for i in 0..FREED / BLOCK {
                blocks.push(vec![u8::try_from(i % 251).unwrap() + 1; BLOCK]);
            }
            let before = resident_bytes(&rollup);
            drop(blocks);
            before.saturating_sub(resident_bytes(&rollup))
        })
        .join()
        .unwrap();
        assert!(
            dropped < FREED / 3,
            "{dropped} bytes left the resident set after freeing {FREED}"
        );
    }
}
