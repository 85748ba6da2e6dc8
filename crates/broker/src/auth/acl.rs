//! The access control list: ordered allow/deny rules for publishing, subscribing and
//! receiving retained messages, per user, per client identifier, for anonymous clients or for
//! everyone, with `%u` (user name) and `%c` (client identifier) substituted into topic
//! patterns. The first rule that applies decides; when none does, access is denied.
//!
//! One rule per line, `#` starts a comment:
//!
//! ```text
//! # effect  who             access              topic pattern
//! allow     user:admin      all                 #
//! allow     all             publish,subscribe   devices/%c/#
//! deny      anonymous       publish             #
//! allow     anonymous       subscribe,retained  public/#
//! allow     client:gateway  publish             sensors/+/reading
//! ```
//!
//! `who` is `all`, `anonymous`, `user:NAME` or `client:ID`; `access` is `publish`,
//! `subscribe`, `retained` or `all`, or several joined by commas. Patterns are topic filters.
//! A publish or a retained message is allowed by a rule whose pattern matches its topic. A
//! subscription is allowed only by a rule whose pattern covers every topic the filter can
//! match, and refused by a deny rule whose pattern matches any topic the filter could match,
//! so `deny all subscribe secret/#` before `allow all subscribe #` refuses a subscription to
//! `#`. A `%u` or `%c` whose value is missing or contains `+`, `#` or `/` makes the rule not
//! apply, so nobody can widen a pattern by choosing a name like `#`.

use std::path::{Path, PathBuf};

use mquictt_protocol::topic::matches_filter;
use mquictt_protocol::{TopicFilter, TopicName};

use super::Principal;

/// Why an ACL file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file could not be read.
    #[error("ACL file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A line is not a rule.
    #[error("ACL line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// What a client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Publish to a topic.
    Publish,
    /// Subscribe with a topic filter.
    Subscribe,
    /// Receive a retained message when subscribing.
    Retained,
}

