//! Topic names and topic filters (4.7), shared subscriptions (4.8.2) and matching.
//!
//! A `TopicName` is where a message is published; a `TopicFilter` is what a subscription
//! asks for. Both are checked when they are made, so code holding one never re-validates.

use std::fmt;

use bytes::Bytes;

use crate::string::{AsciiScan, MqttString, StringError};

/// Why a string is not a valid topic name or topic filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Not a valid MQTT string.
    #[error(transparent)]
    String(#[from] StringError),
    /// "All Topic Names and Topic Filters MUST be at least one character long" [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// "The wildcard characters can be used in Topic Filters, but MUST NOT be used within a
    /// Topic Name" [MQTT-4.7.0-1].
    #[error("topic name contains a wildcard [MQTT-4.7.0-1]")]
    WildcardInName,
    /// `#` not alone in the last level [MQTT-4.7.1-1].
    #[error("'#' must be the last character and alone in its level [MQTT-4.7.1-1]")]
    MultiLevelWildcardMisplaced,
    /// `+` not alone in its level [MQTT-4.7.1-2].
    #[error("'+' must occupy an entire level [MQTT-4.7.1-2]")]
    SingleLevelWildcardMisplaced,
    /// A `$share/` filter without a valid share name or filter [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    #[error("shared subscription must be $share/{{name}}/{{filter}} with a name free of '/', '+' and '#' [MQTT-4.8.2-1]")]
    InvalidShare,
}

/// A topic name: no wildcards, at least one character, a valid MQTT string.
///
/// The one exception is [`TopicName::empty`]: an MQTT 5 PUBLISH that uses a topic alias may
/// carry an empty topic name, which the session replaces with the aliased name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(MqttString);

impl TopicName {
    /// Checks `text` and copies it.
    pub fn new(text: impl AsRef<str>) -> Result<Self, TopicError> {
        Self::from_string(MqttString::new(text)?)
    }

    /// Checks an already decoded string without copying it.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        let scan = AsciiScan::of(s.as_bytes());
        Self::from_scanned(s, scan)
    }

    /// The topic rules for a valid MQTT string whose bytes `scan` describes, so that a
    /// decoder checks string and topic rules in one pass over plain ASCII names.
    #[inline]
    pub(crate) fn from_scanned(s: MqttString, scan: AsciiScan) -> Result<Self, TopicError> {
        Self::check_scanned(s.as_bytes(), scan)?;
        Ok(Self(s))
    }

    /// The topic rules for the bytes of a valid MQTT string that `scan` describes: at least
    /// one character [MQTT-4.7.3-1] and no wildcard [MQTT-4.7.0-1].
    #[inline(always)]
    pub(crate) fn check_scanned(bytes: &[u8], scan: AsciiScan) -> Result<(), TopicError> {
        if bytes.is_empty() {
            return Err(TopicError::Empty);
        }
        let wildcard = if scan.plain {
            scan.wildcard
        } else {
            bytes.iter().any(|&b| b == b'+' || b == b'#')
        };
        if wildcard {
            return Err(TopicError::WildcardInName);
        }
        Ok(())
    }

    /// Wraps a string that has passed [`TopicName::check_scanned`].
    #[inline(always)]
    pub(crate) fn from_checked(s: MqttString) -> Self {
        Self(s)
    }

    /// Checks raw bytes (from the wire) without copying them.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        Self::from_string(MqttString::from_bytes(bytes)?)
    }

    /// The empty topic name of a PUBLISH that relies on a topic alias (3.3.2.3.4).
    pub fn empty() -> Self {
        Self(MqttString::default())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as an MQTT string.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// Whether this is the alias placeholder returned by [`TopicName::empty`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the name starts with `$`, which wildcards at the first level do not match
    /// [MQTT-4.7.2-1].
    pub fn is_system(&self) -> bool {
        self.0.as_bytes().first() == Some(&b'$')
    }

    /// The levels of the name, split at `/`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.as_str().split('/')
    }
}

/// A topic filter: a topic with optional `+` and `#` wildcards, possibly the filter of a
/// shared subscription `$share/{name}/{filter}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    full: MqttString,
    /// Byte offset of the filter proper: 0, or just past `$share/{name}/`.
    filter_start: usize,
}

const SHARE_PREFIX: &str = "$share/";

impl TopicFilter {
    /// Checks `text` and copies it.
    pub fn new(text: impl AsRef<str>) -> Result<Self, TopicError> {
        Self::from_string(MqttString::new(text)?)
    }

