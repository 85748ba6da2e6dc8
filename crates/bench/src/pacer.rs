//! A rate-limited publisher's clock: ticks every period from a first instant, to the
//! microsecond.
//!
//! Tokio's timers round every deadline up to the next whole millisecond, so publishers whose
//! phases spread them over one millisecond (ten publishers at 1,000 msg/s, 100 us apart) all
//! woke on the same tick and sent their messages to the broker in one burst: the last message
//! of each burst waited for the nine before it, and latency percentiles measured the burst
//! rather than the broker. On Linux a `timerfd` per publisher keeps the phases; elsewhere, or
//! if the kernel refuses one, the publisher falls back to Tokio's interval.

use std::time::{Duration, Instant};

use tokio::time::{interval_at, Interval, MissedTickBehavior};

/// Ticks at `first`, then every `period`; missed ticks are skipped (the publisher works out
/// from the clock how many messages are due, so nothing is lost by skipping).
pub(crate) struct Pacer {
    inner: Inner,
}

enum Inner {
    #[cfg(target_os = "linux")]
    Precise(precise::TimerTicks),
    Coarse(Interval),
}

impl Pacer {
    pub(crate) fn new(first: Instant, period: Duration) -> Pacer {
        #[cfg(target_os = "linux")]
        match precise::TimerTicks::new(first, period) {
            Ok(ticks) => {
                return Pacer {
                    inner: Inner::Precise(ticks),
                }
            }
            Err(error) => tracing::debug!(%error, "no timerfd, pacing to the millisecond"),
        }
        let mut interval = interval_at(first.into(), period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Pacer {
            inner: Inner::Coarse(interval),
        }
    }

    /// Waits for the next tick.
    pub(crate) async fn tick(&mut self) {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Precise(ticks) => ticks.tick().await,
            Inner::Coarse(interval) => {
                interval.tick().await;
            }
        }
    }

    /// Whether ticks come from the kernel's high-resolution timer.
    #[cfg(test)]
    fn is_precise(&self) -> bool {
        !matches!(self.inner, Inner::Coarse(_))
    }
}

#[cfg(target_os = "linux")]
mod precise {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::{Duration, Instant};

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;

    pub(super) struct TimerTicks {
        fd: AsyncFd<OwnedTimer>,
    }

    /// The timer, as Tokio's readiness wants it (nix's type gives only a borrowed descriptor).
    struct OwnedTimer(TimerFd);

    impl AsRawFd for OwnedTimer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    impl TimerTicks {
        pub(super) fn new(first: Instant, period: Duration) -> io::Result<TimerTicks> {
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            // Relative to now: `Instant` does not expose its clock's reading. A zero first
            // expiry would disarm the timer, hence at least a nanosecond.
            let delay = first
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1));
            timer.set(
                Expiration::IntervalDelayed(TimeSpec::from(delay), TimeSpec::from(period)),
                TimerSetTimeFlags::empty(),
            )?;
            // Deprecated because a type that does not own its descriptor could close it under
            // Tokio; the timer owns its descriptor and is only dropped with the registration.
            #[allow(deprecated)]
            let fd = AsyncFd::new(OwnedTimer(timer))?;
            Ok(TimerTicks { fd })
        }

        pub(super) async fn tick(&mut self) {
            loop {
                let Ok(mut ready) = self.fd.readable().await else {
                    // The reactor is gone (runtime shutting down): nothing left to pace.
                    return std::future::pending().await;
                };
                // Reading takes the count of expiries since the last read; an empty timer
                // answers EAGAIN, which clears the readiness and waits again.
                match ready.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                    Ok(Ok(())) => return,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "timerfd read failed");
                        return;
                    }
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_keep_a_sub_millisecond_phase() {
        // Two pacers 300 us apart: with millisecond timers they would wake together.
        let start = Instant::now() + Duration::from_millis(20);
        let period = Duration::from_millis(5);
        let offset = Duration::from_micros(300);
        let mut early = Pacer::new(start, period);
        let mut late = Pacer::new(start + offset, period);
        if cfg!(target_os = "linux") {
            assert!(early.is_precise() && late.is_precise(), "timerfd on Linux");
        }
        early.tick().await;
        let woke_early = Instant::now();
        assert!(woke_early >= start, "ticked before its first instant");
        late.tick().await;
        let woke_late = Instant::now();
        assert!(
            woke_late >= start + offset,
            "the later pacer ticked at {:?}, before its phase",
            woke_late - start
        );
        // The next tick of the early pacer is a period after its first, not at once.
        early.tick().await;
        assert!(Instant::now() >= start + period);
    }

    #[tokio::test]
    async fn a_first_instant_in_the_past_ticks_at_once() {
        let mut pacer = Pacer::new(
            Instant::now() - Duration::from_millis(3),
            Duration::from_secs(3600),
        );
        tokio::time::timeout(Duration::from_secs(10), pacer.tick())
            .await
            .expect("first tick due already");
    }
}
