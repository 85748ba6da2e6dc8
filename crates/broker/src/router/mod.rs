//! The shared heart of a running broker: the subscription tree, the session registry, the
//! retained store and the links to live connections, changed only under one lock by short,
//! non-blocking calls. Connection drivers call in with what their client did (attach,
//! publish, subscribe, detach); the router records every change of persistent state in the
//! journal (only for sessions that outlive their connection: a session with expiry 0 ends with
//! any crash anyway), queues copies in the receivers' sessions and wakes their drivers.
//! Nothing here awaits, syncs or touches a socket.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mquictt_protocol::{QoS, ReasonCode, SubscriptionOptions, TopicFilter};

use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::message::ClientId;
use crate::metrics::Metrics;
use crate::peer_keyed::PeerKeyedMap;
use crate::registry::{ConnectionId, Departure, EndedSession, RegistryEvent, SessionRegistry};
use crate::retained::RetainedStore;
use crate::session::{Outgoing, PublishGate, Session, Skipped, WillSpec};
use crate::storage::journal::Journal;
use crate::storage::{Change, CommitTicket};
use crate::subscriptions::{Delivery, SubscriptionTree};

mod answer_turn;
mod backpressure;
mod in_flight;
mod publish;
mod restore;
mod signal;
mod subscribe;
#[cfg(test)]
mod tests;

pub(crate) use answer_turn::{take_last_woken, WokenTurn};
pub(crate) use backpressure::Pause;
pub(crate) use in_flight::{DeliveryState, InFlight};
pub(crate) use signal::{ConnectionSignal, ParkedAt, SignalHandle, WakesAfterUnlock};

use backpressure::{Congestion, Watermarks};

/// How the router reaches a live connection's driver. Kept in the session registry beside the
/// session the connection holds (one lookup finds both), which also knows the connection.
#[derive(Debug)]
pub(crate) struct Link {
    /// Wakes the connection when messages were queued for the client, asks it to close
    /// (takeover, shutdown), and tells a successor when it has handed its session back.
    signal: Arc<ConnectionSignal>,
    /// Set while the client's queue is above its high-water mark; boxed because it is rare
    /// and every connected client has a link.
    congestion: Option<Box<Congestion>>,
}

/// What a connection gets when it takes its session.
#[derive(Debug)]
pub(crate) struct Attachment {
    pub(crate) connection: ConnectionId,
    pub(crate) session_present: bool,
    /// QoS 1/2 exchanges left unfinished by the previous connection, to resume.
    pub(crate) delivery: DeliveryState,
}

/// What a connection leaves behind when it ends.
#[derive(Debug)]
pub(crate) struct Departing {
    /// How it ended, which decides the will.
    pub(crate) departure: Departure,
    /// The session expiry in force at the end.
    pub(crate) expiry: Duration,
    /// Its unfinished QoS 1/2 exchanges.
    pub(crate) delivery: DeliveryState,
    /// Copies for shared subscriptions it never acknowledged, with their queue numbers.
    pub(crate) shared_unacked: Vec<(u64, Outgoing)>,
}

/// What routing one message did.
#[derive(Debug, Default)]
pub(crate) struct Routed {
    /// Matching subscriptions that got a copy offered.
    pub(crate) receivers: usize,
    /// Copies not queued because the receiver's queue was full.
    pub(crate) refused: usize,
    /// Whether the message was kept as the retained message of its topic.
    pub(crate) retained: bool,
    /// Whether the publisher's inbound QoS 2 identifier was recorded with the message.
    pub(crate) awaiting_release_recorded: bool,
    /// The commits holding what was recorded (stored copies, retained message, inbound
    /// identifier): the acknowledgement waits for them. Complete when nothing was recorded.
    pub(crate) ticket: CommitTicket,
    /// Set when a receiver's queue is congested: the publisher should stop reading until it
    /// drains (see `backpressure.rs`).
    pub(crate) pause: Option<Pause>,
}

impl Routed {
    /// Whether the message matched subscribers but no queue could take it and it was not
    /// retained: nobody will ever receive it, so an MQTT 5 publisher is told 0x97 Quota
    /// exceeded rather than success.
    pub(crate) fn refused_everywhere(&self) -> bool {
        self.receivers > 0 && self.refused == self.receivers && !self.retained
    }
}

/// The publisher's side of a QoS 2 message: its identifier is recorded as awaiting PUBREL in
/// the same commit as the message's copies [MQTT-4.3.3-10], unless the message is refused.
#[derive(Debug, Clone)]
pub(crate) struct AwaitingRelease {
    /// The record to make.
    pub(crate) change: Change,
    /// Whether the publisher can be told of a refusal (MQTT 5); a 3.1.1 publisher always gets
    /// PUBREC success, so its identifier is always recorded.
    pub(crate) refusable: bool,
}