    /// Checks raw bytes (from the wire) without copying them.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        Self::from_string(MqttString::from_bytes(bytes)?)
    }

    /// Checks an already decoded string without copying it.
    pub fn from_string(full: MqttString) -> Result<Self, TopicError> {
        let text = full.as_str();
        let filter_start = match text.strip_prefix(SHARE_PREFIX) {
            Some(rest) => {
                let (name, filter) = rest.split_once('/').ok_or(TopicError::InvalidShare)?;
                if name.is_empty() || name.contains(['+', '#']) || filter.is_empty() {
                    return Err(TopicError::InvalidShare);
                }
                text.len() - filter.len()
            }
            None => 0,
        };
        let filter = text.get(filter_start..).unwrap_or_default();
        check_filter(filter)?;
        Ok(Self { full, filter_start })
    }

    /// The whole filter as sent, including any `$share/{name}/` prefix.
    pub fn as_str(&self) -> &str {
        self.full.as_str()
    }

    /// The whole filter as an MQTT string.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.full
    }

    /// The filter that topics are matched against: without the `$share/{name}/` prefix.
    pub fn filter(&self) -> &str {
        self.full
            .as_str()
            .get(self.filter_start..)
            .unwrap_or_default()
    }

    /// The share name of a shared subscription, `None` for an ordinary one.
    pub fn share_name(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        self.full
            .as_str()
            .get(SHARE_PREFIX.len()..self.filter_start - 1)
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.filter().contains(['+', '#'])
    }

    /// Whether a message published to `topic` matches this filter (4.7), ignoring any share
    /// prefix. "The Server MUST NOT match Topic Filters starting with a wildcard character (#
    /// or +) with Topic Names beginning with a $ character" [MQTT-4.7.2-1].
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches_filter(self.filter(), topic.as_str())
    }
}

fn check_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MultiLevelWildcardMisplaced);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::SingleLevelWildcardMisplaced);
        }
    }
    Ok(())
}

/// Matches a filter (without share prefix, already validated) against a topic name.
pub fn matches_filter(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        match filter_level {
            // "#" also matches the parent level: "sport/#" matches "sport" (4.7.1.2).
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if topic_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn names_reject_wildcards_and_empty() {
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        // Names that are not plain ASCII take the byte-by-byte wildcard check.
        assert_eq!(
            TopicName::new("caf\u{e9}/+"),
            Err(TopicError::WildcardInName)
        );
        assert!(TopicName::new("caf\u{e9}/menu").is_ok());
        // Empty levels and a lone "/" are valid names (4.7.3).
        assert!(TopicName::new("/").is_ok());
        assert!(TopicName::new("a//b").is_ok());
    }

    #[test]
    fn filters_follow_wildcard_rules() {
        for ok in ["#", "+", "a/#", "+/+", "/+", "a/+/b", "+/tennis/#", "a//b"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            TopicFilter::new("a/#/b"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            TopicFilter::new("a#"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            TopicFilter::new("a+/b"),
            Err(TopicError::SingleLevelWildcardMisplaced)
        );
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn spec_matching_examples() {
        // 4.7.1.2
        assert!(filter("sport/tennis/player1/#").matches(&name("sport/tennis/player1")));
        assert!(filter("sport/tennis/player1/#").matches(&name("sport/tennis/player1/ranking")));
        assert!(filter("sport/#").matches(&name("sport")));
        // 4.7.1.3
        assert!(filter("sport/tennis/+").matches(&name("sport/tennis/player1")));
        assert!(!filter("sport/tennis/+").matches(&name("sport/tennis/player1/ranking")));
        assert!(!filter("sport/+").matches(&name("sport")));
        assert!(filter("sport/+").matches(&name("sport/")));
        assert!(filter("+/+").matches(&name("/finance")));
        assert!(filter("/+").matches(&name("/finance")));
        assert!(!filter("+").matches(&name("/finance")));
        assert!(filter("#").matches(&name("a/b/c")));
    }

    #[test]
    fn dollar_topics_escape_leading_wildcards() {
        assert!(!filter("#").matches(&name("$SYS/monitor/Clients")));
        assert!(!filter("+/monitor/Clients").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/#").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/monitor/+").matches(&name("$SYS/monitor/Clients")));
    }

    #[test]
    fn shared_subscriptions_parse() {
        let f = filter("$share/group/sensors/+/temp");
        assert_eq!(f.share_name(), Some("group"));
        assert_eq!(f.filter(), "sensors/+/temp");
        assert!(f.matches(&name("sensors/k1/temp")));
        assert_eq!(filter("sensors/#").share_name(), None);
        for bad in [
            "$share/",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/",
            "$share/g/a#",
        ] {
            assert!(TopicFilter::new(bad).is_err(), "{bad}");
        }
    }
}
