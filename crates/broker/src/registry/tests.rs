//! Unit tests of the session registry: session present, Clean Start, takeover, expiry and
//! every path of a will (published, delayed, cancelled).

use super::*;
use bytes::Bytes;
use mquictt_protocol::{QoS, SubscriptionOptions, TopicFilter, TopicName};

const HOUR: Duration = Duration::from_secs(3600);
const LIMITS: QueueLimits = QueueLimits {
    messages: 100,
    bytes: 1 << 20,
};

fn registry() -> SessionRegistry {
    SessionRegistry::new(LIMITS)
}

fn will(delay: u64) -> Option<WillSpec> {
    Some(WillSpec {
        message: Message::new(
            TopicName::new("will").unwrap(),
            Bytes::from_static(b"gone"),
            QoS::AtMostOnce,
            false,
        ),
        delay: Duration::from_secs(delay),
        expiry: None,
    })
}

fn add_subscription(registry: &mut SessionRegistry, client: &ClientId) {
    let filter = TopicFilter::new("a/#").unwrap();
    registry.session_mut(client).unwrap().subscriptions.insert(
        filter.clone(),
        Subscription {
            filter,
            options: SubscriptionOptions::default(),
            identifier: None,
        },
    );
}

#[test]
fn mqtt_3_2_2_2_session_present_only_when_resumed() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let first = reg.connect(&c, false, HOUR, None, now);
    assert!(!first.session_present);
    add_subscription(&mut reg, &c);
    reg.disconnect(&c, first.connection, Departure::Normal, HOUR, now);
    assert_eq!(reg.connection_of(&c), None);
    let second = reg.connect(&c, false, HOUR, None, now);
    assert!(second.session_present);
    assert_eq!(reg.session(&c).unwrap().subscriptions.len(), 1);
}

#[test]
fn mqtt_3_1_2_4_clean_start_discards_the_session() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let first = reg.connect(&c, false, HOUR, None, now);
    add_subscription(&mut reg, &c);
    reg.disconnect(&c, first.connection, Departure::Normal, HOUR, now);
    let second = reg.connect(&c, true, HOUR, None, now);
    assert!(!second.session_present);
    let ended = second.ended.unwrap();
    assert_eq!(ended.subscriptions.len(), 1);
    assert!(reg.session(&c).unwrap().subscriptions.is_empty());
}

#[test]
fn mqtt_3_1_4_3_takeover_names_the_old_connection_and_ignores_its_late_exit() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let old = reg.connect(&c, false, HOUR, will(0), now);
    let new = reg.connect(&c, false, HOUR, None, now);
    assert_eq!(new.taken_over, Some(old.connection));
    assert!(new.session_present);
    assert_eq!(
        new.wills.len(),
        1,
        "a will without delay goes out on takeover"
    );
    let late = reg.disconnect(&c, old.connection, Departure::Lost, HOUR, now);
    assert!(late.will.is_none() && late.ended.is_none());
    assert!(reg.is_current(&c, new.connection));
    // Only the current connection takes from the session's queue.
    assert!(reg.current_session_mut(&c, old.connection).is_none());
    assert!(reg.current_session_mut(&c, new.connection).is_some());
    reg.disconnect(&c, new.connection, Departure::Normal, HOUR, now);
    assert!(reg.current_session_mut(&c, new.connection).is_none());
    assert!(
        reg.session(&c).is_some(),
        "the session outlives its connection"
    );
}

#[test]
fn takeover_cancels_a_delayed_will_when_the_session_resumes() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    reg.connect(&c, false, HOUR, will(30), now);
    let new = reg.connect(&c, false, HOUR, None, now);
    assert!(new.wills.is_empty());
    let again = reg.connect(&c, true, HOUR, None, now);
    assert!(again.wills.is_empty(), "the new connection had no will");
}

#[test]
fn mqtt_3_1_2_10_normal_disconnect_discards_the_will() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, HOUR, will(0), now);
    let out = reg.disconnect(&c, a.connection, Departure::Normal, HOUR, now);
    assert!(out.will.is_none());
    assert!(reg.handle_timeout(now + HOUR / 2).is_empty());
}

#[test]
fn will_without_delay_is_published_when_the_connection_is_lost() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, HOUR, will(0), now);
    let out = reg.disconnect(&c, a.connection, Departure::WithWill, HOUR, now);
    assert_eq!(out.will.unwrap().topic.as_str(), "will");
}

#[test]
fn mqtt_3_1_3_9_delayed_will_is_cancelled_by_a_timely_reconnect() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, HOUR, will(10), now);
    let out = reg.disconnect(&c, a.connection, Departure::Lost, HOUR, now);
    assert!(out.will.is_none());
    assert_eq!(reg.next_deadline(), Some(now + Duration::from_secs(10)));
    let b = reg.connect(&c, false, HOUR, None, now + Duration::from_secs(5));
    assert!(b.wills.is_empty());
    assert!(reg.handle_timeout(now + Duration::from_secs(20)).is_empty());
}

