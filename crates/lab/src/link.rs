//! The link model of one direction of one emulated link, as a pure function over simulated
//! time: a packet of a given size arrives at a given instant and is either dropped (random
//! loss, or a full queue) or leaves the far end at a computed instant. Random loss comes first,
//! then a drop-tail FIFO queue served at the link rate (a packet takes `size / rate` on the
//! wire even when the queue is empty), then a fixed one-way propagation delay. No IO and no
//! clock: time is a [`Duration`] since an epoch the caller chooses, and randomness is one
//! seeded ChaCha stream per link direction.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::loss::{LossModel, LossProcess};

/// A link rate in bits per second (never zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(NonZeroU64);

/// A bandwidth that is zero, negative, not a number or too large.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("bandwidth of {0} Mbit/s is not a positive finite rate")]
pub struct InvalidBandwidth(f64);

impl Bandwidth {
    /// A rate in bits per second; `None` for zero.
    pub fn from_bits_per_sec(bits_per_sec: u64) -> Option<Self> {
        NonZeroU64::new(bits_per_sec).map(Bandwidth)
    }

    /// A rate in megabits (10^6 bits) per second, the unit of `links.toml`.
    pub fn from_mbit(mbit_per_sec: f64) -> Result<Self, InvalidBandwidth> {
        let bits = (mbit_per_sec * 1e6).round();
        // Upper bound: 1 Tbit/s, far above anything a user-space relay can move.
        if !(1.0..=1e12).contains(&bits) {
            return Err(InvalidBandwidth(mbit_per_sec));
        }
        Bandwidth::from_bits_per_sec(bits as u64).ok_or(InvalidBandwidth(mbit_per_sec))
    }

    /// The rate in bits per second.
    pub fn bits_per_sec(self) -> u64 {
        self.0.get()
    }

    /// How long `bytes` take to serialize onto the wire at this rate, rounded up to the
    /// nanosecond.
    pub fn transmission_time(self, bytes: usize) -> Duration {
        let bit_nanos = bytes as u128 * 8 * 1_000_000_000;
        let nanos = bit_nanos.div_ceil(u128::from(self.0.get()));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// How much a link direction's FIFO queue may hold before it drops arriving packets
/// (drop-tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    /// At most this many bytes in the queue, counting the packet on the wire.
    Bytes(u64),
    /// A packet is dropped when it would wait longer than this before its first bit is sent.
    Time(Duration),
    /// Never drop for lack of room.
    Unlimited,
}

impl Default for QueueLimit {
    /// 100 ms of queueing: the order of a home router's buffer. netem's own default (1,000
    /// packets) would mean 12 s of delay on a 1 Mbit/s link, hiding loss behind bufferbloat.
    fn default() -> Self {
        QueueLimit::Time(Duration::from_millis(100))
    }
}

/// The settings of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkConfig {
    /// The rate at which packets are serialized; `None` for an infinitely fast link, which
    /// then has no queue.
    pub bandwidth: Option<Bandwidth>,
    /// Fixed one-way propagation delay, added after serialization.
    pub delay: Duration,
    /// Random loss, applied before the queue.
    pub loss: LossModel,
    /// The queue's size.
    pub queue: QueueLimit,
}

impl LinkConfig {
    /// A link that delivers every packet at once: no rate limit, no delay, no loss.
    pub fn ideal() -> Self {
        LinkConfig::default()
    }
}

/// Why a link direction dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The random loss model took it.
    RandomLoss,
    /// The queue was full (drop-tail).
    QueueFull,
}

/// What happens to one packet offered to a link direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet never reaches the far end.
    Dropped(DropReason),
    /// The packet's last bit reaches the far end at this simulated time.
    Delivered {
        /// Simulated time of arrival at the far end.
        at: Duration,
    },
}

/// Running totals of one link direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// Packets offered to the link.
    pub offered: u64,
    /// Packets that will reach the far end.
    pub delivered: u64,
    /// Bytes of the delivered packets.
    pub delivered_bytes: u64,
    /// Packets lost at random.
    pub random_drops: u64,
    /// Packets dropped by the full queue.
    pub queue_drops: u64,
}

/// One direction of a link: random loss, then a drop-tail FIFO queue at the link rate, then a
/// fixed delay.
#[derive(Debug, Clone)]
pub struct LinkDirection {
    config: LinkConfig,
    rng: ChaCha8Rng,
    loss: LossProcess,
    /// When the transmitter finishes the last packet accepted so far.
    busy_until: Duration,
    /// Accepted packets whose last bit is not yet sent: (time the last bit leaves, size).
    on_queue: VecDeque<(Duration, u64)>,
    /// Sum of the sizes in `on_queue`.
    queued_bytes: u64,
    /// Latest arrival seen; an earlier arrival is treated as arriving now.
    last_arrival: Duration,
    counters: LinkCounters,
}

impl LinkDirection {
    /// A link direction whose loss draws come from ChaCha stream `stream` of `seed`. Give every
    /// link direction of an experiment the same seed and its own stream.
    pub fn new(config: LinkConfig, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        LinkDirection {
            config,
            rng,
            loss: LossProcess::new(config.loss),
            busy_until: Duration::ZERO,
            on_queue: VecDeque::new(),
            queued_bytes: 0,
            last_arrival: Duration::ZERO,
            counters: LinkCounters::default(),
        }
    }

    /// The settings this direction was made with.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Totals so far.
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// Offers a packet of `size` bytes arriving at simulated time `arrival`.
    ///
    /// Arrivals are expected in time order; one earlier than a previous arrival is taken as
    /// arriving together with it, so the queue never runs backwards.
    pub fn offer(&mut self, arrival: Duration, size: usize) -> Verdict {
        let now = arrival.max(self.last_arrival);
        self.last_arrival = now;
        self.counters.offered += 1;

        // The loss draw happens for every packet, before anything else, so the n-th packet's
        // fate under random loss depends only on the seed.
        if self.loss.next_is_lost(&mut self.rng) {
            self.counters.random_drops += 1;
            return Verdict::Dropped(DropReason::RandomLoss);
        }

        let size_bytes = size as u64;
        let departure = match self.config.bandwidth {
            None => now,
            Some(bandwidth) => {
                self.forget_sent(now);
                if !self.has_room(now, size_bytes) {
                    self.counters.queue_drops += 1;
                    return Verdict::Dropped(DropReason::QueueFull);
                }
                let start = self.busy_until.max(now);
                let done = start + bandwidth.transmission_time(size);
                self.busy_until = done;
                self.on_queue.push_back((done, size_bytes));
                self.queued_bytes += size_bytes;
                done
            }
        };
        self.counters.delivered += 1;
        self.counters.delivered_bytes += size_bytes;
        Verdict::Delivered {
            at: departure + self.config.delay,
        }
    }

    /// Bytes waiting or on the wire at `now`.
    pub fn backlog_bytes(&mut self, now: Duration) -> u64 {
        self.forget_sent(now);
        self.queued_bytes
    }

    fn forget_sent(&mut self, now: Duration) {
        while let Some(&(done, size)) = self.on_queue.front() {
            if done > now {
                break;
            }
            self.on_queue.pop_front();
            self.queued_bytes -= size;
        }
    }

    fn has_room(&self, now: Duration, size: u64) -> bool {
        match self.config.queue {
            QueueLimit::Unlimited => true,
            QueueLimit::Bytes(limit) => self.queued_bytes + size <= limit,
            QueueLimit::Time(limit) => self.busy_until.saturating_sub(now) <= limit,
        }
    }
}

#[cfg(test)]
mod tests;
