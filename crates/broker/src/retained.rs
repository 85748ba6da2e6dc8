//! Retained messages (3.3.1.3): at most one per topic, replaced by a newer retained PUBLISH,
//! deleted by a retained PUBLISH with an empty payload, handed to new subscriptions whose
//! filter matches, and forgotten once their Message Expiry Interval has passed. Stored in a
//! trie over topic levels so that a subscription only visits the branches its filter names.

use std::sync::Arc;
use std::time::Instant;

use mquictt_protocol::{TopicFilter, TopicName};

use crate::message::Message;
use crate::peer_keyed::PeerKeyedMap;

#[derive(Debug, Default)]
struct Node {
    children: PeerKeyedMap<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// What storing a retained PUBLISH did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainOutcome {
    /// A new topic now has a retained message.
    Stored,
    /// The topic's previous retained message was replaced [MQTT-3.3.1-5].
    Replaced,
    /// The empty payload removed the topic's retained message [MQTT-3.3.1-6].
    Deleted,
    /// Empty payload and nothing was retained: nothing to do.
    Unchanged,
}

/// The broker's retained messages.
#[derive(Debug, Default)]
pub struct RetainedStore {
    root: Node,
    len: usize,
}

impl RetainedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a PUBLISH with RETAIN=1. "If the Payload contains zero bytes it is processed
    /// normally by the Server but any retained message with the same topic name MUST be
    /// removed and any future subscribers for the topic will not receive a retained message"
    /// [MQTT-3.3.1-6] [MQTT-3.3.1-7].
    pub fn retain(&mut self, message: Arc<Message>) -> RetainOutcome {
        if message.payload.is_empty() {
            return if self.remove(&message.topic) {
                RetainOutcome::Deleted
            } else {
                RetainOutcome::Unchanged
            };
        }
        let node = message.topic.levels().fold(&mut self.root, |node, level| {
            node.children.entry(level.into()).or_default()
        });
        match node.message.replace(message) {
            Some(_) => RetainOutcome::Replaced,
            None => {
                self.len += 1;
                RetainOutcome::Stored
            }
        }
    }

    /// Removes the retained message of `topic`; returns whether there was one.
    pub fn remove(&mut self, topic: &TopicName) -> bool {
        let levels: Vec<&str> = topic.levels().collect();
        let removed = remove_at(&mut self.root, &levels);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// The retained message of exactly `topic`, unless it has expired.
    pub fn get(&self, topic: &TopicName, now: Instant) -> Option<Arc<Message>> {
        let node = topic
            .levels()
            .try_fold(&self.root, |node, level| node.children.get(level))?;
        node.message.clone().filter(|m| !m.is_expired(now))
    }

    /// Every unexpired retained message whose topic matches `filter` (ignoring any
    /// `$share/` prefix), in no particular order.
    pub fn matching(&self, filter: &TopicFilter, now: Instant) -> Vec<Arc<Message>> {
        let levels: Vec<&str> = filter.filter().split('/').collect();
        let mut found = Vec::new();
        collect_matches(&self.root, &levels, true, now, &mut found);
        found
    }

    /// Drops every expired message; returns how many. Called from time to time so that
    /// expired messages do not hold memory until someone subscribes.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let purged = purge(&mut self.root, now);
        self.len -= purged;
        purged
    }

    /// Every retained message, for writing to storage or `$SYS` counts.
    pub fn iter(&self) -> Vec<Arc<Message>> {
        let mut all = Vec::with_capacity(self.len);
        collect_all(&self.root, &mut all);
        all
    }

    /// Number of retained messages, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn remove_at(node: &mut Node, levels: &[&str]) -> bool {
    let Some((level, deeper)) = levels.split_first() else {
        return node.message.take().is_some();
    };
    let Some(child) = node.children.get_mut(*level) else {
        return false;
    };
    let removed = remove_at(child, deeper);
    if child.is_empty() {
        node.children.remove(*level);
    }
    removed
}

fn collect_matches(
    node: &Node,
    filter: &[&str],
    at_root: bool,
    now: Instant,
    out: &mut Vec<Arc<Message>>,
) {
    let Some((level, deeper)) = filter.split_first() else {
        out.extend(node.message.iter().filter(|m| !m.is_expired(now)).cloned());
        return;
    };
    match *level {
        "#" => {
            // "#" also matches the parent level (4.7.1.2).
            out.extend(node.message.iter().filter(|m| !m.is_expired(now)).cloned());
            for (name, child) in &node.children {
                // [MQTT-4.7.2-1]: wildcards at the first level skip `$` topics.
                if at_root && name.starts_with('$') {
                    continue;
                }
                collect_all_unexpired(child, now, out);
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if at_root && name.starts_with('$') {
                    continue;
                }
                collect_matches(child, deeper, false, now, out);
            }
        }
        literal => {
            if let Some(child) = node.children.get(literal) {
                collect_matches(child, deeper, false, now, out);
            }
        }
    }
}

