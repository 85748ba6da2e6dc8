//! The session registry: every client's session, whether a connection currently holds it, and
//! the timers that outlive connections (session expiry, delayed wills). It decides session
//! present, takeover and when a will is published or cancelled (3.1.2.4, 3.1.2.5, 3.1.3.2.2,
//! 4.1); it does not talk to connections or route messages. The caller gets back what to do:
//! which connection to close, which wills to publish, which sessions ended. Beside each online
//! session it keeps the caller's handle on the connection (`L`, the router's link), so that
//! one lookup finds both: every delivery needs the session's queue and the connection's wake.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use crate::message::{ClientId, Message};
use crate::peer_keyed::PeerKeyedMap;
use crate::session::{Outgoing, QueueLimits, Session, WillSpec};
use crate::subscriptions::Subscription;

/// Identifies one network connection, so a late event from a connection that was taken over
/// cannot act on the session its successor now holds. Never zero, which lets the registry's
/// record of an online session keep its tag in that value (8 bytes less per entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub NonZeroU64);

/// How a connection ended, which decides the fate of its will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// DISCONNECT with reason 0x00: "the Will Message MUST be removed from the stored Session
    /// State ... and not published" [MQTT-3.1.2-10].
    Normal,
    /// DISCONNECT with reason 0x04 Disconnect with Will Message: publish the will.
    WithWill,
    /// The connection was lost, timed out, broke the protocol or the broker closed it: publish
    /// the will (3.1.2.5).
    Lost,
}

/// A will waiting for its delay to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWill {
    /// The will.
    pub will: WillSpec,
    /// When it is published unless the session resumes first.
    pub publish_at: Instant,
}

#[derive(Debug)]
enum Presence<L> {
    /// Held by this connection; its link once the caller has set it.
    Online(ConnectionId, Option<L>),
    Offline {
        expires_at: Instant,
    },
}

#[derive(Debug)]
struct Entry<L> {
    session: Session,
    presence: Presence<L>,
    /// The will of the current connection while online; moved to `pending_will` when the
    /// connection ends without a normal DISCONNECT. Both are boxed: few clients have a will,
    /// and the two inline wills made each entry 464 bytes instead of 176.
    will: Option<Box<WillSpec>>,
    pending_will: Option<Box<PendingWill>>,
}

impl<L> Entry<L> {
    /// Whether `connection` is the client's current one: a connection that was taken over may
    /// still report its end, and must not touch the session then.
    fn is_held_by(&self, connection: ConnectionId) -> bool {
        matches!(self.presence, Presence::Online(c, _) if c == connection)
    }

    /// The session and, while a connection holds it, that connection's link.
    fn split_mut(&mut self) -> (&mut Session, Option<&mut L>) {
        let link = match &mut self.presence {
            Presence::Online(_, link) => link.as_mut(),
            Presence::Offline { .. } => None,
        };
        (&mut self.session, link)
    }
}

/// A session that ended: its subscriptions must leave the subscription tree, and messages
/// copied for shared subscriptions may go to another member of the group.
#[derive(Debug)]
pub struct EndedSession {
    /// Whose session it was.
    pub client_id: ClientId,
    /// Its subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Messages it never received.
    pub undelivered: Vec<Outgoing>,
}

/// What a new connection gets from the registry.
#[derive(Debug)]
pub struct Attached {
    /// The connection's identifier.
    pub connection: ConnectionId,
    /// Whether an existing session was resumed (CONNACK Session Present).
    pub session_present: bool,
    /// A live connection of the same client that must be closed (DISCONNECT 0x8E in 5.0)
    /// [MQTT-3.1.4-3].
    pub taken_over: Option<ConnectionId>,
    /// Wills to publish now: the taken-over connection's, or a delayed will whose session just
    /// ended because of Clean Start.
    pub wills: Vec<Message>,
    /// The previous session, if Clean Start discarded it.
    pub ended: Option<EndedSession>,
}

/// What a connection leaving produced.
#[derive(Debug, Default)]
pub struct Detached {
    /// A will to publish now.
    pub will: Option<Message>,
    /// The session, if it ended with the connection (expiry 0).
    pub ended: Option<EndedSession>,
}

/// Something a timer produced.
#[derive(Debug)]
pub enum RegistryEvent {
    /// A delayed will is due.
    WillDue(Box<Message>),
    /// A session expired.
    SessionExpired(EndedSession),
}

/// Every session the broker knows, and for each online one the caller's link `L` to its
/// connection.
#[derive(Debug)]
pub struct SessionRegistry<L = ()> {
    /// Boxed: a map keeps room for more entries than it holds (up to twice as many), and an
    /// entry is 184 bytes where its box is 8 (idle connections, docs/benchmarks.md).
    entries: PeerKeyedMap<ClientId, Box<Entry<L>>>,
    next_connection: u64,
    queue_limits: QueueLimits,
}

