//! Broker counters and gauges, updated lock-free from every connection task, and their
//! rendering in the Prometheus text exposition format. Serving the text over HTTP is the
//! binary's job; this file only counts and renders.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

mod counter;

pub use counter::Counter;

/// Counters and gauges of one broker.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections currently served (gauge).
    pub connections_current: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused (limit reached, bad CONNECT, authentication failure).
    pub connections_refused: AtomicU64,
    /// PUBLISH packets received from clients.
    pub messages_received: Counter,
    /// PUBLISH packets sent to clients.
    pub messages_sent: Counter,
    /// Bytes read from clients.
    pub bytes_received: Counter,
    /// Bytes written to clients.
    pub bytes_sent: Counter,
    /// Copies dropped or refused because a session queue was full (all of the `queue_*`
    /// counters below).
    pub messages_dropped: AtomicU64,
    /// Messages dropped because their expiry interval passed before delivery.
    pub messages_expired: AtomicU64,
    /// Messages not sent because they exceeded a client's Maximum Packet Size.
    pub messages_oversized: AtomicU64,
    /// Subscriptions (gauge).
    pub subscriptions: AtomicU64,
    /// Retained messages (gauge).
    pub retained_messages: AtomicU64,
    /// Sessions, connected or not (gauge).
    pub sessions: AtomicU64,
    /// Connections that have not completed CONNECT and authentication (gauge).
    pub connections_pending: AtomicU64,
    /// Idle connections parked without a task (gauge, read when rendered:
    /// `Broker::render_prometheus`).
    pub connections_parked: AtomicU64,
    /// Parked connections whose socket is held without a file descriptor (gauge, read when
    /// rendered).
    pub connections_without_descriptor: AtomicU64,
    /// Connections closed because they did not complete CONNECT in time.
    pub connect_timeouts: AtomicU64,
    /// Connections closed at once because `max_pending_connections` was reached.
    pub pending_limit_rejections: AtomicU64,
    /// Connections closed at once because their source exceeded `connection_rate`.
    pub connection_rate_rejections: AtomicU64,
    /// CONNECTs refused by authentication (bad credentials, anonymous not allowed, failed
    /// enhanced authentication).
    pub authentication_failures: AtomicU64,
    /// PUBLISHes, subscriptions and retained messages refused by the ACL.
    pub authorization_denials: AtomicU64,
    /// Requests refused by a size or count limit: topic length or depth, subscriptions per
    /// client, sessions.
    pub limit_refusals: AtomicU64,
    /// Times a client was paused or disconnected for exceeding `publish_rate`.
    pub publish_rate_exceeded: AtomicU64,
    /// Group commits made to durable storage.
    pub storage_commits: AtomicU64,
    /// Changes written by those commits.
    pub storage_changes: AtomicU64,
    /// Time spent in commits (write and sync), in microseconds.
    pub storage_commit_micros: AtomicU64,
    /// Commits that failed; the acknowledgements they held were refused.
    pub storage_commit_failures: AtomicU64,
    /// Bytes of messages held by durable storage (gauge).
    pub storage_bytes: AtomicU64,
    /// Messages refused because the storage quota was reached.
    pub storage_quota_refusals: AtomicU64,
    /// QoS 0 copies dropped because a session queue held `max_queued_messages`.
    pub queue_qos0_dropped_messages_limit: AtomicU64,
    /// QoS 0 copies dropped because a session queue held `max_queued_bytes`.
    pub queue_qos0_dropped_bytes_limit: AtomicU64,
    /// QoS 1/2 copies refused for a subscriber whose queue held `max_queued_messages`.
    pub queue_refused_messages_limit: AtomicU64,
    /// QoS 1/2 copies refused for a subscriber whose queue held `max_queued_bytes`.
    pub queue_refused_bytes_limit: AtomicU64,
    /// QoS 1/2 publishes refused (MQTT 5: 0x97 Quota exceeded) because every matching
    /// subscriber's queue was full.
    pub publishes_refused_queues_full: AtomicU64,
}

