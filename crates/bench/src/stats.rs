//! What a run counts and measures: [`LiveCounters`] (atomics the clients bump and the progress
//! bar reads), latency histograms in microseconds (HDR, three significant digits) and their
//! [`LatencySummary`], the per-subscriber [`SequenceTracker`] that tells new messages from
//! duplicates, and the final [`ScenarioReport`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mquictt_protocol::QoS;
use mquictt_transport::TransportKind;

use crate::spec::Scenario;

/// Highest latency a histogram tells apart: one hour, in microseconds. Larger values are
/// recorded as this.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Counters shared by every client of a run.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Connections whose CONNACK accepted them.
    pub connected: AtomicU64,
    /// Connections that failed before or at CONNACK.
    pub connect_failed: AtomicU64,
    /// Subscribers whose SUBACK granted the subscription.
    pub subscribed: AtomicU64,
    /// PUBLISH packets written by publishers.
    pub sent: AtomicU64,
    /// QoS 1/2 publishes completed (PUBACK or PUBCOMP received).
    pub acked: AtomicU64,
    /// PUBLISH packets received by subscribers, duplicates included.
    pub received: AtomicU64,
    /// Clients that ended with an error after connecting.
    pub client_errors: AtomicU64,
}

impl LiveCounters {
    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A latency histogram in microseconds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, 3 sigfig);
    // creation cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("constant histogram bounds")
}

/// Records `latency` in microseconds, clamped to the histogram's range.
pub(crate) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_MAX_US);
    histogram.saturating_record(us);
}

/// Percentiles of one latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl LatencySummary {
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            mean_us: histogram.mean(),
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

/// Per-publisher next expected sequence number, as seen by one subscriber: a message whose
/// sequence number is below it was seen before (MQTT keeps one publisher's messages in order
/// per subscription, 4.6), so it is a duplicate.
#[derive(Debug, Default)]
pub(crate) struct SequenceTracker {
    next: Vec<u64>,
}

impl SequenceTracker {
    /// Publisher indexes above this are not tracked (every message counts as new), so a
    /// foreign payload cannot make us allocate without bound.
    const MAX_TRACKED: usize = 1 << 20;

    /// Whether the message is new; updates the expected sequence number.
    pub(crate) fn is_new(&mut self, publisher: u32, sequence: u64) -> bool {
        let index = publisher as usize;
        if index >= Self::MAX_TRACKED {
            return true;
        }
        if index >= self.next.len() {
            self.next.resize(index + 1, 0);
        }
        match self.next.get_mut(index) {
            Some(next) if sequence < *next => false,
            Some(next) => {
                *next = sequence + 1;
                true
            }
            None => true,
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// The load shape.
    pub scenario: Scenario,
    /// The transport used.
    pub transport: TransportKind,
    /// The broker URL.
    pub url: String,
    /// QoS of publishes and subscriptions.
    pub qos: QoS,
    /// Payload bytes per message.
    pub payload_size: usize,
    /// N as given.
    pub clients: usize,
    /// Publishing clients.
    pub publishers: usize,
    /// Subscribing clients.
    pub subscribers: usize,
    /// Per-publisher rate; `None` is unlimited.
    pub rate: Option<f64>,
    /// The requested duration.
    pub duration: Duration,
    /// When publishing started (or the connections were all up), to line up samples taken
    /// outside the bench, such as the broker's CPU time, with the publishing phase.
    pub publish_started: Instant,
    /// Time publishers actually published (or connections were held).
    pub publish_elapsed: Duration,
    /// From the start of publishing to the last message received.
    pub delivery_elapsed: Duration,
    /// PUBLISH packets sent.
    pub sent: u64,
    /// QoS 1/2 publishes acknowledged by the broker.
    pub acked: u64,
    /// Deliveries the subscribers should have seen (`sent` x receivers per message).
    pub expected: Option<u64>,
    /// PUBLISH packets received, duplicates included.
    pub received: u64,
    /// Received messages that had been received before.
    pub duplicates: u64,
    /// Expected deliveries that never arrived.
    pub lost: Option<u64>,
    /// Sent messages per second over `publish_elapsed`.
    pub sent_per_sec: f64,
    /// New (not duplicate) messages received per second over `delivery_elapsed`.
    pub delivered_per_sec: f64,
    /// End-to-end latency of received messages.
    pub latency: LatencySummary,
    /// Time from the first socket call to CONNACK.
    pub connect_latency: LatencySummary,
    /// Connections accepted.
    pub connected: u64,
    /// Connections that failed.
    pub connect_failed: u64,
    /// Clients that failed after connecting.
    pub client_errors: u64,
    /// The first error any client met, for the summary.
    pub first_error: Option<String>,
}

impl ScenarioReport {
    /// Received messages that were new.
    pub fn unique_received(&self) -> u64 {
        self.received.saturating_sub(self.duplicates)
    }
}
