//! A counter that connections on every thread add to without sharing a cache line.
//!
//! The broker counts every message received and sent and every byte read and written. With one
//! atomic per counter, the publisher's thread and the subscriber's thread wrote to the same
//! cache line for every message, and the line moved between their cores each time: one pair at
//! full speed over TCP spent 2 to 5 % more CPU per message with the counters than without
//! them (docs/benchmarks.md, *Counters of their own per thread*). Here each thread adds to a
//! shard of its own, on a line of its own, and a reader sums the shards.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::thread_number::thread_number;

/// Shards per counter. A thread adds to the shard of its number (`thread_number.rs`), and
/// numbers are given in turn, so eight threads numbered one after another (the worker threads,
/// a QUIC listener's threads) never share one; threads that do share still count correctly.
const SHARDS: usize = 8;

/// One shard, alone on 128 bytes: processors that fetch cache lines in pairs would otherwise
/// still bounce a neighbour's shard.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicU64);

/// A monotonic counter, summed over its shards when read.
#[derive(Debug, Default)]
pub struct Counter {
    shards: [Shard; SHARDS],
}

impl Counter {
    /// Adds `n` on this thread's shard.
    pub fn add(&self, n: u64) {
        if let Some(shard) = self.shards.get(shard_of_this_thread()) {
            shard.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total over every thread. Concurrent additions may or may not be in it, as with a
    /// single atomic read while others add.
    pub fn get(&self) -> u64 {
        self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.0.load(Ordering::Relaxed))
        })
    }
}

/// This thread's shard, the same for every counter: threads are numbered in turn on first use.
fn shard_of_this_thread() -> usize {
    thread_number() as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn additions_from_many_threads_are_all_counted() {
        let counter = Arc::new(Counter::default());
        // More threads than shards, so that some share one.
        let threads: Vec<_> = (0..SHARDS * 2 + 1)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        counter.add(3);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.get(), (SHARDS as u64 * 2 + 1) * 3_000);
    }

    #[test]
    fn shards_do_not_share_a_cache_line() {
        assert!(std::mem::align_of::<Shard>() >= 128);
        assert_eq!(std::mem::size_of::<Counter>(), SHARDS * 128);
    }

    #[test]
    fn a_thread_keeps_its_shard() {
        let first = shard_of_this_thread();
        assert_eq!(shard_of_this_thread(), first);
        assert!(first < SHARDS);
    }
}
