//! What the broker keeps for one client between connections (4.1): its subscriptions, its
//! session expiry, and the bounded queue (the `queue` module) of messages waiting for delivery
//! while it is offline or its inflight window is full. The QoS 1/2 exchange state of a
//! connection belongs to the protocol crate's session machine; this file only holds
//! broker-side data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_protocol::{Publish, QoS, TopicFilter};

use crate::message::{ClientId, Message};
use crate::subscriptions::{Delivery, Subscription};

pub use crate::queue::{Enqueued, MessageQueue, PublishGate, QueueFull, QueueLimits, Skipped};

/// A message on its way to one subscriber, with the per-subscriber QoS, RETAIN flag and
/// subscription identifiers decided by routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message, shared with every other subscriber's copy.
    pub message: Arc<Message>,
    /// QoS for this subscriber.
    pub qos: QoS,
    /// RETAIN flag for this subscriber.
    pub retain: bool,
    /// Subscription identifiers for this subscriber. A boxed slice, and the filter below
    /// boxed, because every queued copy carries both and nearly always empty: a copy is 40
    /// bytes instead of 80, and a subscriber may queue thousands.
    pub subscription_identifiers: Box<[u32]>,
    /// The shared subscription this copy was picked for, if any; such a copy may be handed to
    /// another member of the group if this subscriber leaves without acknowledging it.
    pub shared: Option<Box<TopicFilter>>,
}

impl Outgoing {
    /// The copy that `delivery` describes.
    pub fn new(message: Arc<Message>, delivery: Delivery) -> Self {
        Self {
            message,
            qos: delivery.qos,
            retain: delivery.retain,
            subscription_identifiers: delivery.subscription_identifiers.into_boxed_slice(),
            shared: delivery.shared.map(Box::new),
        }
    }

    /// The PUBLISH for this copy at `now`, without a packet identifier.
    pub fn to_publish(&self, now: Instant) -> Publish {
        self.message.to_publish(
            self.qos,
            self.retain,
            self.subscription_identifiers.to_vec(),
            now,
        )
    }

    /// The same PUBLISH as [`Self::to_publish`], for a copy that is not needed afterwards. When
    /// no other copy or queue holds the message any more (one subscriber, and the publisher's
    /// routing done), its topic and payload are moved into the packet instead of shared with
    /// it ([`Message::into_publish`]).
    pub fn into_publish(self, now: Instant) -> Publish {
        let identifiers = self.subscription_identifiers.into_vec();
        match Arc::try_unwrap(self.message) {
            Ok(message) => message.into_publish(self.qos, self.retain, identifiers, now),
            Err(shared) => shared.to_publish(self.qos, self.retain, identifiers, now),
        }
    }
}

/// The will a connection left behind, with the delay before it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillSpec {
    /// The will as an application message (publisher set to the client), without an expiry
    /// deadline yet.
    pub message: Message,
    /// Will Delay Interval (5.0); zero before 5.0.
    pub delay: Duration,
    /// The will's Message Expiry Interval, which starts when the will is published.
    pub expiry: Option<Duration>,
}

impl WillSpec {
    /// The will as published at `now`, its expiry counted from this moment.
    pub fn release(self, now: Instant) -> Message {
        let mut message = self.message;
        message.expires_at = self.expiry.map(|interval| Box::new(now + interval));
        message
    }
}

/// One client's session state on the broker side.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client identifier the session belongs to.
    pub client_id: ClientId,
    /// Subscriptions by their full filter (including any `$share/` prefix).
    pub subscriptions: BTreeMap<TopicFilter, Subscription>,
    /// Messages waiting for delivery.
    pub queue: MessageQueue,
    /// How long the session outlives its connection; zero ends it with the connection.
    pub expiry: Duration,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: ClientId, expiry: Duration, limits: QueueLimits) -> Self {
        Self {
            client_id,
            subscriptions: BTreeMap::new(),
            queue: MessageQueue::new(limits),
            expiry,
        }
    }

    /// Whether the session outlives its connection, and so is kept in durable storage.
    pub fn persists(&self) -> bool {
        !self.expiry.is_zero()
    }
}
