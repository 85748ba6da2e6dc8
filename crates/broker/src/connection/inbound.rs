//! Incoming PUBLISH packets, routed in batches. The session's consecutive PUBLISH events are
//! checked one by one without the router's lock (topic limits, authorization, payload format,
//! storage quota), routed under one acquisition of it, and answered in the order they came.
//!
//! One acquisition per message made that lock the broker's most contended point: with 100
//! publishers served by two worker threads, about a tenth of the broker's CPU went to waiting
//! for it and waking its waiters (docs/benchmarks.md, *Routing in batches*). Checks stay
//! outside the lock because they call the authenticator, which may be the library user's.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use mquictt_protocol::session::ServerEvent;
use mquictt_protocol::{Disconnect, PacketId, Publish, QoS, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Deferred, Driver};
use crate::auth::Principal;
use crate::limits::topic_within_limits;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::router::{take_last_woken, AwaitingRelease, Routed};
use crate::storage::{Change, CommitTicket};

/// The most PUBLISH packets routed under one acquisition of the router's lock, so that a busy
/// publisher does not keep the others out for long.
const ROUTE_BATCH: usize = 32;

/// A PUBLISH between its checks and its answer.
#[derive(Debug)]
pub(super) struct Inbound {
    packet_id: Option<PacketId>,
    v5: bool,
    /// The record of an incoming QoS 2 identifier awaiting PUBREL, for a persistent session;
    /// boxed, as it is rare, to keep the batch's entries small.
    awaiting_release: Option<Box<Change>>,
    fate: Fate,
}

#[derive(Debug)]
enum Fate {
    /// Passed its checks: routed with its batch. Made into its `Arc` here, outside the lock.
    Route(Arc<Message>),
    Routed(Routed),
    /// Refused before routing; answered with this reason (MQTT 5) or a plain acknowledgement.
    Refused(ReasonCode),
    /// Refused with more than an acknowledgement; nothing after it joins its batch.
    AtOnce(AtOnce),
}

#[derive(Debug)]
enum AtOnce {
    /// A protocol error, or a storage refusal to a 3.1.1 client: the connection ends.
    Disconnect(ReasonCode),
    /// A storage refusal an MQTT 5 client is told of at once.
    Refuse(PacketId, ReasonCode),
}

impl Inbound {
    fn at_once(answer: AtOnce) -> Self {
        Inbound {
            packet_id: None,
            v5: false,
            awaiting_release: None,
            fate: Fate::AtOnce(answer),
        }
    }

    fn is_at_once(&self) -> bool {
        matches!(self.fate, Fate::AtOnce(_))
    }
}

/// What a back-pressure pause interrupted: publishes checked but not yet routed, and the
/// event of another kind that followed them. Both are taken up, in that order, when it ends.
#[derive(Debug)]
pub(super) struct Unrouted {
    publishes: Vec<Inbound>,
    next: Option<ServerEvent>,
}

