//! The subscription tree: a trie over topic levels that answers "who receives a message
//! published to this topic" (4.7). It holds ordinary subscriptions per client and shared
//! subscription groups per filter; it applies the `$`-topic rule, No Local, Retain As
//! Published and the merge of overlapping subscriptions. It knows nothing of connections or
//! queues: the caller says which clients are ready and delivers the answer.

use mquictt_protocol::{QoS, SubscriptionOptions, TopicFilter};

use crate::message::{ClientId, Message};
use crate::peer_keyed::PeerKeyedMap;
use crate::shared::SharedGroup;

/// One subscription of one client, as made by SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The filter as sent, including any `$share/{group}/` prefix.
    pub filter: TopicFilter,
    /// Maximum QoS, No Local, Retain As Published, Retain Handling.
    pub options: SubscriptionOptions,
    /// The Subscription Identifier given in SUBSCRIBE (5.0), echoed in matching PUBLISHes
    /// [MQTT-3.3.4-3].
    pub identifier: Option<u32>,
}

/// Who gets a copy of a routed message, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receiving client.
    pub client: ClientId,
    /// QoS of the copy: the lower of the published QoS and the subscription's maximum
    /// [MQTT-3.8.4-8].
    pub qos: QoS,
    /// RETAIN flag of the copy: the published flag where Retain As Published is set, else 0
    /// [MQTT-3.3.1-12] [MQTT-3.3.1-13].
    pub retain: bool,
    /// Identifiers of every matching subscription of this client that has one [MQTT-3.3.4-3].
    pub subscription_identifiers: Vec<u32>,
    /// The shared subscription (`$share/...` filter) this copy is for, if any.
    pub shared: Option<TopicFilter>,
}

#[derive(Debug, Default)]
struct Node {
    children: PeerKeyedMap<Box<str>, Node>,
    clients: PeerKeyedMap<ClientId, Subscription>,
    groups: PeerKeyedMap<Box<str>, SharedGroup>,
    /// Which wildcard children `children` holds ([`HASH`], [`PLUS`]): routing looks for them
    /// at every level of every message, and most levels have none.
    wildcards: u8,
}

/// `Node::wildcards` bit of a `#` child.
const HASH: u8 = 1;
/// `Node::wildcards` bit of a `+` child.
const PLUS: u8 = 2;

/// The `Node::wildcards` bit of the child named `level`.
fn wildcard_bit(level: &str) -> u8 {
    match level {
        "#" => HASH,
        "+" => PLUS,
        _ => 0,
    }
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.clients.is_empty() && self.groups.is_empty()
    }

    /// The child named `level`, made if missing.
    fn child_or_default(&mut self, level: &str) -> &mut Node {
        self.wildcards |= wildcard_bit(level);
        self.children.entry(level.into()).or_default()
    }

    /// The wildcard child `bit` names, if any, without hashing when there is none.
    fn wildcard_child(&mut self, bit: u8) -> Option<&mut Node> {
        if self.wildcards & bit == 0 {
            return None;
        }
        self.children.get_mut(if bit == HASH { "#" } else { "+" })
    }

    fn remove_child(&mut self, level: &str) {
        self.children.remove(level);
        self.wildcards &= !wildcard_bit(level);
    }
}

/// All subscriptions of the broker, ordinary and shared.
#[derive(Debug, Default)]
pub struct SubscriptionTree {
    root: Node,
    len: usize,
}

