//! Shared subscription groups (`$share/{group}/{filter}`, MQTT 5 4.8.2) and the strategy that
//! picks which member receives each message. The trie in `subscriptions.rs` finds the groups
//! whose filter matches; this file only decides among a group's members.
//!
//! Distribution strategy: round robin. Each message goes to the member after the one that got
//! the previous message, skipping members the caller reports as not ready (offline, or with a
//! full inflight window). When no member is ready the message still goes to the next member in
//! turn, whose session queues it, so a message is never lost just because every member is
//! busy. When a member's session ends with unacknowledged messages, those are handed to another
//! member with [`SharedGroup::pick`] and `exclude` set to the departing member.

use crate::message::ClientId;
use crate::subscriptions::Subscription;

/// One member of a shared subscription group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMember {
    /// The subscribing client.
    pub client: ClientId,
    /// Its subscription, with its own options and identifier.
    pub subscription: Subscription,
}

/// The members of one shared subscription group for one filter, in subscription order.
#[derive(Debug, Clone, Default)]
pub struct SharedGroup {
    members: Vec<SharedMember>,
    /// Index of the member that is first in line for the next message.
    next: usize,
}

impl SharedGroup {
    /// Adds `client` or replaces its subscription; returns whether it was already a member.
    pub fn insert(&mut self, client: &ClientId, subscription: Subscription) -> bool {
        if let Some(member) = self.members.iter_mut().find(|m| m.client == *client) {
            member.subscription = subscription;
            return true;
        }
        self.members.push(SharedMember {
            client: client.clone(),
            subscription,
        });
        false
    }

    /// Removes `client`; returns whether it was a member.
    pub fn remove(&mut self, client: &ClientId) -> bool {
        let Some(position) = self.members.iter().position(|m| m.client == *client) else {
            return false;
        };
        self.members.remove(position);
        // Keep the rotation where it was: members after the removed one moved down by one.
        if position < self.next {
            self.next -= 1;
        }
        if self.next >= self.members.len() {
            self.next = 0;
        }
        true
    }

    /// Whether the group has no members left.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The members, in subscription order.
    pub fn members(&self) -> &[SharedMember] {
        &self.members
    }

    /// Picks the member for the next message and advances the rotation: the first ready
    /// member from the current position on, else the first member that is not excluded.
    /// `None` only when every member is excluded.
    pub fn pick(
        &mut self,
        is_ready: impl Fn(&ClientId) -> bool,
        exclude: Option<&ClientId>,
    ) -> Option<&SharedMember> {
        let count = self.members.len();
        let candidates = || {
            (0..count)
                .map(|offset| (self.next + offset) % count)
                .filter(|&i| {
                    self.members
                        .get(i)
                        .is_some_and(|m| Some(&m.client) != exclude)
                })
        };
        let chosen = candidates()
            .find(|&i| self.members.get(i).is_some_and(|m| is_ready(&m.client)))
            .or_else(|| candidates().next())?;
        self.next = (chosen + 1) % count;
        self.members.get(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mquictt_protocol::{QoS, SubscriptionOptions, TopicFilter};

    fn subscription() -> Subscription {
        Subscription {
            filter: TopicFilter::new("$share/g/a/+").unwrap(),
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            identifier: None,
        }
    }

    fn group(names: &[&str]) -> SharedGroup {
        let mut group = SharedGroup::default();
        for name in names {
            group.insert(&ClientId::from(*name), subscription());
        }
        group
    }

    fn pick(group: &mut SharedGroup, ready: &[&str], exclude: Option<&str>) -> Option<String> {
        let exclude = exclude.map(ClientId::from);
        group
            .pick(|c| ready.contains(&&**c), exclude.as_ref())
            .map(|m| m.client.to_string())
    }

    #[test]
    fn round_robin_over_ready_members() {
        let mut g = group(&["a", "b", "c"]);
        let all = ["a", "b", "c"];
        let picks: Vec<_> = (0..6).filter_map(|_| pick(&mut g, &all, None)).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn skips_members_that_are_not_ready() {
        let mut g = group(&["a", "b", "c"]);
        assert_eq!(pick(&mut g, &["c"], None).as_deref(), Some("c"));
        assert_eq!(pick(&mut g, &["b", "c"], None).as_deref(), Some("b"));
    }

    #[test]
    fn falls_back_to_the_next_member_when_none_is_ready() {
        let mut g = group(&["a", "b"]);
        assert_eq!(pick(&mut g, &[], None).as_deref(), Some("a"));
        assert_eq!(pick(&mut g, &[], None).as_deref(), Some("b"));
    }

    #[test]
    fn redelivery_excludes_the_departing_member() {
        let mut g = group(&["a", "b"]);
        assert_eq!(pick(&mut g, &["a", "b"], Some("a")).as_deref(), Some("b"));
        assert_eq!(pick(&mut g, &["a", "b"], Some("a")).as_deref(), Some("b"));
        let mut alone = group(&["a"]);
        assert_eq!(pick(&mut alone, &["a"], Some("a")), None);
    }

    #[test]
    fn removal_keeps_the_rotation_and_reinsert_replaces() {
        let mut g = group(&["a", "b", "c"]);
        let all = ["a", "b", "c"];
        assert_eq!(pick(&mut g, &all, None).as_deref(), Some("a"));
        assert_eq!(pick(&mut g, &all, None).as_deref(), Some("b"));
        assert!(g.remove(&ClientId::from("a")));
        assert!(!g.remove(&ClientId::from("a")));
        assert_eq!(pick(&mut g, &all, None).as_deref(), Some("c"));
        assert!(g.insert(&ClientId::from("b"), subscription()));
        assert_eq!(g.len(), 2);
        assert!(g.remove(&ClientId::from("b")));
        assert!(g.remove(&ClientId::from("c")));
        assert!(g.is_empty());
        assert_eq!(pick(&mut g, &all, None), None);
    }
}
