//! Unit tests of the session queue: the drop policy in messages and bytes, expiry, gates on
//! the publisher's commit, shared copies and restored entries.

use super::*;
use crate::message::Message;
use bytes::Bytes;
use mquictt_protocol::{TopicFilter, TopicName};
use std::sync::Arc;

const ROOMY: QueueLimits = QueueLimits {
    messages: 10,
    bytes: 1 << 20,
};

fn outgoing(payload: &'static [u8], qos: QoS, shared: bool) -> Outgoing {
    Outgoing {
        message: Arc::new(Message::new(
            TopicName::new("t").unwrap(),
            Bytes::from_static(payload),
            qos,
            false,
        )),
        qos,
        retain: false,
        subscription_identifiers: Box::default(),
        shared: shared.then(|| Box::new(TopicFilter::new("$share/g/t").unwrap())),
    }
}

fn q1(payload: &'static [u8]) -> Outgoing {
    outgoing(payload, QoS::AtLeastOnce, false)
}

fn q0(payload: &'static [u8]) -> Outgoing {
    outgoing(payload, QoS::AtMostOnce, false)
}

fn payloads(queue: &mut MessageQueue) -> Vec<Bytes> {
    let mut expired = Vec::new();
    std::iter::from_fn(|| queue.pop(Instant::now(), &mut expired))
        .map(|(_, o)| o.message.payload.clone())
        .collect()
}

#[test]
fn the_oldest_qos0_copy_makes_room_first() {
    let mut queue = MessageQueue::new(QueueLimits {
        messages: 3,
        bytes: 1 << 20,
    });
    queue.push(q1(b"a"), None);
    queue.push(q0(b"z1"), None);
    queue.push(q0(b"z2"), None);
    assert_eq!(
        queue.push(q1(b"b"), None),
        Enqueued::Queued {
            seq: 3,
            made_room: 1,
            full: Some(QueueFull::Messages)
        }
    );
    assert_eq!(queue.dropped(), 1);
    assert_eq!(payloads(&mut queue), ["a", "z2", "b"]);
}

#[test]
fn without_qos0_copies_a_new_qos0_is_dropped_and_qos1_refused() {
    let mut queue = MessageQueue::new(QueueLimits {
        messages: 2,
        bytes: 1 << 20,
    });
    queue.push(q1(b"a"), None);
    queue.push(q1(b"b"), None);
    assert_eq!(
        queue.push(q0(b"z"), None),
        Enqueued::Dropped(QueueFull::Messages)
    );
    assert_eq!(
        queue.push(q1(b"c"), None),
        Enqueued::Refused(QueueFull::Messages)
    );
    assert_eq!(queue.dropped(), 2);
    assert_eq!(payloads(&mut queue), ["a", "b"]);
}

#[test]
fn bytes_are_bounded_and_room_is_made_only_when_it_suffices() {
    // Each copy weighs its topic ("t", 1 byte) and payload.
    let mut queue = MessageQueue::new(QueueLimits {
        messages: 100,
        bytes: 10,
    });
    queue.push(q1(b"1234"), None);
    queue.push(q0(b"12"), None);
    assert_eq!(queue.bytes(), 8);
    // 8 + 5 > 10 and dropping the QoS 0 copy (3 bytes) leaves 5 + 5 <= 10.
    assert!(matches!(
        queue.push(q1(b"abcd"), None),
        Enqueued::Queued {
            made_room: 1,
            full: Some(QueueFull::Bytes),
            ..
        }
    ));
    assert_eq!(
        queue.push(q0(b"x"), None),
        Enqueued::Dropped(QueueFull::Bytes)
    );
    assert_eq!(
        queue.push(q1(b"abcde"), None),
        Enqueued::Refused(QueueFull::Bytes)
    );
    assert_eq!(queue.len(), 2);
    assert_eq!(payloads(&mut queue), ["1234", "abcd"]);
    assert_eq!(queue.bytes(), 0);
}

#[test]
fn room_is_not_made_when_dropping_every_qos0_copy_would_not_suffice() {
    let mut queue = MessageQueue::new(QueueLimits {
        messages: 100,
        bytes: 10,
    });
    queue.push(q1(b"12345"), None);
    queue.push(q0(b"1"), None);
    // 8 bytes queued, 2 of them QoS 0: a 6-byte copy needs 4 more than that frees.
    assert_eq!(
        queue.push(q1(b"abcde"), None),
        Enqueued::Refused(QueueFull::Bytes)
    );
    assert_eq!(payloads(&mut queue), ["12345", "1"]);
}

#[test]
fn a_large_copy_fits_an_empty_queue() {
    let mut queue = MessageQueue::new(QueueLimits {
        messages: 10,
        bytes: 4,
    });
    assert!(matches!(
        queue.push(q1(b"far too large"), None),
        Enqueued::Queued { full: None, .. }
    ));
    assert_eq!(
        queue.push(q1(b"x"), None),
        Enqueued::Refused(QueueFull::Bytes)
    );
}

#[test]
fn expired_copies_are_skipped_and_reported() {
    let now = Instant::now();
    let mut queue = MessageQueue::new(ROOMY);
    let mut stale = q1(b"old");
    let mut message = (*stale.message).clone();
    message.expires_at = Some(Box::new(now));
    stale.message = Arc::new(message);
    queue.push(stale, None);
    queue.push(q1(b"fresh"), None);
    let mut skipped = Skipped::default();
    let (seq, next, _) = queue.pop_if(now, &mut skipped, |_| true).unwrap();
    assert_eq!((seq, &next.message.payload[..]), (1, &b"fresh"[..]));
    assert_eq!(skipped.expired, vec![0]);
    assert_eq!(queue.bytes(), 0);
}