impl SubscriptionTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscription or replaces the client's existing one with the same filter, as
    /// "the Server MUST replace that existing Subscription with a new Subscription"
    /// [MQTT-3.8.4-3]. Returns whether one existed, which Retain Handling 1 needs.
    pub fn subscribe(&mut self, client: &ClientId, subscription: Subscription) -> bool {
        let node = subscription
            .filter
            .filter()
            .split('/')
            .fold(&mut self.root, |node, level| node.child_or_default(level));
        let existed = match subscription.filter.share_name() {
            Some(group) => node
                .groups
                .entry(group.into())
                .or_default()
                .insert(client, subscription),
            None => node.clients.insert(client.clone(), subscription).is_some(),
        };
        if !existed {
            self.len += 1;
        }
        existed
    }

    /// Removes the client's subscription with exactly this filter; returns whether it existed
    /// (UNSUBACK 0x11 "No subscription existed" otherwise).
    pub fn unsubscribe(&mut self, client: &ClientId, filter: &TopicFilter) -> bool {
        let levels: Vec<&str> = filter.filter().split('/').collect();
        let removed = remove_at(&mut self.root, &levels, client, filter.share_name());
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Number of subscriptions (a shared group counts once per member).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Everyone who receives `message`: one delivery per client with ordinary subscriptions,
    /// merged over all of its matching subscriptions (3.3.4: "the Server MUST deliver the
    /// message to the Client respecting the maximum QoS of all the matching subscriptions"
    /// [MQTT-3.3.4-2]), plus one delivery per matching shared group to the member the group's
    /// strategy picks among those `is_ready` reports as able to take it.
    pub fn route(
        &mut self,
        message: &Message,
        is_ready: impl Fn(&ClientId) -> bool,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        self.route_into(message, is_ready, &mut deliveries);
        deliveries
    }

    /// [`Self::route`] into `deliveries`, which is cleared first: the router passes the same
    /// vector for every message, so routing allocates nothing for it once it has grown.
    pub fn route_into(
        &mut self,
        message: &Message,
        is_ready: impl Fn(&ClientId) -> bool,
        deliveries: &mut Vec<Delivery>,
    ) {
        deliveries.clear();
        let system = message.topic.is_system();
        let ordinary = deliveries;
        // Where each client's copy is in `ordinary`, made only when a second node matches: a
        // client has one subscription per node, so copies of one node never need merging.
        let mut index: Option<PeerKeyedMap<ClientId, usize>> = None;
        let mut shared: Vec<Delivery> = Vec::new();
        let topic = message.topic.as_str();
        visit_matches(&mut self.root, Some(topic), system, &mut |node| {
            let merging = !ordinary.is_empty();
            for (client, subscription) in &node.clients {
                // "the Application Message MUST NOT be forwarded to a connection with a
                // ClientID equal to the ClientID of the publishing connection" [MQTT-3.8.3-3].
                // A QUIC data stream's subscriptions belong to its client.
                if subscription.options.no_local
                    && message.publisher.as_deref() == Some(crate::quic::subscriber::owner(client))
                {
                    continue;
                }
                let copy = delivery_for(client, subscription, message, None);
                if !merging {
                    ordinary.push(copy);
                    continue;
                }
                let index = index.get_or_insert_with(|| {
                    let mut index = PeerKeyedMap::default();
                    for (i, earlier) in ordinary.iter().enumerate() {
                        index.insert(earlier.client.clone(), i);
                    }
                    index
                });
                match index.get(client).and_then(|&i| ordinary.get_mut(i)) {
                    Some(existing) => {
                        existing.qos = existing.qos.max(copy.qos);
                        existing.retain |= copy.retain;
                        existing
                            .subscription_identifiers
                            .extend(copy.subscription_identifiers);
                    }
                    None => {
                        index.insert(client.clone(), ordinary.len());
                        ordinary.push(copy);
                    }
                }
            }
            for group in node.groups.values_mut() {
                if let Some(member) = group.pick(&is_ready, None) {
                    let filter = member.subscription.filter.clone();
                    shared.push(delivery_for(
                        &member.client,
                        &member.subscription,
                        message,
                        Some(filter),
                    ));
                }
            }
        });
        for copy in ordinary.iter_mut() {
            copy.subscription_identifiers.sort_unstable();
            copy.subscription_identifiers.dedup();
        }
        ordinary.extend(shared);
    }

    /// Another member of the shared subscription `filter` for a message that `departing`
    /// received but never acknowledged before its session ended (4.8.2). `None` when the
    /// group has no other member.
    pub fn redeliver_shared(
        &mut self,
        filter: &TopicFilter,
        departing: &ClientId,
        message: &Message,
        is_ready: impl Fn(&ClientId) -> bool,
    ) -> Option<Delivery> {
        let group_name = filter.share_name()?;
        let node = filter
            .filter()
            .split('/')
            .try_fold(&mut self.root, |node, level| node.children.get_mut(level))?;
        let member = node
            .groups
            .get_mut(group_name)?
            .pick(is_ready, Some(departing))?;
        Some(delivery_for(
            &member.client,
            &member.subscription,
            message,
            Some(filter.clone()),
        ))
    }
}