impl<L> SessionRegistry<L> {
    /// An empty registry whose sessions' queues are bounded by `queue_limits`.
    pub fn new(queue_limits: QueueLimits) -> Self {
        Self {
            entries: PeerKeyedMap::default(),
            next_connection: 0,
            queue_limits,
        }
    }

    /// A connection with an accepted CONNECT takes the session of `client_id`.
    ///
    /// - Clean Start 1 discards an existing session [MQTT-3.1.2-4]; otherwise an existing
    ///   session is resumed [MQTT-3.1.2-5] and its pending will cancelled, as "If a new
    ///   Network Connection to this Session is made before the Will Delay Interval has
    ///   passed, the Server MUST NOT send the Will Message" [MQTT-3.1.3-9].
    /// - A live connection of the same client is taken over [MQTT-3.1.4-3]. Its will is
    ///   published when it had no delay or when the session ends with Clean Start; a delayed
    ///   will is cancelled because the session resumes at once.
    pub fn connect(
        &mut self,
        client_id: &ClientId,
        clean_start: bool,
        expiry: Duration,
        will: Option<WillSpec>,
        now: Instant,
    ) -> Attached {
        // Counted from 1: the counter would take centuries to wrap.
        let connection = ConnectionId(NonZeroU64::MIN.saturating_add(self.next_connection));
        self.next_connection += 1;
        let mut attached = Attached {
            connection,
            session_present: false,
            taken_over: None,
            wills: Vec::new(),
            ended: None,
        };
        let mut existing = self.entries.remove(client_id);
        if let Some(entry) = existing.take_if(
            |e| matches!(e.presence, Presence::Offline { expires_at } if now >= expires_at),
        ) {
            // Expired before its timer ran: it ends now, with its will if one was waiting.
            attached
                .wills
                .extend(entry.pending_will.map(|w| w.will.release(now)));
            attached.ended = Some(end(entry.session));
        }
        let session = match existing {
            Some(mut entry) => {
                if let Presence::Online(old, _) = entry.presence {
                    attached.taken_over = Some(old);
                    if let Some(old_will) = entry.will.take() {
                        if clean_start || old_will.delay.is_zero() {
                            attached.wills.push(old_will.release(now));
                        }
                    }
                }
                if let Some(pending) = entry.pending_will.take() {
                    if clean_start {
                        attached.wills.push(pending.will.release(now));
                    }
                }
                if clean_start {
                    attached.ended = Some(end(entry.session));
                    None
                } else {
                    attached.session_present = true;
                    Some(entry.session)
                }
            }
            None => None,
        };
        let mut session =
            session.unwrap_or_else(|| Session::new(client_id.clone(), expiry, self.queue_limits));
        session.expiry = expiry;
        self.entries.insert(
            client_id.clone(),
            Box::new(Entry {
                session,
                presence: Presence::Online(connection, None),
                will: will.map(Box::new),
                pending_will: None,
            }),
        );
        attached
    }

    /// Puts back a session loaded from storage at start-up, offline until `expires_at`, with
    /// its pending will, if any.
    pub fn restore(
        &mut self,
        session: Session,
        pending_will: Option<PendingWill>,
        expires_at: Instant,
    ) {
        self.entries.insert(
            session.client_id.clone(),
            Box::new(Entry {
                session,
                presence: Presence::Offline { expires_at },
                will: None,
                pending_will: pending_will.map(Box::new),
            }),
        );
    }

    /// The connection `connection` of `client_id` ended. `expiry` is the session expiry in
    /// force at that moment (DISCONNECT may change it, 3.14.2.2.2). Does nothing when the
    /// connection no longer holds the session (it was taken over).
    pub fn disconnect(
        &mut self,
        client_id: &ClientId,
        connection: ConnectionId,
        departure: Departure,
        expiry: Duration,
        now: Instant,
    ) -> Detached {
        let mut detached = Detached::default();
        let Some(entry) = self.entries.get_mut(client_id) else {
            return detached;
        };
        if !entry.is_held_by(connection) {
            return detached;
        }
        entry.session.expiry = expiry;
        let will = entry.will.take().filter(|_| departure != Departure::Normal);
        if let Some(will) = will {
            // "The Server delays publishing the Client's Will Message until the Will Delay
            // Interval has passed or the Session ends, whichever happens first" (3.1.3.2.2).
            let delay = will.delay.min(expiry);
            if delay.is_zero() {
                detached.will = Some(will.release(now));
            } else {
                entry.pending_will = Some(Box::new(PendingWill {
                    will: *will,
                    publish_at: now + delay,
                }));
            }
        }
        if expiry.is_zero() {
            if let Some(entry) = self.entries.remove(client_id) {
                detached.ended = Some(end(entry.session));
            }
        } else {
            entry.presence = Presence::Offline {
                expires_at: now + expiry,
            };
        }
        detached
    }

    /// Whether `connection` currently holds the session of `client_id`.
    pub fn is_current(&self, client_id: &ClientId, connection: ConnectionId) -> bool {
        self.entries
            .get(client_id)
            .is_some_and(|e| e.is_held_by(connection))
    }

