//! Delivery of queued messages to one connection: taking a batch from the session's queue
//! under the router's lock, handing each message to the session (which assigns packet
//! identifiers and respects the client's window), and recording what went out in flight.

use std::cell::Cell;
use std::time::Instant;

use mquictt_protocol::session::RequestError;
use mquictt_protocol::{Publish, QoS};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::metrics::Metrics;
use crate::router::{InFlight, Taken};
use crate::storage::{Change, InFlightStage};

/// Messages handed to the session per pass, so one busy subscriber cannot hold the router
/// lock for long.
const DELIVERY_BATCH: usize = 64;

thread_local! {
    /// The batch `deliver_queued` takes from the router, emptied by each pass and kept by the
    /// worker thread for its room: one allocation per thread rather than one per delivery,
    /// and none in any connection's memory.
    static BATCH: Cell<Vec<Taken>> = const { Cell::new(Vec::new()) };
}
/// Bytes handed to the session between two writes: each message's topic and payload, and the
/// PUBLISH packet the session holds until it is encoded. A subscriber that fell behind takes
/// the rest of its queue once this much went to the socket, rather than copying the whole
/// queue into its write buffer at once: queued messages are shared by every subscriber,
/// packets and encoded copies are not (100 subscribers of 1 KiB messages held about 100 MiB
/// of write buffers at full speed).
const DELIVERY_BYTES_PER_WRITE: usize = 128 * 1024;

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Hands queued messages to the session while the client's window has room.
    pub(super) fn deliver_queued(&mut self) {
        // Cleared first: a driver that cannot deliver now must not come straight back.
        self.more_queued = false;
        let Some(attached) = &mut self.attached else {
            return;
        };
        if !self.deliver_due || !self.session.is_connected() {
            return;
        }
        self.deliver_due = false;
        let mut handed = 0;
        loop {
            let now = Instant::now();
            let inflight_room = usize::from(self.shared.config.max_inflight)
                .saturating_sub(self.session.in_flight());
            let quota = self.session.send_quota().min(inflight_room);
            let mut batch = BATCH.take();
            self.shared.router().take_queued(
                &attached.client_id,
                attached.connection,
                quota,
                DELIVERY_BATCH,
                now,
                &mut batch,
            );
            let full_batch = batch.len() == DELIVERY_BATCH;
            let mut needs_barrier = false;
            for (seq, outgoing, gate) in batch.drain(..) {
                let qos = outgoing.qos;
                handed += outgoing.message.size() + std::mem::size_of::<Publish>();
                // A copy picked for a shared subscription is kept until acknowledged, to be
                // handed to another member if this one leaves; any other is done with here.
                let (publish, kept) = if outgoing.shared.is_some() {
                    (outgoing.to_publish(now), Some(outgoing))
                } else {
                    (outgoing.into_publish(now), None)
                };
                let result = self.session.publish(publish);
                match result {
                    Ok(Some(packet_id)) => {
                        self.shared.metrics.messages_sent.add(1);
                        if attached.persistent {
                            self.shared.journal.record(Change::InFlight {
                                client_id: attached.client_id.clone(),
                                seq,
                                packet_id,
                                stage: InFlightStage::Sent,
                            });
                            // A QoS 2 receiver that got this PUBLISH treats the identifier as
                            // taken until PUBREL; re-sending the message under another one
                            // after a crash would deliver it twice. QoS 1 may be delivered
                            // twice, so it does not wait.
                            needs_barrier |= qos == QoS::ExactlyOnce;
                        }
                        attached.exchanges.insert_in_flight(
                            packet_id,
                            InFlight {
                                seq,
                                stage: InFlightStage::Sent,
                                shared: kept,
                                gate,
                            },
                        );
                    }
                    Ok(None) => {
                        self.shared.metrics.messages_sent.add(1);
                    }
                    Err(e) => {
                        if let RequestError::PacketTooLarge { .. } = e {
                            // "the Server MUST NOT send packets exceeding Maximum Packet Size
                            // to the Client" [MQTT-3.1.2-24]: dropped for this subscriber only.
                            Metrics::add(&self.shared.metrics.messages_oversized, 1);
                        } else {
                            tracing::debug!(client = %attached.client_id, error = %e, "message not handed to the session");
                        }
                        if attached.persistent && qos != QoS::AtMostOnce {
                            self.shared.journal.record(Change::RemoveQueued {
                                client_id: attached.client_id.clone(),
                                seq,
                            });
                        }
                    }
                }
            }
            BATCH.set(batch);
            if needs_barrier {
                self.barrier = Some(self.shared.journal.ticket());
            }
            if !full_batch {
                return;
            }
            if handed >= DELIVERY_BYTES_PER_WRITE {
                self.deliver_due = true;
                self.more_queued = true;
                return;
            }
        }
    }
}
