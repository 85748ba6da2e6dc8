//! A publisher's acknowledgement waits for the subscriber it just woke.
//!
//! A publisher's connection routes a QoS 1 or 2 message, which wakes the subscriber's
//! connection, and then answers its own client (PUBACK, PUBREC). Both connections are tasks,
//! and the subscriber's is woken onto the same worker thread to run right after the
//! publisher's. Written in that order, the subscriber's copy waits for the publisher's
//! `send`, which on loopback includes waking the receiving process: several microseconds of
//! end-to-end latency for every message, where only the publisher's window, which is not
//! waiting, gains from the early answer (docs/benchmarks.md, *Deliveries before
//! acknowledgements*).
//!
//! So the publisher's driver, with answers to write, waits for the turn of the last
//! connection its routing woke ([`take_last_woken`]): it leaves its waker with that
//! connection's signal ([`ConnectionSignal::after_turn`]), and that connection wakes it from
//! its own next turn ([`ConnectionSignal::turn_taken`], [`ConnectionSignal::writing`]).
//! Woken from a task that runs on the same thread, the publisher runs next, without another
//! thread being notified. Tokio's `yield_now` would order them too, but a worker that yields
//! with nothing else to run wakes another worker thread first, a futex call per message.
//!
//! The wait never outlasts the subscriber's next turn, which the wake guarantees: a woken
//! driver always runs its loop once more (`Notify` keeps the permit), a parked one is resumed,
//! and one that finishes or is dropped lets its waiters go. A subscriber in the middle of a
//! write that could not finish is not waited for.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::ConnectionSignal;

thread_local! {
    /// The connection this thread's last release of the router's lock woke last, which Tokio
    /// runs first of those it woke.
    static LAST_WOKEN: RefCell<Option<Arc<ConnectionSignal>>> = const { RefCell::new(None) };
    /// This thread's number, for [`ConnectionSignal::turns_here`]; 0 until first asked.
    static THREAD_NUMBER: Cell<u32> = const { Cell::new(0) };
}

/// The number the next thread to ask gets; 0 is never given, so that a connection that took
/// no turn yet matches no thread.
static NEXT_THREAD_NUMBER: AtomicU32 = AtomicU32::new(1);

fn thread_number() -> u32 {
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

/// Notes `signal` as the connection this thread woke last.
pub(super) fn note_last_woken(signal: &Arc<ConnectionSignal>) {
    let _ = LAST_WOKEN.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(signal.clone());
        }
    });
}

/// Takes the connection this thread woke last, if any, and forgets it.
pub(crate) fn take_last_woken() -> Option<Arc<ConnectionSignal>> {
    LAST_WOKEN
        .try_with(|last| last.try_borrow_mut().ok().and_then(|mut last| last.take()))
        .ok()
        .flatten()
}

impl ConnectionSignal {
    /// Resolves once this connection has taken its next turn, or at once if it cannot be
    /// waited for (it is finished, or in the middle of a write).
    pub(crate) fn after_turn(self: &Arc<Self>) -> AfterTurn {
        AfterTurn {
            signal: self.clone(),
            waiting: false,
        }
    }

    /// Whether this connection took its last turn on this thread. A connection woken from
    /// here runs here next if so; one served by another runtime (a QUIC listener's thread) or
    /// busy on another worker would make its waiter wait for a hand-over between threads.
    pub(crate) fn turns_here(&self) -> bool {
        let here = thread_number();
        here != 0 && self.turn_thread.load(Ordering::Relaxed) == here
    }

    /// Called by this connection's driver at every turn: lets go of those waiting for it.
    pub(crate) fn turn_taken(&self) {
        self.turn_thread.store(thread_number(), Ordering::Relaxed);
        if self.turn_waiters_present.load(Ordering::SeqCst) {
            self.release_turn_waiters();
        }
    }

    /// Called by this connection's driver before and after a write; while it writes, nobody
    /// waits for it, as the write may have to wait for its client.
    pub(crate) fn writing(&self, writing: bool) {
        if writing {
            self.writing.store(true, Ordering::SeqCst);
            self.turn_taken();
        } else {
            // A waiter that still sees the write under way only goes ahead without waiting.
            self.writing.store(false, Ordering::Release);
        }
    }

    /// Wakes everyone waiting for this connection's turn.
    pub(super) fn release_turn_waiters(&self) {
        let waiters = {
            let mut waiters = self.turn_waiters();
            self.turn_waiters_present.store(false, Ordering::SeqCst);
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters {
            waiter.wake();
        }
    }

    fn turn_waiters(&self) -> MutexGuard<'_, Vec<Waker>> {
        // Nothing panics while holding it; a poisoned lock still holds a consistent list.
        self.turn_waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// See [`ConnectionSignal::after_turn`].
#[derive(Debug)]
pub(crate) struct AfterTurn {
    signal: Arc<ConnectionSignal>,
    waiting: bool,
}

impl Future for AfterTurn {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiting {
            // Woken by the connection's turn, or polled for another reason: either way the
            // answer goes now.
            return Poll::Ready(());
        }
        let signal = &self.signal;
        if signal.finished.load(Ordering::Acquire) || signal.writing.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        signal.turn_waiters().push(cx.waker().clone());
        signal.turn_waiters_present.store(true, Ordering::SeqCst);
        // The connection sets `writing` and then looks for waiters; this side left its waker
        // and now looks at `writing`. One of the two sees the other: a write that started
        // meanwhile is not waited for (the waker stays and is woken, harmlessly, later).
        if signal.writing.load(Ordering::SeqCst) || signal.finished.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waiting = true;
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::router::WakesAfterUnlock;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(future: &mut AfterTurn, count: &Arc<Count>) -> Poll<()> {
        let waker = Waker::from(count.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn an_answer_waits_for_the_connections_next_turn() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut wait = signal.after_turn();
        assert!(poll(&mut wait, &count).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        signal.turn_taken();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait, &count).is_ready());
        // Released once: a later turn wakes nobody.
        signal.turn_taken();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_that_starts_writing_lets_its_waiters_go_and_is_not_waited_for() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut first = signal.after_turn();
        assert!(poll(&mut first, &count).is_pending());
        signal.writing(true);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // While it writes (its client may not be reading), nobody waits for it.
        let mut second = signal.after_turn();
        assert!(poll(&mut second, &count).is_ready());
        signal.writing(false);
        let mut third = signal.after_turn();
        assert!(poll(&mut third, &count).is_pending());
    }

    #[test]
    fn a_finished_connection_lets_its_waiters_go_and_is_not_waited_for() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut wait = signal.after_turn();
        assert!(poll(&mut wait, &count).is_pending());
        signal.finish();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let mut later = signal.after_turn();
        assert!(poll(&mut later, &count).is_ready());
    }

    #[test]
    fn the_connection_woken_last_after_the_unlock_is_noted_once() {
        let first = Arc::new(ConnectionSignal::default());
        let second = Arc::new(ConnectionSignal::default());
        assert!(take_last_woken().is_none());
        {
            let _wakes = WakesAfterUnlock::new();
            first.wake_after_unlock();
            second.wake_after_unlock();
            // Not before the wakes are made.
            assert!(take_last_woken().is_none());
        }
        let last = take_last_woken().expect("a connection was woken");
        assert!(Arc::ptr_eq(&last, &second));
        assert!(take_last_woken().is_none());
    }
}
