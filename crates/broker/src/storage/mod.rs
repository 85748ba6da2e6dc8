//! Where the broker persists what must survive a restart: sessions with their subscriptions,
//! queued and in-flight messages, inbound QoS 2 state, retained messages and pending wills.
//! The router describes every change as a [`Change`]; the journal (`storage::journal`) hands
//! them to a [`Storage`] in group commits on a thread of its own, and a connection acknowledges
//! what it received only once the commit holding it is durable. `Storage` is therefore small:
//! apply a batch of changes atomically and durably, and load everything at start-up. Two
//! implementations live here (`MemoryStorage`, `NoStorage`); the disk store is the
//! `mquictt-store` crate.
//!
//! Times are `Instant`s inside the broker; a disk store converts them to wall-clock deadlines
//! when it writes and back when it loads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_protocol::{PacketId, ReasonCode, TopicFilter, TopicName};

use crate::message::{ClientId, Message};
use crate::registry::PendingWill;
use crate::session::Outgoing;
use crate::subscriptions::Subscription;

pub(crate) mod journal;
mod memory;

pub use journal::{CommitFailure, CommitTicket};
pub use memory::{MemoryStorage, NoStorage};

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backing store could not be read or written.
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data could not be understood.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The storage engine reported an error.
    #[error("storage engine failed: {0}")]
    Engine(String),
    /// The disk quota would be exceeded.
    #[error("storage quota of {quota} bytes exceeded ({used} bytes stored)")]
    QuotaExceeded {
        /// Bytes stored or about to be.
        used: u64,
        /// The configured quota.
        quota: u64,
    },
    /// The store is unusable because an earlier operation panicked while holding it.
    #[error("storage is poisoned by an earlier failure")]
    Poisoned,
}

/// Where a QoS 1 or 2 message sent to a client stands, so that a restart resumes the exchange
/// where it was instead of starting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightStage {
    /// The PUBLISH went out with this packet identifier; PUBACK or PUBREC has not arrived. It
    /// is sent again with DUP set and the same identifier [MQTT-4.4.0-1].
    Sent,
    /// QoS 2: PUBREC arrived and PUBREL went out; the PUBLISH is never sent again
    /// [MQTT-4.3.3-6], only the PUBREL.
    Released,
}

/// One change to persistent broker state. Changes are applied in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates a session or updates its expiry; its other records are untouched.
    Session {
        /// Whose session.
        client_id: ClientId,
        /// Session expiry interval.
        expiry: Duration,
        /// When the session ends if no client takes it: set when its connection ends, `None`
        /// while one holds it. Stored as wall-clock time, so expiry keeps counting while the
        /// broker is down.
        expires_at: Option<Instant>,
    },
    /// Removes a session and everything that belongs to it.
    RemoveSession {
        /// Whose session.
        client_id: ClientId,
    },
    /// Adds or replaces a subscription.
    Subscription {
        /// Whose subscription.
        client_id: ClientId,
        /// The subscription.
        subscription: Subscription,
    },
    /// Removes a subscription.
    RemoveSubscription {
        /// Whose subscription.
        client_id: ClientId,
        /// Its filter.
        filter: TopicFilter,
    },
    /// A message waiting for delivery to a client, under the queue's sequence number.
    Queued {
        /// The receiver.
        client_id: ClientId,
        /// Queue sequence number.
        seq: u64,
        /// The copy for this receiver.
        outgoing: Outgoing,
    },
    /// A queued message was sent (or its PUBREL was): it stays stored until acknowledged.
    InFlight {
        /// The receiver.
        client_id: ClientId,
        /// Queue sequence number of the message.
        seq: u64,
        /// The packet identifier it went out with.
        packet_id: PacketId,
        /// How far the exchange got.
        stage: InFlightStage,
    },
    /// Removes a queued or in-flight message (acknowledged, dropped or expired).
    RemoveQueued {
        /// The receiver.
        client_id: ClientId,
        /// Queue sequence number.
        seq: u64,
    },
    /// An incoming QoS 2 message was stored: its identifier awaits PUBREL, and a re-sent
    /// PUBLISH with it must not be delivered again [MQTT-4.3.3-10].
    InboundAwaitingRelease {
        /// The sender.
        client_id: ClientId,
        /// The packet identifier.
        packet_id: PacketId,
    },
    /// PUBREL arrived: the identifier is free for a new message [MQTT-4.3.3-12].
    RemoveInbound {
        /// The sender.
        client_id: ClientId,
        /// The packet identifier.
        packet_id: PacketId,
    },
    /// Stores or replaces the retained message of its topic.
    Retained(Arc<Message>),
    /// Removes the retained message of a topic.
    RemoveRetained(TopicName),
    /// A will waiting for its delay.
    Will {
        /// Whose will.
        client_id: ClientId,
        /// The will and when it is due.
        will: Box<PendingWill>,
    },
    /// Removes a pending will (published or cancelled).
    RemoveWill {
        /// Whose will.
        client_id: ClientId,
    },
}