#[test]
fn pop_if_keeps_a_copy_that_is_not_admitted() {
    let mut queue = MessageQueue::new(ROOMY);
    queue.push(q1(b"1"), None);
    let mut skipped = Skipped::default();
    assert!(queue
        .pop_if(Instant::now(), &mut skipped, |_| false)
        .is_none());
    assert_eq!(queue.len(), 1);
    assert!(queue
        .pop_if(Instant::now(), &mut skipped, |_| true)
        .is_some());
    assert!(queue.is_empty());
}

/// A gate on a commit the test completes by hand.
fn gate() -> (
    PublishGate,
    tokio::sync::watch::Sender<Option<Result<(), crate::storage::CommitFailure>>>,
) {
    let (ticket, sender) = CommitTicket::pending_for_test();
    let gate = PublishGate::default();
    gate.set(ticket);
    (gate, sender)
}

#[test]
fn a_qos2_copy_waits_for_its_publishers_commit_and_qos1_does_not() {
    let mut queue = MessageQueue::new(ROOMY);
    let (gate, commit) = gate();
    queue.push(q1(b"one"), Some(gate.clone()));
    queue.push(outgoing(b"two", QoS::ExactlyOnce, false), Some(gate));
    let mut skipped = Skipped::default();
    let now = Instant::now();
    let first = queue.pop_if(now, &mut skipped, |_| true).unwrap();
    assert_eq!(&first.1.message.payload[..], b"one");
    assert!(queue.pop_if(now, &mut skipped, |_| true).is_none());
    assert!(skipped.waiting_for.is_some());
    commit.send_replace(Some(Ok(())));
    let second = queue.pop_if(now, &mut skipped, |_| true).unwrap();
    assert_eq!(&second.1.message.payload[..], b"two");
}

#[test]
fn copies_of_a_refused_message_are_discarded_not_delivered() {
    let mut queue = MessageQueue::new(ROOMY);
    let (gate, commit) = gate();
    queue.push(
        outgoing(b"two", QoS::ExactlyOnce, false),
        Some(gate.clone()),
    );
    queue.push(q1(b"one"), Some(gate));
    queue.push(q1(b"later"), None);
    commit.send_replace(Some(Err(crate::storage::CommitFailure::Closed)));
    let mut skipped = Skipped::default();
    let (seq, next, _) = queue
        .pop_if(Instant::now(), &mut skipped, |_| true)
        .unwrap();
    assert_eq!((seq, &next.message.payload[..]), (2, &b"later"[..]));
    assert_eq!(skipped.unstored, vec![0, 1]);
}

#[test]
fn a_gate_opens_once_every_stored_copy_is_acknowledged_whenever_it_is_watched() {
    // Watched before the acknowledgements: the watcher sees the last one.
    let (early, _commit) = gate();
    early.add_stored_copy();
    early.add_stored_copy();
    let watcher = early.delivered();
    early.copy_delivered();
    assert!(!*watcher.borrow());
    assert!(matches!(early.state(), GateState::Waiting(_)));
    early.copy_delivered();
    assert!(*watcher.borrow());
    assert!(matches!(early.state(), GateState::Open));

    // Watched only after them: the watcher starts out delivered.
    let (late, _commit) = gate();
    late.add_stored_copy();
    late.copy_delivered();
    assert!(matches!(late.state(), GateState::Open));
    assert!(*late.delivered().borrow());
}

#[tokio::test]
async fn a_gate_dropped_before_its_copies_were_acknowledged_ends_its_watch() {
    let (gate, _commit) = gate();
    gate.add_stored_copy();
    let mut watcher = gate.delivered();
    drop(gate);
    assert!(watcher.changed().await.is_err());
    assert!(!*watcher.borrow());
}

#[test]
fn shared_copies_can_be_taken_out() {
    let mut queue = MessageQueue::new(ROOMY);
    queue.push(q1(b"own"), None);
    queue.push(outgoing(b"group", QoS::AtLeastOnce, true), None);
    let taken = queue.take_shared();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].0, 1);
    assert_eq!(queue.bytes(), 4);
    assert_eq!(payloads(&mut queue), ["own"]);
}

#[test]
fn restored_entries_keep_their_numbers() {
    let mut queue = MessageQueue::new(ROOMY);
    queue.restore(41, q1(b"a"));
    assert!(matches!(
        queue.push(q1(b"b"), None),
        Enqueued::Queued { seq: 42, .. }
    ));
    assert_eq!(queue.drain().len(), 2);
    assert!(queue.is_empty());
}

#[test]
fn a_queued_copy_stays_small() {
    // A subscriber may hold thousands of copies (max_queued_messages): each is its sequence
    // number, the copy (message, QoS, RETAIN, boxed identifiers and shared filter) and the
    // gate. It was 96 bytes with the identifiers and the filter inline.
    assert!(
        std::mem::size_of::<Entry>() <= 56,
        "{}",
        std::mem::size_of::<Entry>()
    );
}

#[test]
fn a_drained_queue_lets_go_of_its_room_when_told() {
    let mut queue = MessageQueue::new(ROOMY);
    for _ in 0..8 {
        assert!(matches!(
            queue.push(q0(b"burst"), None),
            Enqueued::Queued { .. }
        ));
    }
    // Still holding messages: the room stays, as giving it back would copy them.
    let room = queue.capacity();
    queue.release_room();
    assert_eq!(queue.capacity(), room);
    assert_eq!(queue.len(), 8);
    queue.drain();
    assert!(queue.capacity() >= 8, "room kept after the burst");
    queue.release_room();
    assert_eq!(queue.capacity(), 0);
    // And it still works afterwards, numbering on from where it was.
    assert!(matches!(
        queue.push(q0(b"later"), None),
        Enqueued::Queued { seq: 8, .. }
    ));
}
