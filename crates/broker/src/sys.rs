//! The `$SYS/broker/...` topics: a snapshot of broker statistics turned into retained
//! messages, published every `sys_interval`. Topic names follow Mosquitto's, so existing
//! dashboards keep working. Collecting the numbers and publishing are the broker's job.

use std::time::Duration;

use bytes::Bytes;
use mquictt_protocol::{QoS, TopicName};

use crate::message::Message;

/// The numbers published under `$SYS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SysSnapshot {
    /// Time since the broker started.
    pub uptime: Duration,
    /// Clients with a live connection.
    pub clients_connected: u64,
    /// Of those, clients idle and parked without a task.
    pub clients_parked: u64,
    /// Of those, clients whose socket is held without a file descriptor.
    pub clients_without_descriptor: u64,
    /// PUBLISH packets received since start.
    pub messages_received: u64,
    /// PUBLISH packets sent since start.
    pub messages_sent: u64,
    /// Bytes received since start.
    pub bytes_received: u64,
    /// Bytes sent since start.
    pub bytes_sent: u64,
    /// Subscriptions now.
    pub subscriptions: u64,
    /// Retained messages now.
    pub retained: u64,
    /// Messages dropped because a session queue was full, since start.
    pub messages_dropped: u64,
    /// Bytes of messages held by durable storage now.
    pub storage_bytes: u64,
    /// Group commits to durable storage since start.
    pub storage_commits: u64,
    /// Messages refused because the storage quota was reached, since start.
    pub storage_quota_refusals: u64,
    /// QoS 0 copies dropped from full session queues (message limit), since start.
    pub queue_qos0_dropped_messages_limit: u64,
    /// QoS 0 copies dropped from full session queues (byte limit), since start.
    pub queue_qos0_dropped_bytes_limit: u64,
    /// QoS 1/2 copies refused by full session queues (message limit), since start.
    pub queue_refused_messages_limit: u64,
    /// QoS 1/2 copies refused by full session queues (byte limit), since start.
    pub queue_refused_bytes_limit: u64,
}

/// The version string published at `$SYS/broker/version`.
pub fn version_string() -> String {
    format!("mquictt version {}", env!("CARGO_PKG_VERSION"))
}

/// The `$SYS` messages for `snapshot`, each retained so that a late subscriber sees the last
/// value at once.
pub fn sys_messages(snapshot: &SysSnapshot) -> Vec<Message> {
    let entries: [(&str, String); 19] = [
        ("$SYS/broker/version", version_string()),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", snapshot.uptime.as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            snapshot.clients_connected.to_string(),
        ),
        (
            "$SYS/broker/clients/parked",
            snapshot.clients_parked.to_string(),
        ),
        (
            "$SYS/broker/clients/without descriptor",
            snapshot.clients_without_descriptor.to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            snapshot.messages_received.to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            snapshot.messages_sent.to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            snapshot.bytes_received.to_string(),
        ),
        ("$SYS/broker/bytes/sent", snapshot.bytes_sent.to_string()),
        (
            "$SYS/broker/subscriptions/count",
            snapshot.subscriptions.to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            snapshot.retained.to_string(),
        ),
        (
            "$SYS/broker/messages/dropped",
            snapshot.messages_dropped.to_string(),
        ),
        (
            "$SYS/broker/store/bytes",
            snapshot.storage_bytes.to_string(),
        ),
        (
            "$SYS/broker/store/commits",
            snapshot.storage_commits.to_string(),
        ),
        (
            "$SYS/broker/store/quota refusals",
            snapshot.storage_quota_refusals.to_string(),
        ),
        (
            "$SYS/broker/queue/dropped qos0/messages limit",
            snapshot.queue_qos0_dropped_messages_limit.to_string(),
        ),
        (
            "$SYS/broker/queue/dropped qos0/bytes limit",
            snapshot.queue_qos0_dropped_bytes_limit.to_string(),
        ),
        (
            "$SYS/broker/queue/refused qos12/messages limit",
            snapshot.queue_refused_messages_limit.to_string(),
        ),
        (
            "$SYS/broker/queue/refused qos12/bytes limit",
            snapshot.queue_refused_bytes_limit.to_string(),
        ),
    ];
    entries
        .into_iter()
        .filter_map(|(topic, value)| {
            // The names above are constants without wildcards, so this never skips one.
            let topic = TopicName::new(topic).ok()?;
            Some(Message::new(
                topic,
                Bytes::from(value),
                QoS::AtMostOnce,
                true,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sys_topic_is_published_retained() {
        let snapshot = SysSnapshot {
            uptime: Duration::from_secs(42),
            clients_connected: 3,
            clients_parked: 2,
            clients_without_descriptor: 1,
            subscriptions: 5,
            retained: 2,
            storage_bytes: 4096,
            queue_refused_bytes_limit: 9,
            ..SysSnapshot::default()
        };
        let messages = sys_messages(&snapshot);
        assert_eq!(messages.len(), 19);
        assert!(messages.iter().all(|m| m.retain && m.topic.is_system()));
        let value = |topic: &str| {
            messages
                .iter()
                .find(|m| m.topic.as_str() == topic)
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        };
        assert_eq!(value("$SYS/broker/uptime").as_deref(), Some("42 seconds"));
        assert_eq!(value("$SYS/broker/clients/connected").as_deref(), Some("3"));
        assert_eq!(value("$SYS/broker/clients/parked").as_deref(), Some("2"));
        assert_eq!(
            value("$SYS/broker/clients/without descriptor").as_deref(),
            Some("1")
        );
        assert_eq!(
            value("$SYS/broker/subscriptions/count").as_deref(),
            Some("5")
        );
        assert_eq!(
            value("$SYS/broker/retained messages/count").as_deref(),
            Some("2")
        );
        assert_eq!(value("$SYS/broker/store/bytes").as_deref(), Some("4096"));
        assert_eq!(
            value("$SYS/broker/queue/refused qos12/bytes limit").as_deref(),
            Some("9")
        );
        assert!(value("$SYS/broker/version")
            .unwrap()
            .starts_with("mquictt version "));
    }
}
