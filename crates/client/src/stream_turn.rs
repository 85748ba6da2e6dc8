//! The session's turn on one stream, after any input: take the session's events into the
//! lane's bookkeeping (acknowledgements complete requests, SUBACK records subscriptions,
//! received messages wait for delivery), deliver received messages to the lane's receiver,
//! hand the lane's queued requests to the session, and encode what the session transmits.
//! The same for the control stream and every data stream; what only the control stream
//! does (CONNACK) is `connection.rs`'s. No protocol decision is made here; the session makes
//! them.

use std::time::Instant;

use futures_util::FutureExt;
use mquictt_protocol::session::{ClientEvent, RequestError};
use mquictt_protocol::{Packet, QoS, ReasonCode};
use tokio::sync::mpsc::error::TrySendError;

use crate::client::QueueCount;
use crate::error::ClientError;
use crate::lane::Lane;
use crate::message::{Message, SubscribeOutcome, UnsubscribeOutcome};
use crate::pending::{
    PendingPublish, PendingSubscribe, PendingUnsubscribe, QoS0Publish, Queued, Request,
};
use crate::wire::Wire;

/// Delivers, feeds and transmits: everything of a turn after the events.
pub(crate) fn exchange(lane: &mut Lane, wire: &mut Wire, queue_count: &QueueCount) {
    deliver(lane, wire);
    if wire.session.is_connected() {
        feed(lane, wire, queue_count);
    }
    transmit(lane, wire);
}

/// Takes one event of the session into the lane. `Connected` is the control stream's and is
/// handled before this is called.
pub(crate) fn apply_event(
    lane: &mut Lane,
    wire: &mut Wire,
    event: ClientEvent,
    queue_count: &QueueCount,
) {
    match event {
        ClientEvent::Connected(_) => {}
        ClientEvent::ConnectionRefused(connack) => {
            wire.cause.get_or_insert(ClientError::Refused {
                reason_code: connack.reason_code,
                reason_string: connack
                    .properties
                    .reason_string
                    .as_ref()
                    .map(|text| text.to_string()),
            });
        }
        ClientEvent::SessionDiscarded(publishes) => {
            let resend: Vec<_> = publishes
                .into_iter()
                .filter_map(|publish| lane.republish(publish, queue_count))
                .collect();
            lane.requests.requeue(resend);
        }
        ClientEvent::Publish(publish) => wire.undelivered.push_back(publish),
        ClientEvent::PublishAcknowledged {
            packet_id,
            reason_code,
            properties,
        } => lane
            .in_flight
            .complete_publish(packet_id, reason_code, properties),
        ClientEvent::PublishDropped {
            publish,
            size,
            maximum,
        } => {
            let pending = publish
                .packet_id
                .and_then(|id| lane.in_flight.publishes.remove(&id));
            if let Some(pending) = pending {
                let error = RequestError::PacketTooLarge { size, maximum };
                let _ = pending.done.send(Err(error.into()));
            }
        }
        ClientEvent::SubAck(suback) => {
            if let Some(pending) = lane.in_flight.subscribes.remove(&suback.packet_id) {
                lane.subscriptions
                    .granted(&pending.subscription, &suback.reason_codes);
                match pending.done {
                    Some(done) => {
                        let _ = done.send(Ok(SubscribeOutcome {
                            packet_id: suback.packet_id,
                            reason_codes: suback.reason_codes,
                            properties: suback.properties,
                        }));
                    }
                    None if suback.reason_codes.iter().any(|c| c.is_error()) => {
                        tracing::warn!(codes = ?suback.reason_codes, "renewing subscriptions: the broker refused some");
                    }
                    None => {}
                }
            }
        }
        ClientEvent::UnsubAck(unsuback) => {
            if let Some(pending) = lane.in_flight.unsubscribes.remove(&unsuback.packet_id) {
                lane.subscriptions
                    .removed(&pending.filters, &unsuback.reason_codes);
                let _ = pending.done.send(Ok(UnsubscribeOutcome {
                    packet_id: unsuback.packet_id,
                    reason_codes: unsuback.reason_codes,
                    properties: unsuback.properties,
                }));
            }
        }
        ClientEvent::Auth(_) => {
            // The session only lets AUTH through when CONNECT named an authentication
            // method; this client does not drive enhanced authentication exchanges.
            tracing::warn!(
                "the broker sent AUTH; enhanced authentication is not supported by this client"
            );
        }
        ClientEvent::Disconnected(disconnect) => {
            wire.cause.get_or_insert(ClientError::ServerDisconnected {
                reason_code: disconnect.reason_code,
                reason_string: disconnect
                    .properties
                    .reason_string
                    .as_ref()
                    .map(|text| text.to_string()),
            });
        }
    }
}

/// Makes every subscription of the lane again, on a session that starts without them (the
/// broker lost the session, or a data stream was opened again). No one waits for these
/// SUBACKs.
pub(crate) fn renew_subscriptions(lane: &mut Lane, wire: &mut Wire) {
    for subscription in lane.subscriptions.renewals() {
        match wire.session.subscribe(
            subscription.filters.clone(),
            subscription.properties.clone(),
        ) {
            Ok(packet_id) => {
                lane.in_flight.subscribes.insert(
                    packet_id,
                    PendingSubscribe {
                        seq: 0,
                        subscription,
                        done: None,
                    },
                );
            }
            Err(error) => tracing::warn!("cannot renew a subscription: {error}"),
        }
    }
}

