//! A small number for every thread that asks, given in turn from 1 on first use: which thread
//! a connection took its last turn on (`router/answer_turn.rs`), and which shard of a counter a
//! thread adds to (`metrics/counter.rs`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

thread_local! {
    /// This thread's number; 0 until first asked.
    static THREAD_NUMBER: Cell<u32> = const { Cell::new(0) };
}

/// The number the next thread to ask gets; 0 is never given.
static NEXT_THREAD_NUMBER: AtomicU32 = AtomicU32::new(1);

/// This thread's number: never 0, the same for the thread's whole life, and different from
/// every other thread's (until 2^32 threads have asked). 0 only while the thread's locals are
/// being destroyed.
pub(crate) fn thread_number() -> u32 {
    THREAD_NUMBER
        .try_with(|number| match number.get() {
            0 => {
                let given = NEXT_THREAD_NUMBER.fetch_add(1, Ordering::Relaxed);
                number.set(given);
                given
            }
            given => given,
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_number_and_another_thread_gets_another() {
        let here = thread_number();
        assert_ne!(here, 0);
        assert_eq!(thread_number(), here);
        let there = std::thread::spawn(thread_number).join().unwrap();
        assert_ne!(there, 0);
        assert_ne!(there, here);
    }
}
