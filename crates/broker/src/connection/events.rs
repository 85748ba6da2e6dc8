//! The driver's answers to what its session machine reports: CONNECT once authenticated
//! (admission, takeover, attaching the session, CONNACK), PUBLISH (handed to `inbound.rs`),
//! SUBSCRIBE and UNSUBSCRIBE (through the router), AUTH (handed to `authenticate.rs`) and
//! DISCONNECT (which decides the fate of the will and may change the session expiry).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mquictt_protocol::session::{Accept, ServerEvent};
use mquictt_protocol::{Connect, Disconnect, MqttString, Properties, ReasonCode, SubAck, UnsubAck};
use rustc_hash::FxHashSet;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Attached, Deferred, Driver, TAKEOVER_WAIT};
use crate::connect::{self, Checked};
use crate::metrics::Metrics;
use crate::registry::Departure;
use crate::router::{ConnectionSignal, SignalHandle, SubscribeRequest};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Answers the session's events in order; stops early while a back-pressure pause holds,
    /// leaving the rest for when it ends.
    pub(super) async fn handle_events(&mut self) {
        while self.paused.is_none() {
            // PUBLISH events are routed there, in batches (`inbound.rs`).
            let Some(event) = self.route_publishes() else {
                return;
            };
            match event {
                // Boxed, as is AUTH: rare, and their authentication and takeover waits would
                // otherwise be part of every connection's future for its whole life.
                ServerEvent::Connect(connect) => Box::pin(self.on_connect(*connect)).await,
                ServerEvent::Publish(publish) => self.route_one(publish),
                ServerEvent::PublishAcknowledged {
                    packet_id,
                    reason_code,
                    ..
                } => {
                    if !reason_code.is_error() {
                        self.copy_delivered(packet_id);
                    }
                    self.complete_outgoing(packet_id);
                }
                ServerEvent::PublishDropped {
                    publish,
                    size,
                    maximum,
                } => {
                    if let Some(packet_id) = publish.packet_id {
                        self.complete_outgoing(packet_id);
                    }
                    Metrics::add(&self.shared.metrics.messages_oversized, 1);
                    tracing::debug!(topic = %publish.topic, size, maximum, "resumed message too large for the client, dropped");
                }
                ServerEvent::Subscribe(subscribe) => self.on_subscribe(subscribe),
                ServerEvent::Unsubscribe(unsubscribe) => {
                    let Some(attached) = &self.attached else {
                        continue;
                    };
                    let (codes, ticket) = {
                        let mut router = self.shared.router();
                        let codes = router.unsubscribe(&attached.client_id, &unsubscribe.filters);
                        (codes, router.take_recorded())
                    };
                    self.answer_when_durable(
                        ticket,
                        Deferred::UnsubAck(UnsubAck {
                            packet_id: unsubscribe.packet_id,
                            reason_codes: codes,
                            properties: Properties::default(),
                        }),
                    );
                }
                ServerEvent::Auth(auth) => Box::pin(self.on_auth(auth)).await,
                ServerEvent::Disconnected(disconnect) => {
                    // "the Will Message MUST be removed ... on receipt of a DISCONNECT packet
                    // with a Reason Code of 0x00 (Normal disconnection)" [MQTT-3.1.2-10];
                    // any other reason, 0x04 included, leaves it to be published.
                    let departure = if disconnect.reason_code == ReasonCode::Success {
                        Departure::Normal
                    } else {
                        Departure::WithWill
                    };
                    if let (Some(attached), Some(secs)) = (
                        &mut self.attached,
                        disconnect.properties.session_expiry_interval,
                    ) {
                        attached.expiry = connect::capped_expiry(secs, &self.shared.config);
                    }
                    self.client_departure = Some(departure);
                }
            }
        }
    }

    /// Refuses the pending CONNECT with `reason` and counts it.
    pub(super) fn refuse_connect(&mut self, reason: ReasonCode, connect: &Connect) {
        Metrics::add(&self.shared.metrics.connections_refused, 1);
        tracing::debug!(peer = ?self.peer.remote_addr, client = %connect.client_id, %reason, "CONNECT refused");
        let _ = self.session.refuse(reason, Properties::default());
    }

    /// Admits an authenticated CONNECT: takes over an older connection of the same client,
    /// attaches the session and sends CONNACK (with the final Authentication Data of an
    /// enhanced authentication, if any).
    pub(super) async fn complete_connect(
        &mut self,
        connect: Connect,
        checked: Checked,
        username: Option<String>,
        auth_data: Option<Bytes>,
    ) {
        let now = Instant::now();
        let admission = connect::admit(&self.shared, &connect, checked, username.as_deref());
        let mut admitted = match admission {
            Err(reason) => return self.refuse_connect(reason, &connect),
            Ok(admitted) => admitted,
        };
        let auth_method = connect
            .properties
            .authentication_method
            .as_ref()
            .map(|m| m.as_str().to_owned());
        if let Some(method) = &auth_method {
            // "The Server ... MUST send a CONNACK ... containing the same Authentication
            // Method" when enhanced authentication succeeds (4.12).
            admitted.connack_properties.authentication_method = MqttString::new(method).ok();
            admitted.connack_properties.authentication_data = auth_data;
        }
        let client_id = admitted.client_id.clone();
        // Takeover: the old connection closes with 0x8E and hands its session back first.
        let waiting = self.shared.router().begin_takeover(&client_id);
        if let Some(previous) = waiting {
            if tokio::time::timeout(TAKEOVER_WAIT, previous.finished())
                .await
                .is_err()
            {
                tracing::warn!(client = %client_id, "taken-over connection did not finish in time");
            }
        }
        let signal = Arc::new(ConnectionSignal::default());
        let attachment = self.shared.router().attach(
            &client_id,
            connect.clean_start,
            admitted.expiry,
            admitted.will,
            signal.clone(),
            now,
        );
        let persistent = !admitted.expiry.is_zero();
        let delivery = attachment.delivery;
        let inbound_stored: FxHashSet<_> = if persistent {
            delivery
                .session
                .inbound_awaiting_release
                .iter()
                .copied()
                .collect()
        } else {
            FxHashSet::default()
        };
        let resumed = attachment.session_present.then_some(delivery.session);
        let mut properties = admitted.connack_properties;
        self.fit_keep_alive(&connect, &mut properties);
        let accept = Accept {
            properties,
            resumed,
        };
        if let Err(e) = self.session.accept(accept, now) {
            tracing::warn!(client = %client_id, error = %e, "could not accept CONNECT");
        }
        Metrics::add(&self.shared.metrics.connections_total, 1);
        Metrics::add(&self.shared.metrics.connections_current, 1);
        tracing::debug!(client = %client_id, version = %connect.protocol, peer = ?self.peer.remote_addr, transport = self.peer.transport, "client connected");
        // Admitted: it no longer counts against the pending-connection cap.
        self.pending = None;
        self.attached = Some(Attached {
            owner: client_id.clone(),
            client_id,
            username: username.map(String::into_boxed_str),
            auth_method: auth_method.map(String::into_boxed_str),
            connection: attachment.connection,
            version: connect.protocol,
            expiry: admitted.expiry,
            signal: SignalHandle::new(signal),
            persistent,
            exchanges: super::Exchanges::new(delivery.in_flight, inbound_stored),
        });
        self.announce_data_streams();
    }

    fn on_subscribe(&mut self, subscribe: mquictt_protocol::Subscribe) {
        let Some(attached) = &self.attached else {
            return;
        };
        let identifier = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        if identifier.is_some() && !self.shared.config.subscription_identifiers_available {
            // "If the Server does not support Subscription Identifiers ... it is a Protocol
            // Error" for the client to send one; DISCONNECT 0xA1 (3.2.2.3.13).
            let _ = self.session.disconnect(Disconnect::new(
                ReasonCode::SubscriptionIdentifiersNotSupported,
            ));
            return;
        }
        let requests = subscribe
            .filters
            .into_iter()
            .map(|(filter, options)| SubscribeRequest { filter, options })
            .collect();
        let (codes, ticket) = {
            let mut router = self.shared.router();
            let codes = router.subscribe(
                &attached.client_id,
                attached.username.as_deref(),
                requests,
                identifier,
                Instant::now(),
            );
            (codes, router.take_recorded())
        };
        self.answer_when_durable(
            ticket,
            Deferred::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                reason_codes: codes,
                properties: Properties::default(),
            }),
        );
    }
}
