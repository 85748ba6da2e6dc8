//! The one small shared value through which the router reaches a connection, running or
//! parked: [`ConnectionSignal`]. The router wakes it (messages queued, a commit done), asks it
//! to close (takeover, shutdown), and waits for it to finish (the successor of a takeover, a
//! shutdown). A running driver waits on it; a parked connection (`parking/`) leaves its place
//! in the parking lot here, so that a wake resumes it. It replaces a notifier, a close
//! channel and a finished channel per connection, which together took several times its room.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use mquictt_protocol::ReasonCode;
use tokio::sync::Notify;

use super::answer_turn;
use crate::parking::ParkingLot;

/// Where a parked connection waits.
#[derive(Debug)]
pub(crate) struct ParkedAt {
    pub(crate) lot: Arc<ParkingLot>,
    pub(crate) token: usize,
}

thread_local! {
    /// The connections this thread's routing queued messages for, to wake once it lets go of
    /// the router's lock ([`WakesAfterUnlock`]).
    static AFTER_UNLOCK: RefCell<Vec<Arc<ConnectionSignal>>> = const { RefCell::new(Vec::new()) };
}

/// How the router and a connection signal each other.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSignal {
    /// Wakes the running driver; a wake while it is busy leaves a permit it finds next time.
    wake: Notify,
    /// The reason of a close the router asked for, as its byte; 0 while none was asked
    /// (0x00 is never a reason to close a connection from the server side).
    close: AtomicU8,
    /// Set once the driver has handed its session back (or was dropped).
    pub(super) finished: AtomicBool,
    /// Wakes those waiting for `finished`.
    finished_waiters: Notify,
    /// Set while a wake of this connection waits for a thread to release the router's lock
    /// ([`Self::wake_after_unlock`]).
    wake_deferred: AtomicBool,
    /// Set while a task waits for a commit that holds this client's queue.
    pub(crate) commit_waiter: AtomicBool,
    /// The connection's place in the parking lot while it is parked.
    parked: Mutex<Option<ParkedAt>>,
    /// Publishers whose answers wait for this connection's next turn (`answer_turn.rs`).
    pub(super) turn_waiters: Mutex<Vec<Waker>>,
    /// Whether `turn_waiters` may hold any, so that a turn without them takes no lock.
    pub(super) turn_waiters_present: AtomicBool,
    /// Set while the driver writes to its client.
    pub(super) writing: AtomicBool,
    /// The number of the thread the driver took its last turn on (0: none yet).
    pub(super) turn_thread: AtomicU32,
    /// How many turns the driver has taken, wrapping.
    pub(super) turns: AtomicU32,
}