thread_local! {
    /// The batch being routed, emptied by each pass and kept by the thread for its room.
    static BATCH: Cell<Vec<Inbound>> = const { Cell::new(Vec::new()) };
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Routes and answers the session's PUBLISH events up to the first event of another
    /// kind, which it returns. `None` when no event is left, or when a back-pressure pause
    /// began: what was taken from the session and not yet routed then waits in `unrouted`,
    /// as the events not yet taken wait in the session.
    pub(super) fn route_publishes(&mut self) -> Option<ServerEvent> {
        let mut batch = BATCH.take();
        let mut next = None;
        // One reading of the clock for the whole pass, and none when nothing was published.
        let mut now = None;
        // What a pause interrupted goes first; the session is read again only after it.
        if let Some(unrouted) = self.unrouted.take() {
            batch.extend(unrouted.publishes);
            next = unrouted.next;
        }
        while self.paused.is_none() {
            if next.is_none() && !batch.last().is_some_and(Inbound::is_at_once) {
                while batch.len() < ROUTE_BATCH {
                    match self.session.poll_event() {
                        Some(ServerEvent::Publish(publish)) => {
                            let now = *now.get_or_insert_with(Instant::now);
                            let Some(inbound) = self.check_publish(publish, now) else {
                                continue;
                            };
                            let at_once = inbound.is_at_once();
                            batch.push(inbound);
                            if at_once {
                                break;
                            }
                        }
                        other => {
                            next = other;
                            break;
                        }
                    }
                }
            }
            // Stopped short of the session's end: a full batch, or an answer given at once.
            let more = next.is_none()
                && (batch.len() >= ROUTE_BATCH || batch.last().is_some_and(Inbound::is_at_once));
            if !batch.is_empty() {
                let now = *now.get_or_insert_with(Instant::now);
                self.route_batch(&mut batch, now);
            }
            if !more {
                break;
            }
        }
        if self.paused.is_some() {
            self.hold_back(std::mem::take(&mut batch), next.take());
        }
        BATCH.set(batch);
        next
    }

    /// Routes and answers one PUBLISH on its own. `route_publishes` takes every PUBLISH of
    /// the session, so this serves only a caller that took one itself.
    pub(super) fn route_one(&mut self, publish: Publish) {
        let now = Instant::now();
        let Some(inbound) = self.check_publish(publish, now) else {
            return;
        };
        let mut batch = vec![inbound];
        self.route_batch(&mut batch, now);
        self.hold_back(batch, None);
    }

    /// Keeps what a pause interrupted for when it ends; nothing when nothing was left. Called
    /// only with `unrouted` empty: each pass takes it up before reading the session.
    fn hold_back(&mut self, publishes: Vec<Inbound>, next: Option<ServerEvent>) {
        if !(publishes.is_empty() && next.is_none()) {
            self.unrouted = Some(Box::new(Unrouted { publishes, next }));
        }
    }

    /// Routes the batch's checked messages under one acquisition of the router's lock, up to
    /// the first that asks for a pause, then answers those it got to, in order. What follows
    /// a pause stays in `batch`.
    fn route_batch(&mut self, batch: &mut Vec<Inbound>, now: Instant) {
        let mut end = batch.len();
        // Whom an earlier routing on this thread woke last is no concern of this batch.
        let _ = take_last_woken();
        let mut router = None;
        for (i, inbound) in batch.iter_mut().enumerate() {
            // A `Route` is overwritten below by its `Routed`; any other fate is put back.
            let message =
                match std::mem::replace(&mut inbound.fate, Fate::Refused(ReasonCode::Success)) {
                    Fate::Route(message) => message,
                    other => {
                        inbound.fate = other;
                        continue;
                    }
                };
            let awaiting_release =
                inbound
                    .awaiting_release
                    .as_deref()
                    .map(|change| AwaitingRelease {
                        change: change.clone(),
                        refusable: inbound.v5,
                    });
            let routed = router.get_or_insert_with(|| self.shared.router()).publish(
                message,
                now,
                awaiting_release,
            );
            let pause = routed.pause.is_some();
            inbound.fate = Fate::Routed(routed);
            if pause {
                end = i + 1;
                break;
            }
        }
        drop(router);
        // Only a lone message, with no more input waiting, lets the connection it woke write
        // first: under load the publisher goes on reading while the subscriber writes, and
        // a wait per batch would take that overlap away.
        let lone = end == 1 && self.read_buf.is_empty();
        let own = self.attached.as_ref().map(|a| a.signal.signal());
        self.answers_wait_for = take_last_woken().filter(|woken| {
            lone && woken.turns_here() && own.is_none_or(|own| !Arc::ptr_eq(own, woken.signal()))
        });
        for inbound in batch.drain(..end) {
            self.answer_publish(inbound);
        }
    }

    /// The checks of one PUBLISH before it may be routed; `None` without a session.
    fn check_publish(&mut self, publish: Publish, now: Instant) -> Option<Inbound> {
        let attached = self.attached.as_ref()?;
        let packet_id = publish.packet_id;
        if !publish.properties.subscription_identifiers.is_empty() {
            // "A PUBLISH packet sent from a Client to a Server MUST NOT contain a Subscription
            // Identifier" [MQTT-3.3.4-6]; receiving one "is a Protocol Error" (3.3.2.3.8), so
            // the message is not routed and the connection ends with 0x82.
            return Some(Inbound::at_once(AtOnce::Disconnect(
                ReasonCode::ProtocolError,
            )));
        }
        self.shared.metrics.messages_received.add(1);
        let v5 = attached.version.is_v5();
        if publish.qos != QoS::AtMostOnce {
            if let Err(e) = self.shared.journal.admit() {
                tracing::warn!(client = %attached.client_id, error = %e, "message refused");
                return Some(Inbound::at_once(match (v5, publish.packet_id) {
                    (true, Some(packet_id)) => AtOnce::Refuse(packet_id, e.reason_code()),
                    // 3.1.1 cannot refuse a message: the connection closes unacknowledged.
                    _ => AtOnce::Disconnect(e.reason_code()),
                }));
            }
        }
        // On a QUIC data stream the owning client publishes, not the stream's own key.
        let principal = Principal {
            client_id: &attached.owner,
            username: attached.username.as_deref(),
        };
        // Recorded with the message, so that after a restart a re-sent PUBLISH with this
        // identifier is answered with PUBREC and not delivered again [MQTT-4.3.3-10].
        let awaiting_release = match publish.packet_id {
            Some(packet_id) if publish.qos == QoS::ExactlyOnce && attached.persistent => {
                Some(Box::new(Change::InboundAwaitingRelease {
                    client_id: attached.client_id.clone(),
                    packet_id,
                }))
            }
            _ => None,
        };
        let fate = if !topic_within_limits(publish.topic.as_str(), &self.shared.config) {
            // "0x90 Topic Name invalid: The Topic Name is not malformed, but is not accepted by
            // this Client or Server" (3.4.2.1): too long or too deep for this broker.
            Metrics::add(&self.shared.metrics.limit_refusals, 1);
            Fate::Refused(ReasonCode::TopicNameInvalid)
        } else if !self
            .shared
            .authenticator
            .authorize_publish(&principal, &publish.topic)
        {
            Metrics::add(&self.shared.metrics.authorization_denials, 1);
            Fate::Refused(ReasonCode::NotAuthorized)
        } else if publish.properties.payload_format_indicator == Some(true)
            && std::str::from_utf8(&publish.payload).is_err()
        {
            // A payload announced as UTF-8 that is not: 0x99 Payload format invalid
            // (3.3.2.3.2); it is not forwarded.
            Fate::Refused(ReasonCode::PayloadFormatInvalid)
        } else {
            Fate::Route(Arc::new(Message::from_publish(
                publish,
                Some(attached.owner.clone()),
                now,
            )))
        };
        Some(Inbound {
            packet_id,
            v5,
            awaiting_release,
            fate,
        })
    }

    /// Answers a routed or refused PUBLISH (an acknowledgement once what it depends on is
    /// durable) and takes up the pause its routing asked for.
    fn answer_publish(&mut self, inbound: Inbound) {
        let Inbound {
            packet_id,
            v5,
            awaiting_release,
            fate,
        } = inbound;
        let mut ticket = CommitTicket::done();
        let mut awaiting_release_recorded = false;
        let reason = match fate {
            Fate::Refused(reason) => reason,
            Fate::AtOnce(AtOnce::Disconnect(reason)) => {
                let _ = self.session.disconnect(Disconnect::new(reason));
                return;
            }
            Fate::AtOnce(AtOnce::Refuse(packet_id, reason)) => {
                let _ = self.session.ack_incoming(packet_id, reason);
                return;
            }
            // Not reached: routing turns every `Route` before a pause into `Routed`.
            Fate::Route(_) => ReasonCode::Success,
            Fate::Routed(mut routed) => {
                awaiting_release_recorded = routed.awaiting_release_recorded;
                ticket = routed.ticket.clone();
                if routed.pause.is_some() {
                    self.paused = routed.pause.take();
                }
                if routed.refused_everywhere() && v5 {
                    // Every matching subscriber's queue was full: nobody will receive it.
                    ReasonCode::QuotaExceeded
                } else if routed.receivers == 0 && v5 {
                    ReasonCode::NoMatchingSubscribers
                } else {
                    ReasonCode::Success
                }
            }
        };
        let Some(packet_id) = packet_id else {
            return;
        };
        // 3.1.1 has no negative acknowledgement: the message is acknowledged and dropped.
        let reason = if v5 { reason } else { ReasonCode::Success };
        if let Some(change) = awaiting_release {
            if !awaiting_release_recorded && !reason.is_error() {
                // Not routed (3.1.1 refusals are acknowledged as success): recorded alone.
                self.shared.journal.record_into(*change, &mut ticket);
                awaiting_release_recorded = true;
            }
        }
        if awaiting_release_recorded {
            if let Some(attached) = &mut self.attached {
                attached.exchanges.insert_inbound(packet_id);
            }
        }
        self.answer_when_durable(ticket, Deferred::Ack { packet_id, reason });
    }
}