    /// The connection holding `client_id`'s session, if it is online.
    pub fn connection_of(&self, client_id: &ClientId) -> Option<ConnectionId> {
        match self.entries.get(client_id)?.presence {
            Presence::Online(c, _) => Some(c),
            Presence::Offline { .. } => None,
        }
    }

    /// Gives the connection that holds `client_id`'s session its link; nothing happens if
    /// `connection` no longer holds it.
    pub fn set_link(&mut self, client_id: &ClientId, connection: ConnectionId, link: L) {
        if let Some(entry) = self.entries.get_mut(client_id) {
            if let Presence::Online(c, slot) = &mut entry.presence {
                if *c == connection {
                    *slot = Some(link);
                }
            }
        }
    }

    /// The link of the connection holding `client_id`'s session.
    pub fn link(&self, client_id: &ClientId) -> Option<&L> {
        match &self.entries.get(client_id)?.presence {
            Presence::Online(_, link) => link.as_ref(),
            Presence::Offline { .. } => None,
        }
    }

    /// Takes the link of the connection holding `client_id`'s session; the session stays
    /// held by it. A link exists only while a connection holds the session, so the next
    /// `connect` of the client takes that connection over.
    pub fn take_link(&mut self, client_id: &ClientId) -> Option<L> {
        match &mut self.entries.get_mut(client_id)?.presence {
            Presence::Online(_, link) => link.take(),
            Presence::Offline { .. } => None,
        }
    }

    /// Every link, with its client.
    pub fn links(&self) -> impl Iterator<Item = (&ClientId, &L)> {
        self.entries
            .iter()
            .filter_map(|(client_id, entry)| match &entry.presence {
                Presence::Online(_, Some(link)) => Some((client_id, link)),
                _ => None,
            })
    }

    /// The session of `client_id`.
    pub fn session(&self, client_id: &ClientId) -> Option<&Session> {
        self.entries.get(client_id).map(|e| &e.session)
    }

    /// The session of `client_id` and its connection's link if `connection` holds it: the
    /// connection is still the client's current one.
    pub fn current_session_mut(
        &mut self,
        client_id: &ClientId,
        connection: ConnectionId,
    ) -> Option<(&mut Session, Option<&mut L>)> {
        self.entries
            .get_mut(client_id)
            .filter(|e| e.is_held_by(connection))
            .map(|e| e.split_mut())
    }

    /// The session of `client_id`, to change its subscriptions or queue.
    pub fn session_mut(&mut self, client_id: &ClientId) -> Option<&mut Session> {
        self.entries.get_mut(client_id).map(|e| &mut e.session)
    }

    /// The session of `client_id` and, if it is online, its connection's link.
    pub fn session_and_link_mut(
        &mut self,
        client_id: &ClientId,
    ) -> Option<(&mut Session, Option<&mut L>)> {
        self.entries.get_mut(client_id).map(|e| e.split_mut())
    }

    /// The will of `client_id` waiting for its delay, if any.
    pub fn pending_will(&self, client_id: &ClientId) -> Option<&PendingWill> {
        self.entries.get(client_id)?.pending_will.as_deref()
    }

    /// Number of sessions, online or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of sessions with a live connection.
    pub fn online(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e.presence, Presence::Online(..)))
            .count()
    }

    /// The earliest moment a will becomes due or a session expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .flat_map(|e| {
                let expiry = match e.presence {
                    Presence::Offline { expires_at } => Some(expires_at),
                    Presence::Online(..) => None,
                };
                expiry
                    .into_iter()
                    .chain(e.pending_will.as_ref().map(|w| w.publish_at))
            })
            .min()
    }

    /// Fires the timers due at `now`: delayed wills first, then expired sessions (whose own
    /// pending will, if still waiting, is due too because the session ends).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<RegistryEvent> {
        let mut events = Vec::new();
        for entry in self.entries.values_mut() {
            let expired =
                matches!(entry.presence, Presence::Offline { expires_at } if now >= expires_at);
            let will_due = entry
                .pending_will
                .as_ref()
                .is_some_and(|w| expired || now >= w.publish_at);
            if will_due {
                if let Some(will) = entry.pending_will.take() {
                    events.push(RegistryEvent::WillDue(Box::new(will.will.release(now))));
                }
            }
        }
        let expired: Vec<ClientId> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.presence, Presence::Offline { expires_at } if now >= expires_at))
            .map(|(id, _)| id.clone())
            .collect();
        for client_id in expired {
            if let Some(entry) = self.entries.remove(&client_id) {
                events.push(RegistryEvent::SessionExpired(end(entry.session)));
            }
        }
        events
    }

    /// The client identifiers of every session.
    pub fn clients(&self) -> Vec<ClientId> {
        self.entries.keys().cloned().collect()
    }
}

fn end(mut session: Session) -> EndedSession {
    EndedSession {
        client_id: session.client_id.clone(),
        subscriptions: session.subscriptions.into_values().collect(),
        undelivered: session.queue.drain().into_iter().map(|(_, o)| o).collect(),
    }
}

#[cfg(test)]
mod tests;
