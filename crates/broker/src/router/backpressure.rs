//! Back-pressure from a subscriber to the publishers feeding it. When routing a message leaves
//! a connected subscriber's queue at or above its high-water mark, the subscriber's link is
//! marked congested and the publisher is told to stop reading; the mark is cleared, and every
//! paused publisher resumes, once the subscriber's driver has taken the queue down to the
//! low-water mark. A pause is bounded: a subscriber that has taken nothing from its queue for
//! [`PAUSE_BOUND`] pauses nobody, so one that stopped reading cannot stall its publishers; from
//! then on its queue fills and drops as its drop policy says, with the drop counter as before.
//! The marks count both messages and bytes, as the queue's limits do. This file
//! owns only the marks and signals; the router decides when to call them and the connection
//! driver what a pause means for its reads.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::queue::QueueLimits;

/// The longest a congested subscriber may hold its publishers back without taking anything
/// from its queue. A subscriber that drains takes messages far more often than this (at
/// 20,000 messages a second, a quarter of the default queue goes in 12 ms); one that took
/// nothing for this long is treated as stalled and its messages are dropped instead.
pub(crate) const PAUSE_BOUND: Duration = Duration::from_millis(500);

/// Queue sizes at which a subscriber starts and stops holding publishers back, in messages and
/// in bytes: a queue of few large messages congests as surely as one of many small ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermarks {
    /// At or above this many queued messages the subscriber is congested.
    pub(crate) high: usize,
    /// At or below this many (and at or below `low_bytes`) the congestion ends.
    pub(crate) low: usize,
    /// At or above this many queued bytes the subscriber is congested.
    pub(crate) high_bytes: usize,
    /// At or below this many bytes (and at or below `low` messages) the congestion ends.
    pub(crate) low_bytes: usize,
}

impl Watermarks {
    /// Half of each queue limit as the high mark, a quarter as the low one: publishers pause
    /// while half the queue is still free, so the messages they already read (one read buffer
    /// each) rarely reach the limit, and the gap between the marks lets the subscriber send a
    /// large batch before publishers wake again.
    pub(crate) fn for_queue_limits(limits: QueueLimits) -> Self {
        Self {
            high: (limits.messages / 2).max(1),
            low: limits.messages / 4,
            high_bytes: (limits.bytes / 2).max(1),
            low_bytes: limits.bytes / 4,
        }
    }

    /// Whether a queue of `len` messages and `bytes` bytes holds its publishers back.
    pub(crate) fn congested(&self, len: usize, bytes: usize) -> bool {
        len >= self.high || bytes >= self.high_bytes
    }

    /// Whether a congested queue of `len` messages and `bytes` bytes has drained enough to
    /// let its publishers go.
    pub(crate) fn drained(&self, len: usize, bytes: usize) -> bool {
        len <= self.low && bytes <= self.low_bytes
    }
}

/// A congested subscriber: when it last made progress (became congested or took messages from
/// its queue), and the signal its paused publishers wait on. Dropping it wakes them all.
#[derive(Debug)]
pub(crate) struct Congestion {
    since: Instant,
    drained: watch::Sender<()>,
}

impl Congestion {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            since: now,
            drained: watch::Sender::new(()),
        }
    }

    /// The subscriber took messages from its queue at `now` without draining it yet: it is
    /// slow, not stalled, and may go on pausing publishers.
    pub(crate) fn progressed(&mut self, now: Instant) {
        self.since = now;
    }

    /// A pause for a publisher that just added to this subscriber's queue, unless the
    /// subscriber has made no progress for [`PAUSE_BOUND`].
    pub(crate) fn pause(&self, now: Instant) -> Option<Pause> {
        let until = self.since + PAUSE_BOUND;
        (now < until).then(|| Pause {
            drained: self.drained.subscribe(),
            until,
        })
    }
}

/// What a publisher's driver waits for before it reads again: the subscriber draining (the
/// signal's sender is dropped), or `until`, whichever comes first.
#[derive(Debug, Clone)]
pub(crate) struct Pause {
    pub(crate) drained: watch::Receiver<()>,
    pub(crate) until: Instant,
}

impl Pause {
    /// Completes when the subscriber drained or went away.
    pub(crate) async fn drained(&mut self) {
        // No value is ever sent: the sender is dropped when the congestion ends.
        while self.drained.changed().await.is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_leave_room_below_the_limit() {
        let marks = Watermarks::for_queue_limits(QueueLimits {
            messages: 10_000,
            bytes: 16 << 20,
        });
        assert_eq!((marks.high, marks.low), (5_000, 2_500));
        assert_eq!((marks.high_bytes, marks.low_bytes), (8 << 20, 4 << 20));
        let tiny = Watermarks::for_queue_limits(QueueLimits {
            messages: 1,
            bytes: 1,
        });
        assert_eq!((tiny.high, tiny.low), (1, 0));
        assert_eq!((tiny.high_bytes, tiny.low_bytes), (1, 0));
    }

    #[test]
    fn either_limit_congests_and_both_must_drain() {
        let marks = Watermarks::for_queue_limits(QueueLimits {
            messages: 100,
            bytes: 1_000,
        });
        assert!(!marks.congested(49, 499));
        assert!(marks.congested(50, 0), "half the messages");
        assert!(
            marks.congested(1, 500),
            "half the bytes: few large messages"
        );
        assert!(marks.drained(25, 250));
        assert!(
            !marks.drained(25, 251),
            "still above a quarter of the bytes"
        );
        assert!(
            !marks.drained(26, 0),
            "still above a quarter of the messages"
        );
    }

    #[test]
    fn a_congestion_without_progress_pauses_nobody() {
        let now = Instant::now();
        let mut congestion = Congestion::new(now);
        let pause = congestion.pause(now).expect("a fresh congestion pauses");
        assert_eq!(pause.until, now + PAUSE_BOUND);
        let later = now + PAUSE_BOUND;
        assert!(congestion.pause(later).is_none());
        congestion.progressed(later);
        assert!(congestion.pause(later).is_some());
    }

    #[tokio::test]
    async fn ending_the_congestion_wakes_paused_publishers() {
        let now = Instant::now();
        let congestion = Congestion::new(now);
        let mut first = congestion.pause(now).unwrap();
        let mut second = congestion.pause(now).unwrap();
        let waiting = tokio::spawn(async move {
            first.drained().await;
            second.drained().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(congestion);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
