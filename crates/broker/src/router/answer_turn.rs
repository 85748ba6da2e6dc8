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
//! connection's signal ([`WokenTurn::taken`]), and that connection wakes it from its own
//! next turn ([`ConnectionSignal::turn_taken`], [`ConnectionSignal::writing`]). Woken from a
//! task that runs on the same thread, the publisher runs next, without another thread being
//! notified. Tokio's `yield_now` would order them too, but a worker that yields with nothing
//! else to run wakes another worker thread first, a futex call per message.
//!
//! A turn the connection began after the wake, before the waker was left, counts: the signal
//! counts turns, and the wait ends at once when the count moved since the wake. Without that,
//! the publisher would wait for a turn that no wake is coming to cause.
//!
//! The wait never outlasts the subscriber's next turn, which the wake guarantees: a woken
//! driver always runs its loop once more (`Notify` keeps the permit), a parked one is resumed,
//! and one that finishes or is dropped lets its waiters go. A subscriber in the middle of a
//! write that could not finish is not waited for.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::ConnectionSignal;
use crate::thread_number::thread_number;

thread_local! {
    /// The connection this thread's last release of the router's lock woke last, which Tokio
    /// runs first of those it woke.
    static LAST_WOKEN: RefCell<Option<WokenTurn>> = const { RefCell::new(None) };
}

/// Notes `signal` as the connection this thread is about to wake, last of those it wakes.
/// Called before the wake: any turn it takes from here on sees what was queued for it.
pub(super) fn note_last_woken(signal: &Arc<ConnectionSignal>) {
    let woken = WokenTurn {
        turns: signal.turns.load(Ordering::SeqCst),
        signal: signal.clone(),
    };
    let _ = LAST_WOKEN.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(woken);
        }
    });
}

/// Takes the connection this thread woke last, if any, and forgets it.
pub(crate) fn take_last_woken() -> Option<WokenTurn> {
    LAST_WOKEN
        .try_with(|last| last.try_borrow_mut().ok().and_then(|mut last| last.take()))
        .ok()
        .flatten()
}

/// A connection that was woken, and how many turns it had taken by then.
#[derive(Debug)]
pub(crate) struct WokenTurn {
    signal: Arc<ConnectionSignal>,
    turns: u32,
}

impl WokenTurn {
    pub(crate) fn signal(&self) -> &Arc<ConnectionSignal> {
        &self.signal
    }

    /// Whether the connection took its last turn on this thread. A connection woken from
    /// here runs here next if so; one served by another runtime (a QUIC listener's thread) or
    /// busy on another worker would make its waiter wait for a hand-over between threads.
    pub(crate) fn turns_here(&self) -> bool {
        // 0, never a thread's number, stands for no turn yet in `turn_thread`.
        let here = thread_number();
        here != 0 && self.signal.turn_thread.load(Ordering::Relaxed) == here
    }

    /// Resolves once the connection has taken a turn since it was woken, or at once if it
    /// cannot be waited for (it is finished, or in the middle of a write).
    pub(crate) fn taken(self) -> AfterTurn {
        AfterTurn {
            woken: self,
            waiting: false,
        }
    }
}

impl ConnectionSignal {
    /// Called by this connection's driver at every turn: lets go of those waiting for it.
    pub(crate) fn turn_taken(&self) {
        self.turn_thread.store(thread_number(), Ordering::Relaxed);
        // Only this connection's driver counts its turns, so a load and a store will do.
        let turns = self.turns.load(Ordering::Relaxed);
        self.turns.store(turns.wrapping_add(1), Ordering::SeqCst);
        self.release_turn_waiters_if_any();
    }

    /// Called by this connection's driver before and after a write; while it writes, nobody
    /// waits for it, as the write may have to wait for its client. The mark, not the count of
    /// turns, keeps new waiters away meanwhile, so the turn is not counted again here.
    pub(crate) fn writing(&self, writing: bool) {
        if writing {
            self.writing.store(true, Ordering::SeqCst);
            self.release_turn_waiters_if_any();
        } else {
            // A waiter that still sees the write under way only goes ahead without waiting.
            self.writing.store(false, Ordering::Release);
        }
    }

