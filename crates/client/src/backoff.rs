//! When to try connecting again: [`ReconnectPolicy`] (the typed configuration) and
//! [`Backoff`], exponential backoff with jitter computed from it. Pure arithmetic over a small
//! seeded random generator, so that the delays are testable without a clock; the driver does
//! the sleeping.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How the client reconnects after losing its connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Reconnect at all. On by default: devices lose their link and must come back by
    /// themselves.
    pub enabled: bool,
    /// The delay before the first retry. 500 ms by default: a broker restart is usually over
    /// by then, and a flapping link is not hammered.
    pub initial_delay: Duration,
    /// The longest delay between retries. 30 s by default: a device comes back within half a
    /// minute of its broker, while thousands of them do not hit a recovering broker at once.
    pub max_delay: Duration,
    /// Each retry waits this many times longer than the previous one (before jitter). 2 by
    /// default.
    pub multiplier: f64,
    /// Up to this fraction of each delay is taken off at random (0 = none, 1 = anywhere down
    /// to zero). 0.5 by default ("equal jitter"): clients that lost the same broker spread
    /// their retries out, while none retries much sooner than planned.
    pub jitter: f64,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl ReconnectPolicy {
    /// A policy that never reconnects.
    pub fn disabled() -> Self {
        ReconnectPolicy {
            enabled: false,
            ..Self::default()
        }
    }
}

/// The retry delays of one run of failures: grows from `initial_delay` by `multiplier` up to
/// `max_delay`, each delay shortened by a random fraction of at most `jitter`; `reset` after
/// a successful connection starts over.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    /// The next delay before jitter.
    next: Duration,
    attempt: u32,
    random: SplitMix64,
}

impl Backoff {
    /// A backoff seeded from the process's random hash keys.
    pub fn new(policy: ReconnectPolicy) -> Self {
        let seed = RandomState::new().build_hasher().finish();
        Self::with_seed(policy, seed)
    }

    /// A backoff with a fixed random seed, for reproducible delays.
    pub fn with_seed(policy: ReconnectPolicy, seed: u64) -> Self {
        Backoff {
            next: policy.initial_delay,
            policy,
            attempt: 0,
            random: SplitMix64(seed),
        }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next retry, and the growth of the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let planned = self.next.min(self.policy.max_delay);
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        let cut = planned.mul_f64(jitter * self.random.next_unit());
        let multiplier = if self.policy.multiplier.is_finite() {
            self.policy.multiplier.max(1.0)
        } else {
            1.0
        };
        // `mul_f64` panics on overflow; `max_delay` bounds the growth before it can get there.
        self.next = Duration::try_from_secs_f64(planned.as_secs_f64() * multiplier)
            .unwrap_or(self.policy.max_delay)
            .min(self.policy.max_delay);
        self.attempt = self.attempt.saturating_add(1);
        planned.saturating_sub(cut)
    }

    /// Starts over from `initial_delay`, after a connection succeeded.
    pub fn reset(&mut self) {
        self.next = self.policy.initial_delay;
        self.attempt = 0;
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator, plenty for spreading retries; not
/// for anything secret.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    fn next_unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn without_jitter_delays_double_up_to_the_cap() {
        let mut backoff = Backoff::with_seed(policy(0.0), 7);
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff.attempt(), 8);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::with_seed(policy(0.0), 7);
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let mut backoff = Backoff::with_seed(policy(0.5), 42);
        let mut planned = Duration::from_millis(100);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let delay = backoff.next_delay();
            assert!(delay <= planned, "{delay:?} > {planned:?}");
            assert!(delay >= planned / 2, "{delay:?} < half of {planned:?}");
            seen.insert(delay);
            planned = (planned * 2).min(Duration::from_secs(2));
        }
        assert!(
            seen.len() > 100,
            "jitter produced only {} values",
            seen.len()
        );
    }

    #[test]
    fn same_seed_same_delays() {
        let mut a = Backoff::with_seed(policy(1.0), 9);
        let mut b = Backoff::with_seed(policy(1.0), 9);
        for _ in 0..20 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let mut backoff = Backoff::with_seed(
            ReconnectPolicy {
                enabled: true,
                initial_delay: Duration::from_secs(10),
                max_delay: Duration::MAX,
                multiplier: f64::INFINITY,
                jitter: 7.0,
            },
            1,
        );
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(10));
        }
        let mut huge = Backoff::with_seed(
            ReconnectPolicy {
                initial_delay: Duration::from_secs(u64::MAX / 4),
                max_delay: Duration::MAX,
                jitter: 0.0,
                ..policy(0.0)
            },
            1,
        );
        for _ in 0..10 {
            huge.next_delay();
        }
    }
}