fn delivery_for(
    client: &ClientId,
    subscription: &Subscription,
    message: &Message,
    shared: Option<TopicFilter>,
) -> Delivery {
    Delivery {
        client: client.clone(),
        qos: message.qos.min(subscription.options.qos),
        retain: message.retain && subscription.options.retain_as_published,
        subscription_identifiers: subscription.identifier.into_iter().collect(),
        shared,
    }
}

/// Calls `found` on every node whose filter matches the topic levels left below `node`:
/// `remaining` is the rest of the topic name after the levels already matched, `None` once
/// every level is matched. Split as it goes rather than into a list of levels first, which
/// cost an allocation per routed message.
fn visit_matches(
    node: &mut Node,
    remaining: Option<&str>,
    at_root_of_system_topic: bool,
    found: &mut impl FnMut(&mut Node),
) {
    // "The Server MUST NOT match Topic Filters starting with a wildcard character (# or +)
    // with Topic Names beginning with a $ character" [MQTT-4.7.2-1].
    let wildcards_allowed = !at_root_of_system_topic;
    if wildcards_allowed {
        // "#" matches the parent level and any number of children (4.7.1.2).
        if let Some(rest) = node.wildcard_child(HASH) {
            found(rest);
        }
    }
    let Some(topic) = remaining else {
        found(node);
        return;
    };
    // A plain scan: levels are short, and `split_once` took a fifth of this function.
    let split = topic
        .bytes()
        .position(|b| b == b'/')
        .and_then(|at| topic.split_at_checked(at));
    let (level, deeper) = match split {
        // `rest` starts with the `/`, one byte.
        Some((level, rest)) => (level, rest.get(1..)),
        None => (topic, None),
    };
    if wildcards_allowed {
        if let Some(single) = node.wildcard_child(PLUS) {
            visit_matches(single, deeper, false, found);
        }
    }
    if level != "+" && level != "#" {
        if let Some(exact) = node.children.get_mut(level) {
            visit_matches(exact, deeper, false, found);
        }
    }
}