#[test]
fn delayed_will_fires_after_its_delay() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, HOUR, will(10), now);
    reg.disconnect(&c, a.connection, Departure::Lost, HOUR, now);
    assert!(reg.handle_timeout(now + Duration::from_secs(9)).is_empty());
    let events = reg.handle_timeout(now + Duration::from_secs(10));
    assert!(matches!(events.as_slice(), [RegistryEvent::WillDue(_)]));
    assert!(reg.session(&c).is_some(), "the session itself lives on");
}

#[test]
fn will_is_published_when_the_session_ends_before_the_delay() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, HOUR, will(600), now);
    reg.disconnect(
        &c,
        a.connection,
        Departure::Lost,
        Duration::from_secs(60),
        now,
    );
    let events = reg.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], RegistryEvent::WillDue(_)));
    assert!(matches!(events[1], RegistryEvent::SessionExpired(_)));
    assert!(reg.is_empty());
}

#[test]
fn expiry_zero_ends_the_session_with_the_connection() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, Duration::ZERO, will(30), now);
    add_subscription(&mut reg, &c);
    let out = reg.disconnect(&c, a.connection, Departure::Lost, Duration::ZERO, now);
    assert!(
        out.will.is_some(),
        "the session ends, so the delayed will is due"
    );
    assert_eq!(out.ended.unwrap().subscriptions.len(), 1);
    assert!(!reg.connect(&c, false, HOUR, None, now).session_present);
}

#[test]
fn restored_sessions_resume_and_keep_their_pending_will() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let session = Session::new(c.clone(), HOUR, LIMITS);
    let pending = PendingWill {
        will: will(5).unwrap(),
        publish_at: now + Duration::from_secs(5),
    };
    reg.restore(session, Some(pending), now + HOUR);
    assert_eq!(reg.online(), 0);
    assert_eq!(reg.next_deadline(), Some(now + Duration::from_secs(5)));
    assert!(reg.connect(&c, false, HOUR, None, now).session_present);
    assert!(
        reg.handle_timeout(now + Duration::from_secs(6)).is_empty(),
        "will cancelled"
    );
}

#[test]
fn expired_session_is_not_resumed_even_before_the_timer_ran() {
    let mut reg = registry();
    let c = ClientId::from("c");
    let now = Instant::now();
    let a = reg.connect(&c, false, Duration::from_secs(5), None, now);
    reg.disconnect(
        &c,
        a.connection,
        Departure::Normal,
        Duration::from_secs(5),
        now,
    );
    let b = reg.connect(&c, false, HOUR, None, now + Duration::from_secs(6));
    assert!(!b.session_present);
    assert_eq!(reg.online(), 1);
}

#[test]
fn a_link_belongs_to_the_connection_that_holds_the_session() {
    let mut reg: SessionRegistry<&'static str> = SessionRegistry::new(LIMITS);
    let c = ClientId::from("c");
    let now = Instant::now();
    let first = reg.connect(&c, false, HOUR, None, now);
    assert_eq!(reg.link(&c), None, "no link until the caller sets one");
    reg.set_link(&c, first.connection, "first");
    assert_eq!(reg.link(&c), Some(&"first"));
    assert_eq!(reg.links().count(), 1);

    // A takeover: the caller takes the old connection's link (to close it), then connects.
    assert_eq!(reg.take_link(&c), Some("first"));
    let second = reg.connect(&c, false, HOUR, None, now);
    assert_eq!(second.taken_over, Some(first.connection));
    reg.set_link(&c, first.connection, "stale");
    assert_eq!(
        reg.link(&c),
        None,
        "a connection that lost the session sets no link"
    );
    reg.set_link(&c, second.connection, "second");
    let (session, link) = reg.current_session_mut(&c, second.connection).unwrap();
    assert_eq!(session.client_id, c);
    assert_eq!(link.map(|l| *l), Some("second"));
    assert!(reg.current_session_mut(&c, first.connection).is_none());

    // Offline, the session stays and its link is gone.
    reg.disconnect(&c, second.connection, Departure::Normal, HOUR, now);
    assert_eq!(reg.link(&c), None);
    assert_eq!(reg.links().count(), 0);
    let (_, link) = reg.session_and_link_mut(&c).unwrap();
    assert!(link.is_none());
}

#[test]
fn an_entry_without_a_will_stays_small() {
    // Every connected client has an entry, boxed in a hash map; a will, which few clients
    // have, lives in a box beside it. With the router's link to the connection inside it
    // (176 bytes before the link moved in from a map of its own, 192 with it before the
    // connection identifier became non-zero).
    type RouterEntry = Entry<crate::router::Link>;
    assert!(
        std::mem::size_of::<RouterEntry>() <= 184,
        "registry entry grew to {} bytes",
        std::mem::size_of::<RouterEntry>()
    );
}