    fn release_turn_waiters_if_any(&self) {
        if self.turn_waiters_present.load(Ordering::SeqCst) {
            self.release_turn_waiters();
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

/// See [`WokenTurn::taken`].
#[derive(Debug)]
pub(crate) struct AfterTurn {
    woken: WokenTurn,
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
        let woken = &self.woken;
        let signal = &woken.signal;
        let no_wait = || {
            signal.finished.load(Ordering::Acquire)
                || signal.writing.load(Ordering::SeqCst)
                || signal.turns.load(Ordering::SeqCst) != woken.turns
        };
        if no_wait() {
            return Poll::Ready(());
        }
        signal.turn_waiters().push(cx.waker().clone());
        signal.turn_waiters_present.store(true, Ordering::SeqCst);
        // The connection counts a turn (or marks a write) and then looks for waiters; this
        // side left its waker and now looks at the count and the mark. One of the two sees the
        // other: a turn or a write that started meanwhile is not waited for (the waker stays,
        // and is woken harmlessly later).
        if no_wait() {
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

    impl Count {
        fn wakes(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn poll(future: &mut AfterTurn, count: &Arc<Count>) -> Poll<()> {
        let waker = Waker::from(count.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    /// What routing leaves when it wakes `signal`.
    fn woken(signal: &Arc<ConnectionSignal>) -> AfterTurn {
        note_last_woken(signal);
        take_last_woken().expect("just noted").taken()
    }

    #[test]
    fn an_answer_waits_for_the_connections_next_turn() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut wait = woken(&signal);
        assert!(poll(&mut wait, &count).is_pending());
        assert_eq!(count.wakes(), 0);
        signal.turn_taken();
        assert_eq!(count.wakes(), 1);
        assert!(poll(&mut wait, &count).is_ready());
        // Released once: a later turn wakes nobody.
        signal.turn_taken();
        assert_eq!(count.wakes(), 1);
    }

    #[test]
    fn a_turn_taken_between_the_wake_and_the_wait_is_not_waited_for_again() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        note_last_woken(&signal);
        // The woken connection ran before its publisher came to wait.
        signal.turn_taken();
        let mut wait = take_last_woken().expect("just noted").taken();
        assert!(poll(&mut wait, &count).is_ready());
        assert_eq!(count.wakes(), 0);
    }

    #[test]
    fn a_connection_that_starts_writing_lets_its_waiters_go_and_is_not_waited_for() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut first = woken(&signal);
        assert!(poll(&mut first, &count).is_pending());
        signal.writing(true);
        assert_eq!(count.wakes(), 1);
        // While it writes (its client may not be reading), nobody waits for it.
        let mut second = woken(&signal);
        assert!(poll(&mut second, &count).is_ready());
        signal.writing(false);
        let mut third = woken(&signal);
        assert!(poll(&mut third, &count).is_pending());
    }

    #[test]
    fn a_finished_connection_lets_its_waiters_go_and_is_not_waited_for() {
        let signal = Arc::new(ConnectionSignal::default());
        let count = Arc::new(Count::default());
        let mut wait = woken(&signal);
        assert!(poll(&mut wait, &count).is_pending());
        signal.finish();
        assert_eq!(count.wakes(), 1);
        let mut later = woken(&signal);
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
        assert!(Arc::ptr_eq(last.signal(), &second));
        assert!(take_last_woken().is_none());
    }

    #[test]
    fn a_connection_turns_here_only_after_a_turn_on_this_thread() {
        let signal = Arc::new(ConnectionSignal::default());
        note_last_woken(&signal);
        assert!(!take_last_woken().expect("noted").turns_here());
        let elsewhere = signal.clone();
        std::thread::spawn(move || elsewhere.turn_taken())
            .join()
            .expect("the other thread");
        note_last_woken(&signal);
        assert!(!take_last_woken().expect("noted").turns_here());
        signal.turn_taken();
        note_last_woken(&signal);
        assert!(take_last_woken().expect("noted").turns_here());
    }
}