fn collect_all_unexpired(node: &Node, now: Instant, out: &mut Vec<Arc<Message>>) {
    out.extend(node.message.iter().filter(|m| !m.is_expired(now)).cloned());
    for child in node.children.values() {
        collect_all_unexpired(child, now, out);
    }
}

fn collect_all(node: &Node, out: &mut Vec<Arc<Message>>) {
    out.extend(node.message.iter().cloned());
    for child in node.children.values() {
        collect_all(child, out);
    }
}

fn purge(node: &mut Node, now: Instant) -> usize {
    let mut purged = 0;
    if node.message.as_ref().is_some_and(|m| m.is_expired(now)) {
        node.message = None;
        purged += 1;
    }
    node.children.retain(|_, child| {
        purged += purge(child, now);
        !child.is_empty()
    });
    purged
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mquictt_protocol::QoS;
    use std::time::Duration;

    fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            TopicName::new(topic).unwrap(),
            Bytes::from_static(payload),
            QoS::AtMostOnce,
            true,
        ))
    }

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut found: Vec<String> = store
            .matching(&TopicFilter::new(filter).unwrap(), Instant::now())
            .iter()
            .map(|m| m.topic.to_string())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn mqtt_3_3_1_5_set_and_replace() {
        let mut store = RetainedStore::new();
        assert_eq!(store.retain(message("a/b", b"1")), RetainOutcome::Stored);
        assert_eq!(store.retain(message("a/b", b"2")), RetainOutcome::Replaced);
        assert_eq!(store.len(), 1);
        let now = Instant::now();
        let kept = store.get(&TopicName::new("a/b").unwrap(), now).unwrap();
        assert_eq!(&kept.payload[..], b"2");
    }

    #[test]
    fn mqtt_3_3_1_6_empty_payload_deletes() {
        let mut store = RetainedStore::new();
        store.retain(message("a/b", b"1"));
        assert_eq!(store.retain(message("a/b", b"")), RetainOutcome::Deleted);
        assert_eq!(store.retain(message("a/b", b"")), RetainOutcome::Unchanged);
        assert!(store.is_empty());
        assert!(store.root.is_empty(), "empty branches are pruned");
    }

    #[test]
    fn lookup_by_filter_follows_wildcard_rules() {
        let mut store = RetainedStore::new();
        for topic in [
            "sport",
            "sport/tennis",
            "sport/tennis/p1",
            "news",
            "$SYS/uptime",
            "/x",
        ] {
            store.retain(message(topic, b"v"));
        }
        assert_eq!(
            topics(&store, "sport/#"),
            ["sport", "sport/tennis", "sport/tennis/p1"]
        );
        assert_eq!(topics(&store, "sport/+"), ["sport/tennis"]);
        assert_eq!(topics(&store, "+"), ["news", "sport"]);
        assert_eq!(topics(&store, "+/x"), ["/x"]);
        assert_eq!(
            topics(&store, "#").len(),
            5,
            "no $SYS via a leading wildcard"
        );
        assert_eq!(topics(&store, "$SYS/#"), ["$SYS/uptime"]);
        assert_eq!(topics(&store, "$share/g/news"), ["news"]);
    }

    #[test]
    fn expired_messages_are_not_returned_and_are_purged() {
        let mut store = RetainedStore::new();
        let now = Instant::now();
        let mut expiring = Message::new(
            TopicName::new("t/1").unwrap(),
            Bytes::from_static(b"v"),
            QoS::AtMostOnce,
            true,
        );
        expiring.expires_at = Some(Box::new(now + Duration::from_secs(5)));
        store.retain(Arc::new(expiring));
        store.retain(message("t/2", b"v"));
        let later = now + Duration::from_secs(6);
        let filter = TopicFilter::new("t/+").unwrap();
        assert_eq!(store.matching(&filter, now).len(), 2);
        assert_eq!(store.matching(&filter, later).len(), 1);
        assert!(store.get(&TopicName::new("t/1").unwrap(), later).is_none());
        assert_eq!(store.purge_expired(later), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(store.iter().len(), 1);
    }
}