impl ConnectionSignal {
    /// Wakes the connection: a running driver looks at its queue and its close request; a
    /// parked one is resumed first.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
        let parked = self.parked_slot().take();
        if let Some(at) = parked {
            at.lot.unpark(at.token);
        }
    }

    /// Wakes the connection once this thread has released the router's lock, which the
    /// caller holds. A subscriber woken at once, while its publisher goes on routing the rest
    /// of a batch, would find the lock taken and wait for it: on two threads, with one
    /// publisher and one subscriber, that happened at about every batch. The copies a batch
    /// queues for one connection wake it once.
    pub(crate) fn wake_after_unlock(self: &Arc<Self>) {
        // Set by whoever will wake the connection, and cleared just before it does. A router
        // that finds it set leaves the wake to that one: its own copy is queued under the
        // lock, which the woken connection can only take after it.
        if self.wake_deferred.swap(true, Ordering::AcqRel) {
            return;
        }
        let deferred = AFTER_UNLOCK
            .try_with(|list| match list.try_borrow_mut() {
                Ok(mut list) => {
                    list.push(self.clone());
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !deferred {
            self.wake_deferred.store(false, Ordering::Release);
            self.wake();
        }
    }

    /// Asks the connection to close with `reason`.
    pub(crate) fn close(&self, reason: ReasonCode) {
        // The first request wins: a shutdown does not rename a takeover already under way.
        let _ = self
            .close
            .compare_exchange(0, reason.as_u8(), Ordering::AcqRel, Ordering::Acquire);
        self.wake();
    }

    /// The close asked for, if any.
    pub(crate) fn close_requested(&self) -> Option<ReasonCode> {
        match self.close.load(Ordering::Acquire) {
            0 => None,
            // Only `close` stores here, always a valid reason code.
            code => Some(ReasonCode::from_u8(code).unwrap_or(ReasonCode::ServerShuttingDown)),
        }
    }

    /// Waits until the connection is woken.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Marks the connection finished and wakes whoever waits for that.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.finished_waiters.notify_waiters();
        self.release_turn_waiters();
    }

    /// Waits until the connection has finished.
    pub(crate) async fn finished(&self) {
        loop {
            let mut notified = pin!(self.finished_waiters.notified());
            // Registered before the flag is read, so a `finish` in between is not missed.
            notified.as_mut().enable();
            if self.finished.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Whether the connection has finished.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Records where the connection is parked, unless something woke it since it last
    /// looked (a wake permit is taken, or a close was asked): then it must not park, and
    /// `false` is returned. `place` runs under the lock that `wake` takes, so a wake either
    /// comes before (and is seen here) or finds the connection's place (and resumes it).
    pub(crate) fn park_unless_woken(&self, place: impl FnOnce() -> Option<ParkedAt>) -> bool {
        let mut slot = self.parked_slot();
        if self.close_requested().is_some() || self.take_wake_permit() {
            return false;
        }
        match place() {
            Some(at) => {
                *slot = Some(at);
                true
            }
            None => false,
        }
    }

    /// Forgets the parking place `token`, when the lot resumed the connection by itself.
    pub(crate) fn unparked(&self, token: usize) {
        let mut slot = self.parked_slot();
        if slot.as_ref().is_some_and(|at| at.token == token) {
            *slot = None;
        }
    }

    /// Takes a wake permit left while the driver was busy, without waiting.
    pub(crate) fn take_wake_permit(&self) -> bool {
        let notified = pin!(self.wake.notified());
        notified
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    fn parked_slot(&self) -> MutexGuard<'_, Option<ParkedAt>> {
        // Nothing panics while holding it; a poisoned lock still holds a consistent value.
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs the wakes [`ConnectionSignal::wake_after_unlock`] deferred on this thread when
/// dropped. It sits beside the router's lock guard, after it, so that it is dropped after the
/// lock is released ([`crate::broker::RouterGuard`]).
#[derive(Debug)]
pub(crate) struct WakesAfterUnlock(());

impl WakesAfterUnlock {
    pub(crate) fn new() -> Self {
        Self(())
    }
}

impl Drop for WakesAfterUnlock {
    fn drop(&mut self) {
        let taken = AFTER_UNLOCK
            .try_with(|list| match list.try_borrow_mut() {
                Ok(mut list) if !list.is_empty() => Some(std::mem::take(&mut *list)),
                _ => None,
            })
            .ok()
            .flatten();
        let Some(mut woken) = taken else {
            return;
        };
        // Every flag is cleared before any wake, so that nothing can leave one set with no
        // wake to come; a router that sets one again meanwhile makes its own wake.
        for signal in &woken {
            signal.wake_deferred.store(false, Ordering::Release);
        }
        if let Some(last) = woken.last() {
            answer_turn::note_last_woken(last);
        }
        for signal in woken.drain(..) {
            signal.wake();
        }
        // The list goes back for its room, unless a wake deferred more in the meantime.
        let _ = AFTER_UNLOCK.try_with(|list| {
            if let Ok(mut list) = list.try_borrow_mut() {
                if list.is_empty() {
                    *list = woken;
                }
            }
        });
    }
}

/// The driver's handle on its signal: dropping it marks the connection finished, so that a
/// successor never waits for a driver that is gone, however it ended.
#[derive(Debug)]
pub(crate) struct SignalHandle(Arc<ConnectionSignal>);

impl SignalHandle {
    pub(crate) fn new(signal: Arc<ConnectionSignal>) -> Self {
        Self(signal)
    }

    pub(crate) fn signal(&self) -> &Arc<ConnectionSignal> {
        &self.0
    }
}

impl std::ops::Deref for SignalHandle {
    type Target = ConnectionSignal;

    fn deref(&self) -> &ConnectionSignal {
        &self.0
    }
}

impl Drop for SignalHandle {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_while_busy_keeps_the_connection_from_parking() {
        let signal = ConnectionSignal::default();
        signal.wake();
        assert!(!signal.park_unless_woken(|| unreachable!("must not park")));
        // The permit was taken by that check: now nothing stands in the way.
        let mut placed = false;
        signal.park_unless_woken(|| {
            placed = true;
            None
        });
        assert!(placed);
    }

    #[tokio::test]
    async fn a_wake_after_unlock_comes_when_the_lock_is_released_and_again_next_time() {
        let signals = [
            Arc::new(ConnectionSignal::default()),
            Arc::new(ConnectionSignal::default()),
        ];
        for _ in 0..2 {
            let unlock = WakesAfterUnlock::new();
            for signal in signals.iter().chain(&signals) {
                signal.wake_after_unlock();
            }
            for signal in &signals {
                assert!(!signal.take_wake_permit(), "woken under the lock");
            }
            drop(unlock);
            for signal in &signals {
                assert!(signal.take_wake_permit(), "not woken after the unlock");
            }
        }
    }

    #[tokio::test]
    async fn a_wake_after_unlock_that_cannot_wait_comes_at_once() {
        let signal = Arc::new(ConnectionSignal::default());
        // The list is borrowed (as while the deferred wakes run): nowhere to keep this one.
        AFTER_UNLOCK.with(|list| {
            let _borrowed = list.borrow_mut();
            signal.wake_after_unlock();
        });
        assert!(signal.take_wake_permit());
        // It left nothing behind that would swallow the next wake.
        let unlock = WakesAfterUnlock::new();
        signal.wake_after_unlock();
        drop(unlock);
        assert!(signal.take_wake_permit());
    }

    #[tokio::test]
    async fn a_close_request_keeps_the_connection_from_parking() {
        let signal = ConnectionSignal::default();
        signal.close(ReasonCode::SessionTakenOver);
        signal.close(ReasonCode::ServerShuttingDown);
        assert_eq!(signal.close_requested(), Some(ReasonCode::SessionTakenOver));
        let _ = signal.take_wake_permit();
        assert!(!signal.park_unless_woken(|| unreachable!("must not park")));
    }

    #[tokio::test]
    async fn woken_completes_for_a_wake_before_or_during_the_wait() {
        let signal = Arc::new(ConnectionSignal::default());
        signal.wake();
        tokio::time::timeout(Duration::from_secs(5), signal.woken())
            .await
            .unwrap();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.woken().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        signal.wake();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn finished_completes_for_waiters_before_and_after() {
        let signal = Arc::new(ConnectionSignal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.finished().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drop(SignalHandle::new(signal.clone()));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), signal.finished())
            .await
            .unwrap();
        assert!(signal.is_finished());
    }
}