/// A counter or gauge with its Prometheus name, type, help text and value.
struct Series {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: u64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts one from a gauge, never below zero.
    pub fn decrement(gauge: &AtomicU64) {
        // An Err means the gauge was already 0; leaving it there is what we want.
        let _ = gauge.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    /// Reads a counter or gauge.
    pub fn get(value: &AtomicU64) -> u64 {
        value.load(Ordering::Relaxed)
    }

    fn series(&self) -> [Series; 34] {
        let s = |name, kind, help, value: &AtomicU64| Series {
            name,
            kind,
            help,
            value: Self::get(value),
        };
        let sharded = |name, kind, help, value: &Counter| Series {
            name,
            kind,
            help,
            value: value.get(),
        };
        [
            s(
                "mquictt_connections",
                "gauge",
                "Connections currently served.",
                &self.connections_current,
            ),
            s(
                "mquictt_connections_total",
                "counter",
                "Connections accepted since start.",
                &self.connections_total,
            ),
            s(
                "mquictt_connections_refused_total",
                "counter",
                "Connections refused.",
                &self.connections_refused,
            ),
            sharded(
                "mquictt_messages_received_total",
                "counter",
                "PUBLISH packets received from clients.",
                &self.messages_received,
            ),
            sharded(
                "mquictt_messages_sent_total",
                "counter",
                "PUBLISH packets sent to clients.",
                &self.messages_sent,
            ),
            sharded(
                "mquictt_bytes_received_total",
                "counter",
                "Bytes read from clients.",
                &self.bytes_received,
            ),
            sharded(
                "mquictt_bytes_sent_total",
                "counter",
                "Bytes written to clients.",
                &self.bytes_sent,
            ),
            s(
                "mquictt_messages_dropped_total",
                "counter",
                "Messages dropped because a session queue was full.",
                &self.messages_dropped,
            ),
            s(
                "mquictt_messages_expired_total",
                "counter",
                "Messages dropped because they expired before delivery.",
                &self.messages_expired,
            ),
            s(
                "mquictt_messages_oversized_total",
                "counter",
                "Messages not sent because they exceeded the client's maximum packet size.",
                &self.messages_oversized,
            ),
            s(
                "mquictt_subscriptions",
                "gauge",
                "Subscriptions.",
                &self.subscriptions,
            ),
            s(
                "mquictt_retained_messages",
                "gauge",
                "Retained messages.",
                &self.retained_messages,
            ),
            s(
                "mquictt_sessions",
                "gauge",
                "Sessions, connected or not.",
                &self.sessions,
            ),
            s(
                "mquictt_connections_parked",
                "gauge",
                "Idle connections parked without a task.",
                &self.connections_parked,
            ),
            s(
                "mquictt_connections_without_descriptor",
                "gauge",
                "Parked connections whose socket is held without a file descriptor.",
                &self.connections_without_descriptor,
            ),
            s(
                "mquictt_connections_pending",
                "gauge",
                "Connections that have not completed CONNECT and authentication.",
                &self.connections_pending,
            ),
            s(
                "mquictt_connect_timeouts_total",
                "counter",
                "Connections closed for not completing CONNECT in time.",
                &self.connect_timeouts,
            ),
            s(
                "mquictt_pending_limit_rejections_total",
                "counter",
                "Connections closed because too many were waiting for CONNECT.",
                &self.pending_limit_rejections,
            ),
            s(
                "mquictt_connection_rate_rejections_total",
                "counter",
                "Connections closed because their source connected too often.",
                &self.connection_rate_rejections,
            ),
            s(
                "mquictt_authentication_failures_total",
                "counter",
                "CONNECTs refused by authentication.",
                &self.authentication_failures,
            ),
            s(
                "mquictt_authorization_denials_total",
                "counter",
                "Publishes, subscriptions and retained messages refused by the ACL.",
                &self.authorization_denials,
            ),
            s(
                "mquictt_limit_refusals_total",
                "counter",
                "Requests refused by a topic, subscription or session limit.",
                &self.limit_refusals,
            ),
            s(
                "mquictt_publish_rate_exceeded_total",
                "counter",
                "Times a client was throttled or disconnected for publishing too fast.",
                &self.publish_rate_exceeded,
            ),
            s(
                "mquictt_storage_commits_total",
                "counter",
                "Group commits made to durable storage.",
                &self.storage_commits,
            ),
            s(
                "mquictt_storage_changes_total",
                "counter",
                "Changes written by group commits.",
                &self.storage_changes,
            ),
            s(
                "mquictt_storage_commit_microseconds_total",
                "counter",
                "Time spent writing and syncing group commits.",
                &self.storage_commit_micros,
            ),
            s(
                "mquictt_storage_commit_failures_total",
                "counter",
                "Group commits that failed; their acknowledgements were refused.",
                &self.storage_commit_failures,
            ),
            s(
                "mquictt_storage_bytes",
                "gauge",
                "Bytes of messages held by durable storage.",
                &self.storage_bytes,
            ),
            s(
                "mquictt_storage_quota_refusals_total",
                "counter",
                "Messages refused because the storage quota was reached.",
                &self.storage_quota_refusals,
            ),
            s(
                "mquictt_queue_qos0_dropped_messages_limit_total",
                "counter",
                "QoS 0 copies dropped because a session queue held max_queued_messages.",
                &self.queue_qos0_dropped_messages_limit,
            ),
            s(
                "mquictt_queue_qos0_dropped_bytes_limit_total",
                "counter",
                "QoS 0 copies dropped because a session queue held max_queued_bytes.",
                &self.queue_qos0_dropped_bytes_limit,
            ),
            s(
                "mquictt_queue_refused_messages_limit_total",
                "counter",
                "QoS 1/2 copies refused because a session queue held max_queued_messages.",
                &self.queue_refused_messages_limit,
            ),
            s(
                "mquictt_queue_refused_bytes_limit_total",
                "counter",
                "QoS 1/2 copies refused because a session queue held max_queued_bytes.",
                &self.queue_refused_bytes_limit,
            ),
            s(
                "mquictt_publishes_refused_queues_full_total",
                "counter",
                "QoS 1/2 publishes refused because every matching subscriber's queue was full.",
                &self.publishes_refused_queues_full,
            ),
        ]
    }

    /// Every series in the Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for series in self.series() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {} {}", series.name, series.help);
            let _ = writeln!(out, "# TYPE {} {}", series.name, series.kind);
            let _ = writeln!(out, "{} {}", series.name, series.value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.messages_received.add(3);
        Metrics::set(&metrics.subscriptions, 7);
        Metrics::decrement(&metrics.connections_current);
        let text = metrics.render_prometheus();
        assert!(text.contains(
            "# TYPE mquictt_messages_received_total counter\nmquictt_messages_received_total 3\n"
        ));
        assert!(text.contains("mquictt_subscriptions 7\n"));
        assert!(text.contains("mquictt_connections 0\n"));
        // Every sample line is "name value" with a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(name.starts_with("mquictt_"));
            value.parse::<u64>().unwrap();
        }
    }
}
