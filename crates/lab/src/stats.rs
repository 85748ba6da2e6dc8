//! What one run of the relay did: packet counts, drops by cause, per-link totals, and how late
//! packets left compared with the time the link model scheduled them (the emulator's own
//! error), summarised as percentiles. A run whose p99 lateness exceeds a threshold is flagged:
//! its timings say more about the machine than about the emulated link.

use std::time::Duration;

use crate::link::LinkCounters;

/// Percentiles of how late the relay wrote packets compared with their scheduled departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatenessSummary {
    /// Packets measured.
    pub samples: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The latest packet.
    pub max: Duration,
}

impl LatenessSummary {
    /// Nearest-rank percentiles of `samples` (all zero when there are none).
    pub fn from_samples(mut samples: Vec<Duration>) -> LatenessSummary {
        samples.sort_unstable();
        let rank = |percent: u64| -> Duration {
            let n = samples.len() as u64;
            if n == 0 {
                return Duration::ZERO;
            }
            // Nearest rank: the smallest value with at least `percent`% of samples at or below.
            let index = (percent * n).div_ceil(100).clamp(1, n) - 1;
            samples
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or_default()
        };
        LatenessSummary {
            samples: samples.len() as u64,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The totals of both directions of one host's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLinkStats {
    /// The host's namespace.
    pub host: String,
    /// Host -> switch.
    pub uplink: LinkCounters,
    /// Switch -> host.
    pub downlink: LinkCounters,
}

/// Everything the relay counted during one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunStats {
    /// From the relay's start to its stop.
    pub duration: Duration,
    /// IP packets read from the hosts.
    pub packets: u64,
    /// Packets written to their destination host.
    pub delivered: u64,
    /// Packets lost by a random loss model (all links, both directions).
    pub random_drops: u64,
    /// Packets dropped by a full queue (all links, both directions).
    pub queue_drops: u64,
    /// Packets with no host at their destination address (or not IPv4).
    pub unroutable: u64,
    /// Packets the destination TUN refused.
    pub write_errors: u64,
    /// Packets still on an emulated link when the relay stopped.
    pub in_flight_at_stop: u64,
    /// How late delivered packets were written.
    pub lateness: LatenessSummary,
    /// The p99 lateness above which the run is flagged.
    pub lateness_threshold: Duration,
    /// Whether the relay ran with real-time (SCHED_FIFO) priority.
    pub realtime_priority: bool,
    /// Per-host link totals, broker first.
    pub links: Vec<HostLinkStats>,
}

impl RunStats {
    /// Whether the relay was too late too often for this run's timings to be trusted: its
    /// p99 lateness exceeded the threshold.
    pub fn is_flagged(&self) -> bool {
        self.lateness.p99 > self.lateness_threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_micros).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let summary = LatenessSummary::from_samples(micros((1..=100).rev()));
        assert_eq!(summary.samples, 100);
        assert_eq!(summary.p50, Duration::from_micros(50));
        assert_eq!(summary.p90, Duration::from_micros(90));
        assert_eq!(summary.p99, Duration::from_micros(99));
        assert_eq!(summary.max, Duration::from_micros(100));
    }

    #[test]
    fn few_samples_and_none() {
        let one = LatenessSummary::from_samples(micros([7]));
        assert_eq!(
            (one.p50, one.p99, one.max),
            (
                Duration::from_micros(7),
                Duration::from_micros(7),
                Duration::from_micros(7)
            )
        );
        assert_eq!(
            LatenessSummary::from_samples(Vec::new()),
            LatenessSummary::default()
        );
    }

    #[test]
    fn run_is_flagged_when_p99_exceeds_threshold() {
        let mut stats = RunStats {
            lateness: LatenessSummary::from_samples(micros((0..1000).map(|i| {
                if i < 985 {
                    10
                } else {
                    5_000
                }
            }))),
            lateness_threshold: Duration::from_millis(2),
            ..RunStats::default()
        };
        assert!(stats.is_flagged());
        stats.lateness =
            LatenessSummary::from_samples(micros(
                (0..1000).map(|i| if i < 995 { 10 } else { 5_000 }),
            ));
        assert!(!stats.is_flagged());
    }
}