impl Access {
    fn bit(self) -> u8 {
        match self {
            Access::Publish => 1,
            Access::Subscribe => 2,
            Access::Retained => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    All,
    Anonymous,
    User(String),
    Client(String),
}

impl Who {
    fn applies_to(&self, principal: &Principal<'_>) -> bool {
        match self {
            Who::All => true,
            Who::Anonymous => principal.username.is_none(),
            Who::User(name) => principal.username == Some(name.as_str()),
            Who::Client(id) => principal.client_id == id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    who: Who,
    /// Bits of [`Access::bit`].
    access: u8,
    pattern: String,
}

/// A parsed ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
}

impl Acl {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses ACL text (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, AclError> {
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_error = |message: String| AclError::Line {
                line: index + 1,
                message,
            };
            // A `#` is a wildcard inside a pattern; it starts a comment only as the first
            // field or after the fourth.
            let fields: Vec<&str> = line
                .split_whitespace()
                .enumerate()
                .take_while(|(i, field)| !(field.starts_with('#') && (*i == 0 || *i >= 4)))
                .map(|(_, field)| field)
                .collect();
            let fields = match fields.as_slice() {
                [] => continue,
                [effect, who, access, pattern] => [*effect, *who, *access, *pattern],
                _ => {
                    return Err(line_error(
                        "expected `allow|deny WHO ACCESS PATTERN`".to_string(),
                    ))
                }
            };
            rules.push(parse_rule(fields).map_err(line_error)?);
        }
        Ok(Self { rules })
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (which denies everything).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `principal` may publish to `topic`.
    pub fn allows_publish(&self, principal: &Principal<'_>, topic: &TopicName) -> bool {
        self.decide(principal, Access::Publish, |pattern, _| {
            matches_filter(pattern, topic.as_str())
        })
    }

    /// Whether `principal` may receive the retained message on `topic`.
    pub fn allows_retained(&self, principal: &Principal<'_>, topic: &TopicName) -> bool {
        self.decide(principal, Access::Retained, |pattern, _| {
            matches_filter(pattern, topic.as_str())
        })
    }

    /// Whether `principal` may subscribe to `filter` (for a shared subscription, the filter
    /// after `$share/{group}/`).
    pub fn allows_subscribe(&self, principal: &Principal<'_>, filter: &TopicFilter) -> bool {
        let filter = filter.filter();
        self.decide(principal, Access::Subscribe, |pattern, allow| {
            if allow {
                covers(pattern, filter)
            } else {
                overlaps(pattern, filter)
            }
        })
    }

    /// The first rule for `principal` and `access` whose (substituted) pattern applies
    /// decides; `applies(pattern, is_allow_rule)` says whether it does.
    fn decide(
        &self,
        principal: &Principal<'_>,
        access: Access,
        mut applies: impl FnMut(&str, bool) -> bool,
    ) -> bool {
        for rule in &self.rules {
            if rule.access & access.bit() == 0 || !rule.who.applies_to(principal) {
                continue;
            }
            let Some(pattern) = substitute(&rule.pattern, principal) else {
                continue;
            };
            if applies(&pattern, rule.allow) {
                return rule.allow;
            }
        }
        false
    }
}

fn parse_rule([effect, who, access, pattern]: [&str; 4]) -> Result<Rule, String> {
    let allow = match effect {
        "allow" => true,
        "deny" => false,
        other => return Err(format!("expected allow or deny, got {other:?}")),
    };
    let who = match who {
        "all" => Who::All,
        "anonymous" => Who::Anonymous,
        other => match other.split_once(':') {
            Some(("user", name)) if !name.is_empty() => Who::User(name.to_owned()),
            Some(("client", id)) if !id.is_empty() => Who::Client(id.to_owned()),
            _ => {
                return Err(format!(
                    "expected all, anonymous, user:NAME or client:ID, got {other:?}"
                ))
            }
        },
    };
    let mut bits = 0;
    for name in access.split(',') {
        bits |= match name {
            "publish" => Access::Publish.bit(),
            "subscribe" => Access::Subscribe.bit(),
            "retained" => Access::Retained.bit(),
            "all" => Access::Publish.bit() | Access::Subscribe.bit() | Access::Retained.bit(),
            other => {
                return Err(format!(
                    "expected publish, subscribe, retained or all, got {other:?}"
                ))
            }
        };
    }
    // Placeholders stand for one plain level, so any value keeps the pattern valid.
    let sample = pattern.replace("%u", "u").replace("%c", "c");
    match TopicFilter::new(&sample) {
        Ok(filter) if filter.share_name().is_none() => {}
        Ok(_) => return Err("patterns cannot be shared subscriptions".to_string()),
        Err(e) => return Err(format!("bad topic pattern {pattern:?}: {e}")),
    }
    Ok(Rule {
        allow,
        who,
        access: bits,
        pattern: pattern.to_owned(),
    })
}

/// The pattern with `%u` and `%c` replaced, or `None` when a needed value is missing or would
/// change the pattern's shape.
fn substitute(pattern: &str, principal: &Principal<'_>) -> Option<String> {
    let plain = |value: &str| !value.is_empty() && !value.contains(['+', '#', '/']);
    let mut out = pattern.to_owned();
    if out.contains("%u") {
        let user = principal.username.filter(|u| plain(u))?;
        out = out.replace("%u", user);
    }
    if out.contains("%c") {
        if !plain(principal.client_id) {
            return None;
        }
        out = out.replace("%c", principal.client_id);
    }
    Some(out)
}

/// Whether every topic that `filter` matches is matched by `pattern`.
fn covers(pattern: &str, filter: &str) -> bool {
    // A pattern starting with a wildcard matches no `$` topic [MQTT-4.7.2-1].
    if filter.starts_with('$') && pattern.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    for level in pattern.split('/') {
        match level {
            "#" => return true,
            "+" => match filter_levels.next() {
                None | Some("#") => return false,
                Some(_) => {}
            },
            literal => {
                if filter_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    filter_levels.next().is_none()
}

/// Whether some topic is matched by both `pattern` and `filter`.
fn overlaps(pattern: &str, filter: &str) -> bool {
    let leads_with_wildcard = |f: &str| f.starts_with(['+', '#']);
    let leads_with_dollar = |f: &str| f.starts_with('$');
    if (leads_with_wildcard(pattern) && leads_with_dollar(filter))
        || (leads_with_wildcard(filter) && leads_with_dollar(pattern))
    {
        return false;
    }
    let mut a = pattern.split('/');
    let mut b = filter.split('/');
    loop {
        match (a.next(), b.next()) {
            (Some("#"), _) | (_, Some("#")) | (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(x), Some(y)) => {
                if x != y {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who<'a>(client_id: &'a str, username: Option<&'a str>) -> Principal<'a> {
        Principal {
            client_id,
            username,
        }
    }

    fn topic(t: &str) -> TopicName {
        TopicName::new(t).unwrap()
    }

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::new(f).unwrap()
    }

    const EXAMPLE: &str = "\
        # effect  who             access              pattern\n\
        allow     user:admin      all                 #\n\
        allow     user:admin      all                 $SYS/#\n\
        deny      all             subscribe           secret/#   # nobody but admin\n\
        allow     all             publish,subscribe   devices/%c/#\n\
        allow     user:%u-ignored publish             x\n\
        allow     all             all                 users/%u/#\n\
        deny      anonymous       publish             #\n\
        allow     anonymous       subscribe,retained  public/#\n\
        allow     client:gateway  publish             sensors/+/reading\n";

    #[test]
    fn first_matching_rule_decides_and_nothing_matching_denies() {
        let acl = Acl::parse(EXAMPLE).unwrap();
        assert_eq!(acl.len(), 9);
        let admin = who("console", Some("admin"));
        assert!(acl.allows_publish(&admin, &topic("anything/at/all")));
        assert!(acl.allows_subscribe(&admin, &filter("secret/#")));
        assert!(acl.allows_subscribe(&admin, &filter("$SYS/#")));
        let anonymous = who("d1", None);
        assert!(acl.allows_subscribe(&anonymous, &filter("public/+/x")));
        assert!(acl.allows_retained(&anonymous, &topic("public/news")));
        assert!(!acl.allows_publish(&anonymous, &topic("public/news")));
        assert!(!acl.allows_retained(&anonymous, &topic("private/news")));
        assert!(!acl.allows_subscribe(&anonymous, &filter("other")));
        let gateway = who("gateway", Some("gw"));
        assert!(acl.allows_publish(&gateway, &topic("sensors/7/reading")));
        assert!(!acl.allows_publish(&gateway, &topic("sensors/7/config")));
    }

    #[test]
    fn placeholders_are_substituted() {
        let acl = Acl::parse(EXAMPLE).unwrap();
        let alice = who("d1", Some("alice"));
        assert!(acl.allows_publish(&alice, &topic("devices/d1/temp")));
        assert!(!acl.allows_publish(&alice, &topic("devices/d2/temp")));
        assert!(acl.allows_subscribe(&alice, &filter("users/alice/#")));
        assert!(!acl.allows_subscribe(&alice, &filter("users/bob/#")));
        assert!(acl.allows_subscribe(&alice, &filter("$share/g/devices/d1/+")));
        // No user name: the %u rule does not apply.
        assert!(!acl.allows_publish(&who("d1", None), &topic("users/alice/x")));
    }

    #[test]
    fn names_with_wildcards_cannot_widen_a_pattern() {
        let acl = Acl::parse("allow all all devices/%c/#\nallow all all users/%u/#\n").unwrap();
        for (client, user) in [("#", Some("x")), ("+", None), ("a/b", None)] {
            let p = who(client, user);
            assert!(!acl.allows_subscribe(&p, &filter("devices/#")), "{client}");
            assert!(!acl.allows_publish(&p, &topic("devices/a/b/c")), "{client}");
        }
        let sneaky = who("c", Some("#"));
        assert!(!acl.allows_subscribe(&sneaky, &filter("users/#")));
    }

    #[test]
    fn subscriptions_must_be_covered_and_deny_rules_catch_overlaps() {
        let acl = Acl::parse(EXAMPLE).unwrap();
        let alice = who("d1", Some("alice"));
        // `#` overlaps `secret/#`, which is denied before anything allows it.
        assert!(!acl.allows_subscribe(&alice, &filter("#")));
        assert!(!acl.allows_subscribe(&alice, &filter("+/x")));
        // devices/d1/# does not cover devices/+/x.
        assert!(!acl.allows_subscribe(&alice, &filter("devices/+/x")));
        assert!(covers("a/+/#", "a/b/c/d"));
        assert!(covers("a/#", "a"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("#", "$SYS/x"));
        assert!(overlaps("a/+/c", "a/b/+"));
        assert!(overlaps("a/#", "a"));
        assert!(!overlaps("a/b", "a/c"));
        assert!(!overlaps("#", "$SYS/x"));
        assert!(!overlaps("a/b", "a/b/c"));
    }

    #[test]
    fn an_empty_acl_denies_everything() {
        let acl = Acl::parse("# nothing\n\n").unwrap();
        assert!(acl.is_empty());
        assert!(!acl.allows_publish(&who("c", Some("u")), &topic("a")));
        assert!(!acl.allows_subscribe(&who("c", Some("u")), &filter("a")));
    }

    #[test]
    fn bad_rules_are_named_by_line() {
        for (text, line) in [
            ("allow all publish\n", 1),
            ("\npermit all publish a\n", 2),
            ("allow everyone publish a\n", 1),
            ("allow all read a\n", 1),
            ("allow all publish a/#/b\n", 1),
            ("allow all publish $share/g/a\n", 1),
            ("allow user: publish a\n", 1),
        ] {
            match Acl::parse(text) {
                Err(AclError::Line { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }
}