/// A subscription request of one SUBSCRIBE packet.
#[derive(Debug, Clone)]
pub(crate) struct SubscribeRequest {
    pub(crate) filter: TopicFilter,
    pub(crate) options: SubscriptionOptions,
}

/// A message taken from a session's queue for delivery: its sequence number in the queue, the
/// copy, and the gate of its publisher's commit, if the copy is stored.
pub(crate) type Taken = (u64, Outgoing, Option<PublishGate>);

/// The broker state behind the lock.
#[derive(Debug)]
pub(crate) struct Router {
    config: Arc<BrokerConfig>,
    journal: Arc<Journal>,
    authenticator: Arc<dyn Authenticator>,
    metrics: Arc<Metrics>,
    tree: SubscriptionTree,
    registry: SessionRegistry<Link>,
    retained: RetainedStore,
    /// QoS 1/2 exchange state of offline sessions, by client.
    delivery_states: PeerKeyedMap<ClientId, DeliveryState>,
    /// The commits holding the changes recorded since the last `take_recorded`, so a caller
    /// can wait for exactly those.
    recorded: CommitTicket,
    /// The gate of the message being published, handed to every copy queued for it.
    publishing: Option<PublishGate>,
    /// When a receiver's queue makes its publishers pause.
    watermarks: Watermarks,
    /// The pause the message being routed asks of its publisher, if any.
    pause: Option<Pause>,
    /// Where routing lists a message's receivers; empty between messages, kept for its room.
    deliveries: Vec<Delivery>,
}

impl Router {
    pub(crate) fn new(
        config: Arc<BrokerConfig>,
        journal: Arc<Journal>,
        authenticator: Arc<dyn Authenticator>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let registry = SessionRegistry::new(config.queue_limits());
        let watermarks = Watermarks::for_queue_limits(config.queue_limits());
        Self {
            config,
            // Data streams' transient sessions have expiry 0, so `persists` keeps them out of
            // the journal like any other session that ends with its connection.
            journal,
            authenticator,
            metrics,
            tree: SubscriptionTree::new(),
            registry,
            retained: RetainedStore::new(),
            delivery_states: PeerKeyedMap::default(),
            recorded: CommitTicket::done(),
            publishing: None,
            watermarks,
            pause: None,
            deliveries: Vec::new(),
        }
    }

    /// Records a change of persistent state for the next group commit.
    fn record(&mut self, change: Change) {
        self.journal.record_into(change, &mut self.recorded);
    }

    /// Whether `client_id`'s session outlives its connection, so its state is persisted.
    fn persists(&self, client_id: &ClientId) -> bool {
        self.registry
            .session(client_id)
            .is_some_and(Session::persists)
    }

    /// The commits holding what was recorded since the last call.
    pub(crate) fn take_recorded(&mut self) -> CommitTicket {
        std::mem::take(&mut self.recorded)
    }

    /// Asks the live connection of `client_id`, if any, to close with 0x8E Session taken over
    /// [MQTT-3.1.4-3], and returns its signal, whose `finished` completes once it has
    /// handed its session back.
    pub(crate) fn begin_takeover(&mut self, client_id: &ClientId) -> Option<Arc<ConnectionSignal>> {
        let link = self.registry.link(client_id)?;
        link.signal.close(ReasonCode::SessionTakenOver);
        Some(link.signal.clone())
    }

    /// Gives `client_id`'s session to a new connection.
    pub(crate) fn attach(
        &mut self,
        client_id: &ClientId,
        clean_start: bool,
        expiry: Duration,
        will: Option<WillSpec>,
        signal: Arc<ConnectionSignal>,
        now: Instant,
    ) -> Attachment {
        // The link of a connection still holding the session: `connect` takes it over. Its
        // driver did not finish in time; it is cut off without its state.
        if let Some(stale) = self.registry.take_link(client_id) {
            stale.signal.close(ReasonCode::SessionTakenOver);
        }
        let attached = self
            .registry
            .connect(client_id, clean_start, expiry, will, now);
        for will in attached.wills {
            self.route(Arc::new(will), now);
        }
        if let Some(ended) = attached.ended {
            self.end_session(ended, now);
        }
        let delivery = if attached.session_present {
            self.delivery_states.remove(client_id).unwrap_or_default()
        } else {
            self.delivery_states.remove(client_id);
            DeliveryState::default()
        };
        let client = client_id.clone();
        if expiry.is_zero() {
            // The session ends with this connection, or with a crash: nothing of it is kept.
            self.record(Change::RemoveSession { client_id: client });
        } else {
            self.record(Change::Session {
                client_id: client.clone(),
                expiry,
                expires_at: None,
            });
            self.record(Change::RemoveWill { client_id: client });
        }
        self.registry.set_link(
            client_id,
            attached.connection,
            Link {
                signal: signal.clone(),
                congestion: None,
            },
        );
        // Messages queued while offline go out as soon as the driver asks.
        signal.wake();
        self.update_gauges();
        Attachment {
            connection: attached.connection,
            session_present: attached.session_present,
            delivery,
        }
    }

