//! A [`Lane`] is one MQTT exchange space of the client, as it lives across connections: the
//! control stream (the only lane of a single-stream connection, and of every TCP, TLS and
//! WebSocket connection) or one data stream of a multi-stream QUIC connection. Each lane has
//! its own queue of requests, its own requests in flight (packet identifiers are per stream),
//! its own subscriptions and its own receiver of messages. Plain bookkeeping; which byte
//! stream carries a lane on the current connection is `connection.rs`'s business.

use std::sync::Arc;

use mquictt_protocol::session::{OutboundMessage, SessionState};
use mquictt_protocol::{Properties, Publish, ReasonCode};
use tokio::sync::mpsc;

use crate::client::QueueCount;
use crate::error::ClientError;
use crate::message::Message;
use crate::pending::{InFlight, Queued, Request, RequestQueue};
use crate::subscriptions::SubscriptionRecord;

/// Names a lane. The control stream is 0; data streams count up from 1 in the order the
/// application opened them, and keep their number across reconnects (the QUIC stream under
/// them changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct LaneId(pub(crate) u64);

impl LaneId {
    /// The control stream, or the single stream.
    pub(crate) const CONTROL: LaneId = LaneId(0);

    pub(crate) fn is_control(self) -> bool {
        self == LaneId::CONTROL
    }
}

impl std::fmt::Display for LaneId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_control() {
            f.write_str("control stream")
        } else {
            write!(f, "data stream {}", self.0)
        }
    }
}

/// The state of one lane across connections.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) requests: RequestQueue,
    pub(crate) in_flight: InFlight,
    pub(crate) subscriptions: SubscriptionRecord,
    /// Where the messages of this lane's subscriptions go.
    pub(crate) messages: mpsc::Sender<Message>,
}

impl Lane {
    pub(crate) fn new(messages: mpsc::Sender<Message>) -> Self {
        Lane {
            requests: RequestQueue::default(),
            in_flight: InFlight::default(),
            subscriptions: SubscriptionRecord::default(),
            messages,
        }
    }

    /// Turns the state of a session that will not be resumed back into requests: unfinished
    /// publishes are published again as new messages ("at least once" holds; the broker never
    /// confirmed them), and QoS 2 messages whose PUBREC arrived are complete (the broker has
    /// them).
    pub(crate) fn abandon(&mut self, state: SessionState, queue_count: &QueueCount) {
        let mut resend = Vec::new();
        for message in state.outbound {
            match message {
                OutboundMessage::Publish(publish) => {
                    resend.extend(self.republish(*publish, queue_count));
                }
                OutboundMessage::Release(packet_id) => {
                    self.in_flight.complete_publish(
                        packet_id,
                        ReasonCode::Success,
                        Properties::default(),
                    );
                }
            }
        }
        self.requests.requeue(resend);
    }

    /// A publish of a lost session, as a new request in its original place.
    pub(crate) fn republish(
        &mut self,
        mut publish: Publish,
        queue_count: &QueueCount,
    ) -> Option<Queued> {
        let pending = self.in_flight.publishes.remove(&publish.packet_id?)?;
        publish.packet_id = None;
        publish.dup = false;
        queue_count.readmit();
        Some(Queued {
            seq: pending.seq,
            request: Request::Publish {
                publish,
                done: pending.done,
            },
        })
    }

    /// Fails every request of the lane, queued or in flight.
    pub(crate) fn fail_all(&mut self, queue_count: &QueueCount, error: impl Fn() -> ClientError) {
        for queued in self.requests.drain() {
            if matches!(queued.request, Request::Publish { .. }) {
                queue_count.release();
            }
            queued.request.fail(error());
        }
        self.in_flight.fail_all(error);
    }

    /// After the byte stream that carried the lane is gone: puts what can be sent again back
    /// in the queue (see [`InFlight::take_resendable`]). `written` counts the bytes written
    /// to that stream.
    pub(crate) fn requeue_unfinished(
        &mut self,
        written: u64,
        cause: &Arc<ClientError>,
        queue_count: &QueueCount,
    ) {
        let resend = self.in_flight.take_resendable(written, cause);
        for queued in &resend {
            if matches!(queued.request, Request::Publish { .. }) {
                queue_count.readmit();
            }
        }
        self.requests.requeue(resend);
    }
}