/// Hands received messages to the lane's receiver while its buffer has room, acknowledging
/// QoS 1 and 2 messages as they go in (or are dropped because nobody listens any more). When
/// the buffer is full, the wire waits for room and stops reading meanwhile.
fn deliver(lane: &mut Lane, wire: &mut Wire) {
    while !wire.undelivered.is_empty() {
        let permit = match lane.messages.try_reserve() {
            Ok(permit) => Some(permit),
            Err(TrySendError::Full(())) => {
                if wire.room.is_none() {
                    let messages = lane.messages.clone();
                    wire.room = Some(
                        async move {
                            // The permit is dropped at once: the slot stays free for the
                            // `try_reserve` of the next turn (this lane has one producer).
                            let _ = messages.reserve().await;
                        }
                        .boxed(),
                    );
                }
                return;
            }
            Err(TrySendError::Closed(())) => None,
        };
        let Some(publish) = wire.undelivered.pop_front() else {
            return;
        };
        if let (Some(packet_id), true) = (publish.packet_id, publish.qos != QoS::AtMostOnce) {
            // Fails only when the session closed meanwhile; the broker re-sends then.
            let _ = wire.session.ack_incoming(packet_id, ReasonCode::Success);
        }
        if let Some(permit) = permit {
            permit.send(Message::from_publish(publish));
        }
    }
}

/// Hands queued requests to the session, in order, until its send window is full.
fn feed(lane: &mut Lane, wire: &mut Wire, queue_count: &QueueCount) {
    while let Some(queued) = lane.requests.pop() {
        let seq = queued.seq;
        match queued.request {
            Request::Publish { publish, done } => {
                let copy = (publish.qos == QoS::AtMostOnce).then(|| publish.clone());
                match wire.session.publish(publish) {
                    Ok(Some(packet_id)) => {
                        lane.in_flight
                            .publishes
                            .insert(packet_id, PendingPublish { seq, done });
                    }
                    Ok(None) => {
                        if let Some(publish) = copy {
                            lane.in_flight.qos0_unsent.push_back(QoS0Publish {
                                seq,
                                publish,
                                done,
                                start: 0,
                                end: 0,
                            });
                        }
                    }
                    Err(RequestError::QueueFull(publish)) => {
                        // The broker's Receive Maximum is reached: wait for an
                        // acknowledgement, keeping the order.
                        lane.requests.push_front(Queued {
                            seq,
                            request: Request::Publish {
                                publish: *publish,
                                done,
                            },
                        });
                        return;
                    }
                    Err(error) => {
                        let _ = done.send(Err(error.into()));
                    }
                }
                queue_count.release();
            }
            Request::Subscribe { subscription, done } => {
                match wire.session.subscribe(
                    subscription.filters.clone(),
                    subscription.properties.clone(),
                ) {
                    Ok(packet_id) => {
                        lane.in_flight.subscribes.insert(
                            packet_id,
                            PendingSubscribe {
                                seq,
                                subscription,
                                done,
                            },
                        );
                    }
                    Err(error) => {
                        if let Some(done) = done {
                            let _ = done.send(Err(error.into()));
                        }
                    }
                }
            }
            Request::Unsubscribe {
                filters,
                properties,
                done,
            } => match wire
                .session
                .unsubscribe(filters.clone(), properties.clone())
            {
                Ok(packet_id) => {
                    lane.in_flight.unsubscribes.insert(
                        packet_id,
                        PendingUnsubscribe {
                            seq,
                            filters,
                            properties,
                            done,
                        },
                    );
                }
                Err(error) => {
                    let _ = done.send(Err(error.into()));
                }
            },
        }
    }
}

/// Encodes every packet the session wants to send, noting where QoS 0 publishes end in the
/// byte stream so that their handles complete once those bytes are written.
fn transmit(lane: &mut Lane, wire: &mut Wire) {
    let version = wire.session.version();
    let now = Instant::now();
    while let Some(packet) = wire.session.poll_transmit(now) {
        let start = wire.encoded;
        let before = wire.outbound.len();
        if let Err(error) = packet.encode(version, &mut wire.outbound) {
            // Requests are checked before they reach the session, so only a bug gets here;
            // the packet is skipped rather than the connection poisoned.
            tracing::error!("cannot encode {:?}: {error}", packet.packet_type());
            if matches!(&packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce) {
                if let Some(publish) = lane.in_flight.qos0_unsent.pop_front() {
                    let _ = publish.done.send(Err(ClientError::Protocol(error)));
                }
            }
            continue;
        }
        wire.encoded += (wire.outbound.len() - before) as u64;
        if matches!(&packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce) {
            if let Some(mut publish) = lane.in_flight.qos0_unsent.pop_front() {
                publish.start = start;
                publish.end = wire.encoded;
                lane.in_flight.qos0_unflushed.push_back(publish);
            }
        }
    }
}
