//! The arithmetic of the broker's limits, kept apart from where they are enforced: token
//! buckets for rates (per connection for publishes, per source address for new
//! connections) and the topic length and depth check. Time comes in as `now`, so every rule
//! here is tested without sleeping.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{BrokerConfig, RateLimit};
use crate::peer_keyed::PeerKeyedMap;

/// A token bucket: holds up to `burst` tokens and gains `per_second` per second.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let rate = f64::from(self.limit.per_second.max(1));
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst.max(1)));
        self.updated = now;
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one token even if that leaves the bucket in debt; returns when the bucket is
    /// out of debt again (`None` if it is not in debt).
    pub(crate) fn take(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        self.tokens -= 1.0;
        self.ready_at(now)
    }

    /// When the bucket will hold a whole token again, if it does not now.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 0.0 {
            return None;
        }
        let rate = f64::from(self.limit.per_second.max(1));
        Some(now + Duration::from_secs_f64(-self.tokens / rate))
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= f64::from(self.limit.burst.max(1))
    }
}

/// Buckets tracked before idle ones are pruned; bounds the limiter's memory however many
/// addresses connect.
const MAX_TRACKED_SOURCES: usize = 65_536;

/// New-connection rate per source address. IPv6 addresses count per /64, the block one
/// subscriber usually gets, so hopping addresses within it does not help.
#[derive(Debug)]
pub(crate) struct SourceRateLimiter {
    limit: Option<RateLimit>,
    buckets: PeerKeyedMap<IpAddr, TokenBucket>,
}

impl SourceRateLimiter {
    pub(crate) fn new(limit: Option<RateLimit>) -> Self {
        Self {
            limit,
            buckets: PeerKeyedMap::default(),
        }
    }

    /// Whether a new connection from `source` is within the rate.
    pub(crate) fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let key = source_key(source);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_TRACKED_SOURCES {
            // Forget sources that have been quiet long enough to have a full bucket again:
            // they would start from a full one anyway.
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            if self.buckets.len() >= MAX_TRACKED_SOURCES {
                // Every tracked source is busy: an attack from very many addresses. Admit
                // without tracking; the pending-connection cap still bounds the damage.
                return true;
            }
        }
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(limit, now))
            .try_take(now)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

fn source_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// Whether a topic name or filter is within `max_topic_length` bytes and
/// `max_topic_levels` levels.
pub(crate) fn topic_within_limits(topic: &str, config: &BrokerConfig) -> bool {
    topic.len() <= config.max_topic_length
        && topic.bytes().filter(|b| *b == b'/').count() < config.max_topic_levels
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10,
        burst: 3,
    };

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(!bucket.try_take(start + Duration::from_millis(50)));
        assert!(bucket.try_take(start + Duration::from_millis(110)));
        assert!(bucket.try_take(start + Duration::from_secs(10)));
    }

    #[test]
    fn debt_says_when_to_resume() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), None);
        }
        let resume = bucket.take(start).expect("in debt");
        assert_eq!(resume - start, Duration::from_millis(100));
        assert_eq!(bucket.ready_at(resume), None);
    }

    #[test]
    fn sources_are_limited_separately_and_ipv6_per_64() {
        let start = Instant::now();
        let mut limiter = SourceRateLimiter::new(Some(LIMIT));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.admit(a, start));
        }
        assert!(!limiter.admit(a, start));
        assert!(limiter.admit(b, start));
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.admit(v6a, start));
        }
        assert!(!limiter.admit(v6b, start), "same /64");
        assert!(limiter.admit("2001:db8:1:3::1".parse().unwrap(), start));
        assert!(SourceRateLimiter::new(None).admit(a, start));
    }

    #[test]
    fn tracking_stays_bounded() {
        let start = Instant::now();
        let mut limiter = SourceRateLimiter::new(Some(LIMIT));
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 10) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            assert!(limiter.admit(addr, start));
        }
        assert!(limiter.tracked() <= MAX_TRACKED_SOURCES);
        // Later, the quiet ones are pruned and new sources are tracked again.
        let later = start + Duration::from_secs(1);
        assert!(limiter.admit("198.51.100.1".parse().unwrap(), later));
        assert!(limiter.tracked() < 10);
    }

    #[test]
    fn topic_limits_count_bytes_and_levels() {
        let config = BrokerConfig {
            max_topic_length: 8,
            max_topic_levels: 3,
            ..BrokerConfig::default()
        };
        assert!(topic_within_limits("a/b/c", &config));
        assert!(!topic_within_limits("a/b/c/d", &config));
        assert!(!topic_within_limits("abcdefghi", &config));
    }
}