/// Removes a subscription below `node` and prunes nodes left empty.
fn remove_at(node: &mut Node, levels: &[&str], client: &ClientId, group: Option<&str>) -> bool {
    let Some((level, deeper)) = levels.split_first() else {
        return match group {
            Some(group) => {
                let Some(members) = node.groups.get_mut(group) else {
                    return false;
                };
                let removed = members.remove(client);
                if members.is_empty() {
                    node.groups.remove(group);
                }
                removed
            }
            None => node.clients.remove(client).is_some(),
        };
    };
    let Some(child) = node.children.get_mut(*level) else {
        return false;
    };
    let removed = remove_at(child, deeper, client, group);
    if child.is_empty() {
        node.remove_child(level);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mquictt_protocol::TopicName;

    fn sub(filter: &str, qos: QoS) -> Subscription {
        Subscription {
            filter: TopicFilter::new(filter).unwrap(),
            options: SubscriptionOptions::with_qos(qos),
            identifier: None,
        }
    }

    fn msg(topic: &str, qos: QoS) -> Message {
        Message::new(
            TopicName::new(topic).unwrap(),
            Bytes::from_static(b"x"),
            qos,
            false,
        )
    }

    fn id(name: &str) -> ClientId {
        ClientId::from(name)
    }

    fn receivers(tree: &mut SubscriptionTree, topic: &str) -> Vec<String> {
        let mut names: Vec<String> = tree
            .route(&msg(topic, QoS::ExactlyOnce), |_| true)
            .into_iter()
            .map(|d| d.client.to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn wildcards_match_like_the_spec_examples() {
        let mut tree = SubscriptionTree::new();
        tree.subscribe(&id("hash"), sub("sport/tennis/player1/#", QoS::AtMostOnce));
        tree.subscribe(&id("plus"), sub("sport/tennis/+", QoS::AtMostOnce));
        tree.subscribe(&id("root"), sub("#", QoS::AtMostOnce));
        tree.subscribe(&id("slash"), sub("+/+", QoS::AtMostOnce));
        tree.subscribe(&id("sport"), sub("sport/+", QoS::AtMostOnce));
        assert_eq!(
            receivers(&mut tree, "sport/tennis/player1"),
            ["hash", "plus", "root"]
        );
        assert_eq!(
            receivers(&mut tree, "sport/tennis/player1/ranking"),
            ["hash", "root"]
        );
        assert_eq!(receivers(&mut tree, "sport"), ["root"]);
        assert_eq!(receivers(&mut tree, "sport/"), ["root", "slash", "sport"]);
        assert_eq!(receivers(&mut tree, "/finance"), ["root", "slash"]);
    }

    #[test]
    fn mqtt_4_7_2_1_dollar_topics_are_not_matched_by_leading_wildcards() {
        let mut tree = SubscriptionTree::new();
        tree.subscribe(&id("all"), sub("#", QoS::AtMostOnce));
        tree.subscribe(&id("plus"), sub("+/broker/uptime", QoS::AtMostOnce));
        tree.subscribe(&id("sys"), sub("$SYS/#", QoS::AtMostOnce));
        tree.subscribe(&id("sysplus"), sub("$SYS/+/uptime", QoS::AtMostOnce));
        assert_eq!(
            receivers(&mut tree, "$SYS/broker/uptime"),
            ["sys", "sysplus"]
        );
        assert_eq!(receivers(&mut tree, "a/broker/uptime"), ["all", "plus"]);
    }

    #[test]
    fn mqtt_3_3_4_2_overlapping_subscriptions_give_one_copy_at_the_highest_qos() {
        let mut tree = SubscriptionTree::new();
        let c = id("c");
        let mut first = sub("a/+", QoS::AtMostOnce);
        first.identifier = Some(2);
        let mut second = sub("a/#", QoS::AtLeastOnce);
        second.identifier = Some(7);
        tree.subscribe(&c, first);
        tree.subscribe(&c, second);
        tree.subscribe(&c, sub("a/b", QoS::AtMostOnce));
        let out = tree.route(&msg("a/b", QoS::ExactlyOnce), |_| true);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].qos, QoS::AtLeastOnce);
        assert_eq!(out[0].subscription_identifiers, vec![2, 7]);
        // The published QoS caps the copy too [MQTT-3.8.4-8].
        let low = tree.route(&msg("a/b", QoS::AtMostOnce), |_| true);
        assert_eq!(low[0].qos, QoS::AtMostOnce);
    }

    #[test]
    fn route_into_replaces_what_the_vector_held_and_keeps_its_room() {
        let mut tree = SubscriptionTree::new();
        let (a, b) = (id("a"), id("b"));
        tree.subscribe(&a, sub("t/#", QoS::AtLeastOnce));
        tree.subscribe(&b, sub("t/+", QoS::AtMostOnce));
        let mut deliveries = tree.route(&msg("t/1", QoS::AtLeastOnce), |_| true);
        let room = deliveries.capacity();
        tree.route_into(&msg("t/2", QoS::AtLeastOnce), |_| true, &mut deliveries);
        let mut receivers: Vec<_> = deliveries
            .iter()
            .map(|d| (d.client.clone(), d.qos))
            .collect();
        receivers.sort();
        assert_eq!(
            receivers,
            vec![(a.clone(), QoS::AtLeastOnce), (b, QoS::AtMostOnce)]
        );
        assert_eq!(deliveries.capacity(), room);
        tree.route_into(&msg("u", QoS::AtMostOnce), |_| true, &mut deliveries);
        assert!(
            deliveries.is_empty(),
            "a message nobody subscribed to leaves it empty"
        );
    }

    #[test]
    fn mqtt_3_8_3_3_no_local_skips_the_publisher() {
        let mut tree = SubscriptionTree::new();
        let mut own = sub("t", QoS::AtMostOnce);
        own.options.no_local = true;
        tree.subscribe(&id("me"), own);
        tree.subscribe(&id("other"), sub("t", QoS::AtMostOnce));
        let mut message = msg("t", QoS::AtMostOnce);
        message.publisher = Some(id("me"));
        let out: Vec<_> = tree
            .route(&message, |_| true)
            .into_iter()
            .map(|d| d.client)
            .collect();
        assert_eq!(out, vec![id("other")]);
        message.publisher = Some(id("someone"));
        assert_eq!(tree.route(&message, |_| true).len(), 2);
    }

    #[test]
    fn mqtt_3_3_1_12_retain_as_published_keeps_the_flag_only_when_asked() {
        let mut tree = SubscriptionTree::new();
        let mut keep = sub("t", QoS::AtMostOnce);
        keep.options.retain_as_published = true;
        tree.subscribe(&id("keep"), keep);
        tree.subscribe(&id("clear"), sub("t", QoS::AtMostOnce));
        let mut message = msg("t", QoS::AtMostOnce);
        message.retain = true;
        for d in tree.route(&message, |_| true) {
            assert_eq!(d.retain, &*d.client == "keep", "{}", d.client);
        }
    }

    #[test]
    fn mqtt_3_8_4_3_resubscribe_replaces_and_reports_existing() {
        let mut tree = SubscriptionTree::new();
        let c = id("c");
        assert!(!tree.subscribe(&c, sub("a/b", QoS::AtMostOnce)));
        assert!(tree.subscribe(&c, sub("a/b", QoS::ExactlyOnce)));
        assert_eq!(tree.len(), 1);
        let out = tree.route(&msg("a/b", QoS::ExactlyOnce), |_| true);
        assert_eq!(out[0].qos, QoS::ExactlyOnce);
    }

    #[test]
    fn unsubscribe_removes_only_that_filter_and_prunes() {
        let mut tree = SubscriptionTree::new();
        let c = id("c");
        tree.subscribe(&c, sub("a/b/c", QoS::AtMostOnce));
        tree.subscribe(&c, sub("a/+/c", QoS::AtMostOnce));
        assert!(tree.unsubscribe(&c, &TopicFilter::new("a/b/c").unwrap()));
        assert!(!tree.unsubscribe(&c, &TopicFilter::new("a/b/c").unwrap()));
        assert!(!tree.unsubscribe(&id("x"), &TopicFilter::new("a/+/c").unwrap()));
        assert_eq!(receivers(&mut tree, "a/b/c"), ["c"]);
        assert!(tree.unsubscribe(&c, &TopicFilter::new("a/+/c").unwrap()));
        assert!(tree.is_empty());
        assert!(tree.root.is_empty(), "empty branches are pruned");
    }

    #[test]
    fn a_wildcard_level_removed_and_made_again_matches_again() {
        let mut tree = SubscriptionTree::new();
        tree.subscribe(&id("c"), sub("a/+", QoS::AtMostOnce));
        tree.subscribe(&id("d"), sub("a/b", QoS::AtMostOnce));
        tree.subscribe(&id("e"), sub("a/#", QoS::AtMostOnce));
        assert!(tree.unsubscribe(&id("c"), &TopicFilter::new("a/+").unwrap()));
        assert!(tree.unsubscribe(&id("e"), &TopicFilter::new("a/#").unwrap()));
        assert_eq!(receivers(&mut tree, "a/b"), ["d"]);
        tree.subscribe(&id("c"), sub("a/+", QoS::AtMostOnce));
        tree.subscribe(&id("e"), sub("a/#", QoS::AtMostOnce));
        assert_eq!(receivers(&mut tree, "a/b"), ["c", "d", "e"]);
    }

    #[test]
    fn copies_merge_when_an_earlier_node_matched_other_clients_only() {
        let mut tree = SubscriptionTree::new();
        // Visited in the order `#`, `+`, exact: "c" first appears at the second node.
        tree.subscribe(&id("x"), sub("a/#", QoS::AtMostOnce));
        tree.subscribe(&id("c"), sub("a/+", QoS::AtMostOnce));
        tree.subscribe(&id("c"), sub("a/b", QoS::AtLeastOnce));
        let copies = tree.route(&msg("a/b", QoS::ExactlyOnce), |_| true);
        assert_eq!(copies.len(), 2, "{copies:?}");
        let c = copies.iter().find(|d| &*d.client == "c").unwrap();
        assert_eq!(c.qos, QoS::AtLeastOnce);
    }

    #[test]
    fn shared_groups_get_one_copy_per_group_in_turn() {
        let mut tree = SubscriptionTree::new();
        tree.subscribe(&id("a"), sub("$share/g/s/+", QoS::AtLeastOnce));
        tree.subscribe(&id("b"), sub("$share/g/s/+", QoS::AtLeastOnce));
        tree.subscribe(&id("h"), sub("$share/h/s/#", QoS::AtMostOnce));
        tree.subscribe(&id("a"), sub("s/1", QoS::AtMostOnce));
        assert_eq!(tree.len(), 4);
        let first = tree.route(&msg("s/1", QoS::AtLeastOnce), |_| true);
        // "a" gets its ordinary copy plus one from group g; "h" one from group h.
        assert_eq!(first.len(), 3);
        let from_g: Vec<_> = first
            .iter()
            .filter(|d| d.shared.as_ref().map(|f| f.as_str()) == Some("$share/g/s/+"))
            .collect();
        assert_eq!(from_g.len(), 1);
        assert_eq!(&*from_g[0].client, "a");
        let second = tree.route(&msg("s/1", QoS::AtLeastOnce), |_| true);
        assert!(second
            .iter()
            .any(|d| &*d.client == "b" && d.shared.is_some()));
        assert!(tree.unsubscribe(&id("a"), &TopicFilter::new("$share/g/s/+").unwrap()));
        assert_eq!(tree.len(), 3);
    }

    #[test]
    fn shared_redelivery_goes_to_another_member() {
        let mut tree = SubscriptionTree::new();
        let filter = TopicFilter::new("$share/g/s").unwrap();
        tree.subscribe(&id("a"), sub("$share/g/s", QoS::AtLeastOnce));
        tree.subscribe(&id("b"), sub("$share/g/s", QoS::AtLeastOnce));
        let message = msg("s", QoS::AtLeastOnce);
        let again = tree
            .redeliver_shared(&filter, &id("a"), &message, |_| true)
            .unwrap();
        assert_eq!(&*again.client, "b");
        assert_eq!(again.shared.as_ref(), Some(&filter));
        tree.unsubscribe(&id("b"), &filter);
        assert_eq!(
            tree.redeliver_shared(&filter, &id("a"), &message, |_| true),
            None
        );
    }

    #[test]
    fn topics_with_wildcard_characters_never_match_literally() {
        // A topic name never contains '+' or '#', but the walk must not treat a literal level
        // equal to a wildcard as an exact match even if one slipped through.
        let mut tree = SubscriptionTree::new();
        tree.subscribe(&id("c"), sub("a/+", QoS::AtMostOnce));
        assert_eq!(receivers(&mut tree, "a/x"), ["c"]);
        assert!(receivers(&mut tree, "b/x").is_empty());
    }
}
