//! The client's handling of CONNACK: a refusal closes; an acceptance sets the limits the
//! server announced, the Keep Alive it imposes, and resumes or discards the stored session
//! depending on Session Present.

use std::time::Instant;

use crate::packet::{ConnAck, Publish};
use crate::types::QoS;

use super::super::delivery::Limits;
use super::super::error::SessionError;
use super::super::events::{ClientEvent, ConnectionInfo};
use super::super::state::OutboundMessage;
use super::{ClientSession, ClientState};

impl ClientSession {
    pub(super) fn on_connack(
        &mut self,
        connack: ConnAck,
        now: Instant,
    ) -> Result<(), SessionError> {
        if connack.reason_code.is_error() {
            // "If a Server sends a CONNACK packet containing a Reason code of 0x80 or greater it
            // MUST then close the Network Connection" [MQTT-3.2.2-7].
            self.delivery.stop();
            self.state = ClientState::Closed;
            self.events
                .push_back(ClientEvent::ConnectionRefused(connack));
            return Ok(());
        }
        if connack.session_present && self.resumed.is_none() {
            return Err(SessionError::UnexpectedSessionPresent);
        }
        let v5 = self.version().is_v5();
        let props = &connack.properties;
        let connect_props = &self.config.connect.properties;
        let limits = Limits {
            send_window: if v5 {
                props.receive_maximum.unwrap_or(u16::MAX)
            } else {
                self.config.send_window_v3
            },
            max_waiting: self.config.max_queued_publishes,
            receive_maximum: connect_props.receive_maximum.unwrap_or(u16::MAX),
            inbound_alias_maximum: connect_props.topic_alias_maximum.unwrap_or(0),
            peer_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
            outbound_alias_budget: self.config.outbound_topic_aliases,
            peer_maximum_packet_size: props.maximum_packet_size,
        };
        self.delivery.start(&limits);
        self.limits = Some(limits.clone());
        if let Some(server_keep_alive) = props.server_keep_alive.filter(|_| v5) {
            self.keep_alive.set_keep_alive(server_keep_alive);
        }
        self.keep_alive.on_sent(now);
        let info = ConnectionInfo {
            session_present: connack.session_present,
            assigned_client_id: props.assigned_client_identifier.clone().filter(|_| v5),
            keep_alive: self.keep_alive.keep_alive(),
            receive_maximum: limits.send_window,
            maximum_qos: props
                .maximum_qos
                .filter(|_| v5)
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: !v5 || props.retain_available.unwrap_or(true),
            topic_alias_maximum: if v5 { limits.peer_alias_maximum } else { 0 },
            maximum_packet_size: limits.peer_maximum_packet_size.filter(|_| v5),
            properties: connack.properties,
        };
        self.state = ClientState::Connected;
        self.connection = Some(info.clone());
        self.events.push_back(ClientEvent::Connected(info));
        let Some(resumed) = self.resumed.take() else {
            return Ok(());
        };
        if connack.session_present {
            let dropped = self.delivery.restore(resumed);
            self.report_dropped(dropped);
        } else {
            // "If the Client does have Session State and receives Session Present set to 0 it
            // MUST discard its Session State if it continues with the Network Connection"
            // [MQTT-3.2.2-5].
            let lost: Vec<Publish> = resumed
                .outbound
                .into_iter()
                .filter_map(|message| match message {
                    OutboundMessage::Publish(publish) => Some(*publish),
                    OutboundMessage::Release(_) => None,
                })
                .collect();
            if !lost.is_empty() {
                self.events.push_back(ClientEvent::SessionDiscarded(lost));
            }
        }
        Ok(())
    }
}