    /// The connection `connection` ended. Keeps the session (with its unfinished exchanges)
    /// unless it expires now, publishes or schedules the will, and offers
    /// unacknowledged copies for shared subscriptions to other members of their group.
    pub(crate) fn detach(
        &mut self,
        client_id: &ClientId,
        connection: ConnectionId,
        departing: Departing,
        now: Instant,
    ) {
        let Departing {
            departure,
            expiry,
            delivery,
            shared_unacked,
        } = departing;
        if !self.registry.is_current(client_id, connection) {
            return;
        }
        let persisted = self.persists(client_id);
        // The link goes with the session's online state: `disconnect` drops both.
        let detached = self
            .registry
            .disconnect(client_id, connection, departure, expiry, now);
        let mut to_redeliver = shared_unacked;
        if let Some(session) = self.registry.session_mut(client_id) {
            to_redeliver.extend(session.queue.take_shared());
            self.delivery_states.insert(client_id.clone(), delivery);
            if persisted {
                // DISCONNECT may have changed the expiry (3.14.2.2.2). The deadline is stored
                // so that time spent with the broker down counts towards it.
                self.record(Change::Session {
                    client_id: client_id.clone(),
                    expiry,
                    expires_at: now.checked_add(expiry),
                });
            }
        }
        for (seq, outgoing) in to_redeliver {
            if persisted {
                self.record(Change::RemoveQueued {
                    client_id: client_id.clone(),
                    seq,
                });
            }
            self.redeliver_shared(client_id, outgoing, now);
        }
        if let Some(pending) = self.registry.pending_will(client_id).cloned() {
            if persisted {
                self.record(Change::Will {
                    client_id: client_id.clone(),
                    will: Box::new(pending),
                });
            }
        }
        if let Some(will) = detached.will {
            self.route(Arc::new(will), now);
        }
        if let Some(ended) = detached.ended {
            self.end_session(ended, now);
        }
        self.update_gauges();
    }

    /// Removes an ended session's subscriptions and hands its shared copies to others.
    fn end_session(&mut self, ended: EndedSession, now: Instant) {
        for subscription in &ended.subscriptions {
            self.tree
                .unsubscribe(&ended.client_id, &subscription.filter);
        }
        self.delivery_states.remove(&ended.client_id);
        self.record(Change::RemoveSession {
            client_id: ended.client_id.clone(),
        });
        for outgoing in ended.undelivered {
            self.redeliver_shared(&ended.client_id, outgoing, now);
        }
        self.update_gauges();
    }

    fn redeliver_shared(&mut self, departing: &ClientId, outgoing: Outgoing, now: Instant) {
        let Some(filter) = outgoing.shared.clone() else {
            return;
        };
        let registry = &self.registry;
        let is_ready = |c: &ClientId| ready(registry, c);
        if let Some(delivery) =
            self.tree
                .redeliver_shared(&filter, departing, &outgoing.message, is_ready)
        {
            let message = outgoing.message.clone();
            self.deliver(message, delivery, now);
        }
    }

    /// Lets go of the room of `client_id`'s queue if it is empty, for its connection
    /// `connection` that has gone idle.
    pub(crate) fn release_queue_room(&mut self, client_id: &ClientId, connection: ConnectionId) {
        if let Some((session, _)) = self.registry.current_session_mut(client_id, connection) {
            session.queue.release_room();
        }
    }