impl Change {
    /// Bytes this change adds to the store, roughly: what the disk quota counts before the
    /// store reports its exact figure after the commit.
    pub fn added_bytes(&self) -> u64 {
        let size = match self {
            Self::Queued { outgoing, .. } => outgoing.message.size(),
            Self::Retained(message) => message.size(),
            Self::Will { will, .. } => will.will.message.size(),
            _ => 0,
        };
        size as u64
    }
}

/// A queued message as loaded, with the state of its exchange if it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQueued {
    /// The copy for the receiver.
    pub outgoing: Outgoing,
    /// Set when the message was sent and not yet acknowledged.
    pub in_flight: Option<(PacketId, InFlightStage)>,
}

/// One persisted session with everything that belongs to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Session expiry interval.
    pub expiry: Duration,
    /// When the session ends, if it was offline when stored; a session that was online
    /// (the broker stopped under it) counts its expiry from the restart.
    pub expires_at: Option<Instant>,
    /// Subscriptions by filter.
    pub subscriptions: BTreeMap<TopicFilter, Subscription>,
    /// Queued and in-flight messages by sequence number.
    pub queued: BTreeMap<u64, StoredQueued>,
    /// A will waiting for its delay.
    pub will: Option<PendingWill>,
    /// Incoming QoS 2 identifiers awaiting PUBREL.
    pub inbound_awaiting_release: BTreeSet<PacketId>,
}

/// Everything a store holds, as loaded at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Sessions by client identifier.
    pub sessions: HashMap<String, StoredSession>,
    /// Retained messages by topic.
    pub retained: HashMap<TopicName, Message>,
}

impl StoredState {
    /// Applies one change, as a store in memory does and as tests model a disk store.
    pub fn apply(&mut self, change: &Change) {
        let session = |state: &mut Self, client_id: &ClientId| {
            state.sessions.entry(client_id.to_string()).or_default();
        };
        match change {
            Change::Session {
                client_id,
                expiry,
                expires_at,
            } => {
                session(self, client_id);
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.expiry = *expiry;
                    s.expires_at = *expires_at;
                }
            }
            Change::RemoveSession { client_id } => {
                self.sessions.remove(&**client_id);
            }
            Change::Subscription {
                client_id,
                subscription,
            } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.subscriptions
                        .insert(subscription.filter.clone(), subscription.clone());
                }
            }
            Change::RemoveSubscription { client_id, filter } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.subscriptions.remove(filter);
                }
            }
            Change::Queued {
                client_id,
                seq,
                outgoing,
            } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.queued.insert(
                        *seq,
                        StoredQueued {
                            outgoing: outgoing.clone(),
                            in_flight: None,
                        },
                    );
                }
            }
            Change::InFlight {
                client_id,
                seq,
                packet_id,
                stage,
            } => {
                if let Some(q) = self
                    .sessions
                    .get_mut(&**client_id)
                    .and_then(|s| s.queued.get_mut(seq))
                {
                    q.in_flight = Some((*packet_id, *stage));
                }
            }
            Change::RemoveQueued { client_id, seq } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.queued.remove(seq);
                }
            }
            Change::InboundAwaitingRelease {
                client_id,
                packet_id,
            } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.inbound_awaiting_release.insert(*packet_id);
                }
            }
            Change::RemoveInbound {
                client_id,
                packet_id,
            } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.inbound_awaiting_release.remove(packet_id);
                }
            }
            Change::Retained(message) => {
                self.retained
                    .insert(message.topic.clone(), (**message).clone());
            }
            Change::RemoveRetained(topic) => {
                self.retained.remove(topic);
            }
            Change::Will { client_id, will } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.will = Some((**will).clone());
                }
            }
            Change::RemoveWill { client_id } => {
                if let Some(s) = self.sessions.get_mut(&**client_id) {
                    s.will = None;
                }
            }
        }
    }
}

/// Persistence for broker state.
///
/// The broker never calls these methods on its async runtime: commits run on the journal's
/// own thread, `load` once before the broker starts serving.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Applies `changes` in order as one atomic unit. A durable store returns only once they
    /// are on stable storage; on error none of them may be applied.
    fn commit(&self, changes: &[Change]) -> Result<(), StorageError>;

    /// Everything stored, for recovery at start-up.
    fn load(&self) -> Result<StoredState, StorageError>;

    /// Whether commits survive a crash of the process. When they do not, the broker applies
    /// changes at once and acknowledges without waiting; when they do, acknowledgements wait
    /// for the group commit that holds the message.
    fn is_durable(&self) -> bool {
        false
    }

    /// Bytes of messages held (queued, in flight, retained, wills), for the disk quota.
    fn stored_bytes(&self) -> u64 {
        0
    }
}

impl StorageError {
    /// The MQTT 5 reason code that refuses a message this error kept from being stored:
    /// 0x97 Quota exceeded for the quota, 0x80 Unspecified error for everything else.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::QuotaExceeded { .. } => ReasonCode::QuotaExceeded,
            _ => ReasonCode::UnspecifiedError,
        }
    }
}
