//! Requests the driver holds on behalf of the application: the [`RequestQueue`] of requests
//! not yet handed to a session (the offline queue), and the [`InFlight`] tables of requests a
//! session has taken and whose answer is awaited (by packet identifier, or for QoS 0 by
//! position in the written byte stream). Every request carries a sequence number so that
//! requests coming back from a lost connection re-enter the queue in their original order.
//! Plain bookkeeping; the driver decides when things move.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mquictt_protocol::{PacketId, Properties, Publish, ReasonCode, TopicFilter};
use tokio::sync::oneshot;

use crate::error::ClientError;
use crate::message::{PublishOutcome, SubscribeOutcome, Subscription, UnsubscribeOutcome};

/// Where an answer goes.
pub(crate) type Responder<T> = oneshot::Sender<Result<T, ClientError>>;

/// A request of the application.
#[derive(Debug)]
pub(crate) enum Request {
    Publish {
        publish: Publish,
        done: Responder<PublishOutcome>,
    },
    /// `done` is `None` for a subscription the client renews by itself after the broker lost
    /// the session.
    Subscribe {
        subscription: Subscription,
        done: Option<Responder<SubscribeOutcome>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: Properties,
        done: Responder<UnsubscribeOutcome>,
    },
}

impl Request {
    /// Answers the request with an error (the application may have stopped waiting).
    pub(crate) fn fail(self, error: ClientError) {
        match self {
            Request::Publish { done, .. } => {
                let _ = done.send(Err(error));
            }
            Request::Subscribe { done, .. } => {
                if let Some(done) = done {
                    let _ = done.send(Err(error));
                }
            }
            Request::Unsubscribe { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// A request with its place in the order the application made them.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    pub(crate) request: Request,
}

/// Requests waiting for a session to take them, in order.
#[derive(Debug, Default)]
pub(crate) struct RequestQueue {
    items: VecDeque<Queued>,
    next_seq: u64,
}

impl RequestQueue {
    /// Appends a new request.
    pub(crate) fn push(&mut self, request: Request) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.items.push_back(Queued { seq, request });
    }

    /// Puts back a request taken with `pop` that the session could not take yet.
    pub(crate) fn push_front(&mut self, queued: Queued) {
        self.items.push_front(queued);
    }

    /// Puts requests back from a lost connection, each at its original place.
    pub(crate) fn requeue(&mut self, requests: impl IntoIterator<Item = Queued>) {
        let before = self.items.len();
        self.items.extend(requests);
        if self.items.len() != before {
            // Stable: equal sequence numbers (none) would keep their order.
            self.items
                .make_contiguous()
                .sort_by_key(|queued| queued.seq);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Queued> {
        self.items.pop_front()
    }

    /// Takes every request out, for failing them.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Queued> + '_ {
        self.items.drain(..)
    }
}

/// A QoS 0 publish the session took: waiting to be encoded, or encoded at `start..end` of
/// the connection's outgoing byte stream and waiting to be written and flushed.
#[derive(Debug)]
pub(crate) struct QoS0Publish {
    pub(crate) seq: u64,
    pub(crate) publish: Publish,
    pub(crate) done: Responder<PublishOutcome>,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

#[derive(Debug)]
pub(crate) struct PendingPublish {
    pub(crate) seq: u64,
    pub(crate) done: Responder<PublishOutcome>,
}

#[derive(Debug)]
pub(crate) struct PendingSubscribe {
    pub(crate) seq: u64,
    pub(crate) subscription: Subscription,
    pub(crate) done: Option<Responder<SubscribeOutcome>>,
}

#[derive(Debug)]
pub(crate) struct PendingUnsubscribe {
    pub(crate) seq: u64,
    pub(crate) filters: Vec<TopicFilter>,
    pub(crate) properties: Properties,
    pub(crate) done: Responder<UnsubscribeOutcome>,
}

/// Requests a session took and whose completion is awaited.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// QoS 1 and 2 publishes by packet identifier. They live on across connections while the
    /// session does: the session state keeps the messages, this keeps who waits for them.
    pub(crate) publishes: HashMap<PacketId, PendingPublish>,
    /// QoS 0 publishes not yet encoded, in the order the session transmits them.
    pub(crate) qos0_unsent: VecDeque<QoS0Publish>,
    /// QoS 0 publishes encoded and not yet written and flushed, in stream order.
    pub(crate) qos0_unflushed: VecDeque<QoS0Publish>,
    pub(crate) subscribes: HashMap<PacketId, PendingSubscribe>,
    pub(crate) unsubscribes: HashMap<PacketId, PendingUnsubscribe>,
}

impl InFlight {
    /// Completes a QoS 1 or 2 publish.
    pub(crate) fn complete_publish(
        &mut self,
        packet_id: PacketId,
        reason_code: ReasonCode,
        properties: Properties,
    ) {
        if let Some(pending) = self.publishes.remove(&packet_id) {
            let _ = pending.done.send(Ok(PublishOutcome {
                packet_id: Some(packet_id),
                reason_code,
                properties,
            }));
        }
    }

    /// Completes the QoS 0 publishes whose last byte is written and flushed.
    pub(crate) fn complete_flushed(&mut self, flushed: u64) {
        while self
            .qos0_unflushed
            .front()
            .is_some_and(|publish| publish.end <= flushed)
        {
            if let Some(publish) = self.qos0_unflushed.pop_front() {
                let _ = publish.done.send(Ok(PublishOutcome {
                    packet_id: None,
                    reason_code: ReasonCode::Success,
                    properties: Properties::default(),
                }));
            }
        }
    }

    /// After the connection is lost: the requests to send again on the next connection
    /// (QoS 0 publishes of which no byte was written, unanswered SUBSCRIBE and UNSUBSCRIBE
    /// requests). A QoS 0 publish partly written may or may not have arrived; it fails rather
    /// than risk a second delivery ("at most once").
    pub(crate) fn take_resendable(
        &mut self,
        written: u64,
        cause: &Arc<ClientError>,
    ) -> Vec<Queued> {
        let mut resend = Vec::new();
        for publish in self
            .qos0_unflushed
            .drain(..)
            .chain(self.qos0_unsent.drain(..))
        {
            if publish.start >= written {
                resend.push(Queued {
                    seq: publish.seq,
                    request: Request::Publish {
                        publish: publish.publish,
                        done: publish.done,
                    },
                });
            } else {
                let _ = publish
                    .done
                    .send(Err(ClientError::ConnectionLost(cause.clone())));
            }
        }
        for (_, pending) in self.subscribes.drain() {
            // Renewals the client made by itself are made again after the next CONNACK
            // that needs them.
            if pending.done.is_none() {
                continue;
            }
            resend.push(Queued {
                seq: pending.seq,
                request: Request::Subscribe {
                    subscription: pending.subscription,
                    done: pending.done,
                },
            });
        }
        for (_, pending) in self.unsubscribes.drain() {
            resend.push(Queued {
                seq: pending.seq,
                request: Request::Unsubscribe {
                    filters: pending.filters,
                    properties: pending.properties,
                    done: pending.done,
                },
            });
        }
        resend
    }

    /// Fails everything still awaited.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> ClientError) {
        for (_, pending) in self.publishes.drain() {
            let _ = pending.done.send(Err(error()));
        }
        for publish in self
            .qos0_unsent
            .drain(..)
            .chain(self.qos0_unflushed.drain(..))
        {
            let _ = publish.done.send(Err(error()));
        }
        for (_, pending) in self.subscribes.drain() {
            if let Some(done) = pending.done {
                let _ = done.send(Err(error()));
            }
        }
        for (_, pending) in self.unsubscribes.drain() {
            let _ = pending.done.send(Err(error()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mquictt_protocol::{QoS, TopicName};

    fn publish(
        payload: &'static str,
    ) -> (
        Request,
        oneshot::Receiver<Result<PublishOutcome, ClientError>>,
    ) {
        let (done, rx) = oneshot::channel();
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from_static(payload.as_bytes()),
        };
        (Request::Publish { publish, done }, rx)
    }

    fn payload(queued: &Queued) -> &[u8] {
        match &queued.request {
            Request::Publish { publish, .. } => &publish.payload,
            _ => b"",
        }
    }

    #[test]
    fn requeued_requests_regain_their_place() {
        let mut queue = RequestQueue::default();
        let mut receivers = Vec::new();
        for text in ["a", "b", "c", "d"] {
            let (request, rx) = publish(text);
            queue.push(request);
            receivers.push(rx);
        }
        let a = queue.pop().unwrap();
        let b = queue.pop().unwrap();
        queue.requeue([b, a]);
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| queue.pop())
            .map(|queued| payload(&queued).to_vec())
            .collect();
        assert_eq!(order, [b"a", b"b", b"c", b"d"]);
    }

    #[test]
    fn partly_written_qos0_fails_unwritten_is_resent() {
        let mut in_flight = InFlight::default();
        let mut receivers = Vec::new();
        for (seq, (start, end)) in [(0u64, 10u64), (10, 20), (20, 30)].into_iter().enumerate() {
            let (Request::Publish { publish, done }, rx) = publish("x") else {
                unreachable!("publish() builds a publish request")
            };
            receivers.push(rx);
            in_flight.qos0_unflushed.push_back(QoS0Publish {
                seq: seq as u64,
                publish,
                done,
                start,
                end,
            });
        }
        in_flight.complete_flushed(10);
        let cause = Arc::new(ClientError::Closed);
        let resend = in_flight.take_resendable(15, &cause);
        assert_eq!(resend.len(), 1);
        assert_eq!(resend[0].seq, 2);
        let mut receivers = receivers.into_iter();
        let first = receivers.next().unwrap().try_recv().unwrap().unwrap();
        assert_eq!(first.packet_id, None);
        assert!(matches!(
            receivers.next().unwrap().try_recv().unwrap(),
            Err(ClientError::ConnectionLost(_))
        ));
    }
}