    /// Takes queued messages with their sequence numbers, in order, for the live connection
    /// `connection` into `taken` (which the caller passes empty, and reuses for its room): at
    /// most `batch` of them, of which at most `quota` with QoS 1 or 2 (the client's free
    /// Receive Maximum window). Expired messages are dropped on the way [MQTT-3.3.2-5]. A
    /// stored QoS 1 or 2 message stays stored until the client acknowledges it; the driver
    /// records that.
    pub(crate) fn take_queued(
        &mut self,
        client_id: &ClientId,
        connection: ConnectionId,
        mut quota: usize,
        batch: usize,
        now: Instant,
        taken: &mut Vec<Taken>,
    ) {
        // One lookup for the session and the link: this runs for every delivery.
        let Some((session, mut link)) = self.registry.current_session_mut(client_id, connection)
        else {
            return;
        };
        let persisted = session.persists();
        let mut skipped = Skipped::default();
        while taken.len() < batch {
            let admitted = session
                .queue
                .pop_if(now, &mut skipped, |o| o.qos == QoS::AtMostOnce || quota > 0);
            let Some((seq, outgoing, gate)) = admitted else {
                break;
            };
            if outgoing.qos != QoS::AtMostOnce {
                quota -= 1;
            }
            // The gate follows a stored copy, whose acknowledgement counts as its delivery.
            let gate = gate.filter(|_| persisted && outgoing.qos != QoS::AtMostOnce);
            taken.push((seq, outgoing, gate));
        }
        if self
            .watermarks
            .drained(session.queue.len(), session.queue.bytes())
        {
            if let Some(link) = link.as_deref_mut() {
                // Dropping the congestion wakes the publishers it paused.
                link.congestion = None;
            }
        } else if !taken.is_empty() {
            if let Some(congestion) = link
                .as_deref_mut()
                .and_then(|link| link.congestion.as_mut())
            {
                congestion.progressed(now);
            }
        }
        if let (Some(ticket), Some(link)) = (skipped.waiting_for.take(), link.as_deref()) {
            wake_after_commit(link, ticket);
        }
        if persisted {
            // A copy whose publisher was refused was in the failed commit, so it is not on
            // disk; the removal keeps it so should a later commit have stored it.
            for seq in skipped.expired.iter().chain(&skipped.unstored) {
                self.record(Change::RemoveQueued {
                    client_id: client_id.clone(),
                    seq: *seq,
                });
            }
        }
        if !skipped.unstored.is_empty() {
            tracing::debug!(client = %client_id, copies = skipped.unstored.len(), "copies of refused messages discarded");
        }
        Metrics::add(&self.metrics.messages_expired, skipped.expired.len() as u64);
    }

    /// Fires the registry's timers and purges expired retained messages; returns the next
    /// moment something is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<Instant> {
        for event in self.registry.handle_timeout(now) {
            match event {
                RegistryEvent::WillDue(will) => {
                    if let Some(client) = will.publisher.clone() {
                        self.record(Change::RemoveWill { client_id: client });
                    }
                    self.route(Arc::new(*will), now);
                }
                RegistryEvent::SessionExpired(ended) => self.end_session(ended, now),
            }
        }
        let purged = self.retained.purge_expired(now);
        if purged > 0 {
            self.update_gauges();
        }
        self.registry.next_deadline()
    }

    /// Asks every live connection to close with `reason` and returns their signals, whose
    /// `finished` completes when each has detached.
    pub(crate) fn close_all(&mut self, reason: ReasonCode) -> Vec<Arc<ConnectionSignal>> {
        self.registry
            .links()
            .map(|(_, link)| {
                link.signal.close(reason);
                link.signal.clone()
            })
            .collect()
    }

    /// Whether a session (connected or not) exists for `client_id`.
    pub(crate) fn has_session(&self, client_id: &ClientId) -> bool {
        self.registry.session(client_id).is_some()
    }

    /// Sessions held, connected or not.
    pub(crate) fn session_count(&self) -> usize {
        self.registry.len()
    }

    /// The number of clients with a live connection.
    pub(crate) fn clients_connected(&self) -> usize {
        self.registry
            .links()
            .filter(|(c, _)| !crate::quic::subscriber::is_data_stream(c))
            .count()
    }

    /// Subscriptions in the tree.
    pub(crate) fn subscription_count(&self) -> usize {
        self.tree.len()
    }

    /// Retained messages held.
    pub(crate) fn retained_count(&self) -> usize {
        self.retained.len()
    }

    fn update_gauges(&self) {
        Metrics::set(&self.metrics.subscriptions, self.tree.len() as u64);
        Metrics::set(&self.metrics.retained_messages, self.retained.len() as u64);
        Metrics::set(&self.metrics.sessions, self.registry.len() as u64);
    }
}

/// Wakes the driver behind `link` once `ticket`'s commit has finished, so a queue held by a
/// QoS 2 message waiting for its publisher's commit moves on. One waiter per link at a time.
fn wake_after_commit(link: &Link, mut ticket: CommitTicket) {
    if link.signal.commit_waiter.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        link.signal.commit_waiter.store(false, Ordering::Release);
        return;
    };
    let signal = link.signal.clone();
    runtime.spawn(async move {
        // A failed commit wakes the driver too: the copies it held are then discarded.
        let _ = ticket.wait().await;
        signal.commit_waiter.store(false, Ordering::Release);
        signal.wake();
    });
}

/// A client is ready for a shared-subscription copy when it is connected and has no backlog.
fn ready(registry: &SessionRegistry<Link>, client: &ClientId) -> bool {
    registry.connection_of(client).is_some()
        && registry.session(client).is_some_and(|s| s.queue.is_empty())
}
