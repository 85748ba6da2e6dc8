//! The opening of a server connection: the CONNECT the client sent, and the application's
//! answer to it, accept (CONNACK 0x00, limits applied, stored session resumed, early packets
//! processed) or refuse (CONNACK with a failure code, early packets dropped).

use std::time::Instant;

use crate::packet::{ConnAck, Connect, Packet};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::types::{ProtocolVersion, QoS};

use super::super::config::Accept;
use super::super::delivery::Limits;
use super::super::error::RequestError;
use super::super::events::ServerEvent;
use super::super::keep_alive::ServerKeepAlive;
use super::{ServerSession, ServerState};

/// What the machine needs of the client's CONNECT once it has read it: the limits of the
/// answer and the rules for later packets. Kept instead of the CONNECT, whose strings, will
/// and properties the application receives in [`ServerEvent::Connect`]: a connection that
/// stays open for days should not hold a copy of its first packet (about 0.25 KiB, more with
/// a will or user properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectTerms {
    pub(super) protocol: ProtocolVersion,
    clean_start: bool,
    keep_alive: u16,
    empty_client_id: bool,
    receive_maximum: Option<u16>,
    topic_alias_maximum: Option<u16>,
    maximum_packet_size: Option<u32>,
    pub(super) session_expiry_interval: Option<u32>,
    pub(super) authentication: bool,
}

impl ConnectTerms {
    fn of(connect: &Connect) -> Self {
        let properties = &connect.properties;
        Self {
            protocol: connect.protocol,
            clean_start: connect.clean_start,
            keep_alive: connect.keep_alive,
            empty_client_id: connect.client_id.is_empty(),
            receive_maximum: properties.receive_maximum,
            topic_alias_maximum: properties.topic_alias_maximum,
            maximum_packet_size: properties.maximum_packet_size,
            session_expiry_interval: properties.session_expiry_interval,
            authentication: properties.authentication_method.is_some(),
        }
    }
}

impl ServerSession {
    /// Accepts the pending CONNECT: sends CONNACK 0x00 [MQTT-3.1.4-5], applies the limits both
    /// sides announced, resumes the stored session, and processes what the client sent in the
    /// meantime. If that already breaks the protocol the machine is closed on return (see
    /// `is_closed` and `error`).
    pub fn accept(&mut self, accept: Accept, now: Instant) -> Result<(), RequestError> {
        if self.state != ServerState::AwaitingAnswer {
            return Err(RequestError::NoPendingConnect);
        }
        let Some(connect) = self.connect else {
            return Err(RequestError::NoPendingConnect);
        };
        let v5 = connect.protocol.is_v5();
        // "If the Client connects using a zero length Client Identifier, the Server MUST
        // respond with a CONNACK containing an Assigned Client Identifier" [MQTT-3.2.2-16].
        if v5 && connect.empty_client_id && accept.properties.assigned_client_identifier.is_none() {
            return Err(RequestError::MissingAssignedClientId);
        }
        let properties = if v5 {
            accept.properties
        } else {
            Properties::default()
        };
        let limits = Limits {
            send_window: if v5 {
                connect.receive_maximum.unwrap_or(u16::MAX)
            } else {
                self.config.send_window_v3
            },
            max_waiting: self.config.max_queued_publishes,
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
            inbound_alias_maximum: properties.topic_alias_maximum.unwrap_or(0),
            peer_alias_maximum: connect.topic_alias_maximum.unwrap_or(0),
            outbound_alias_budget: self.config.outbound_topic_aliases,
            peer_maximum_packet_size: connect.maximum_packet_size,
        };
        // "If the Server does not send the Server Keep Alive, the Server MUST use the Keep Alive
        // value set by the Client on CONNECT" [MQTT-3.2.2-22].
        let keep_alive = properties.server_keep_alive.unwrap_or(connect.keep_alive);
        let resumed = accept.resumed.filter(|_| !connect.clean_start);
        self.maximum_qos = properties
            .maximum_qos
            .and_then(QoS::from_u8)
            .unwrap_or(QoS::ExactlyOnce);
        self.retain_available = properties.retain_available.unwrap_or(true);
        self.delivery.start(&limits);
        self.limits = Some(limits);
        self.delivery.answer(Packet::ConnAck(ConnAck {
            session_present: resumed.is_some(),
            reason_code: ReasonCode::Success,
            properties,
        }));
        self.keep_alive = Some(ServerKeepAlive::new(keep_alive, now));
        self.state = ServerState::Connected;
        if let Some(resumed) = resumed {
            let dropped = self.delivery.restore(resumed);
            self.report_dropped(dropped);
        }
        for packet in std::mem::take(&mut self.early) {
            if self.state == ServerState::Closed {
                break;
            }
            if let Err(error) = self.process(packet) {
                self.fail(error);
            }
        }
        Ok(())
    }

    /// Refuses the pending CONNECT with a CONNACK carrying `reason_code` (0x80 or more) and
    /// closes [MQTT-3.2.2-7]. Packets the client sent after CONNECT are dropped unprocessed
    /// [MQTT-3.1.4-6].
    pub fn refuse(
        &mut self,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> Result<(), RequestError> {
        if self.state != ServerState::AwaitingAnswer {
            return Err(RequestError::NoPendingConnect);
        }
        if !reason_code.is_error() {
            return Err(RequestError::NotARefusal(reason_code));
        }
        let maximum = self.connect.and_then(|c| c.maximum_packet_size);
        self.delivery.set_peer_maximum_packet_size(maximum);
        let properties = if self.delivery.version().is_v5() {
            properties
        } else {
            Properties::default()
        };
        // "If a Server sends a CONNACK packet containing a non-zero Reason Code it MUST set
        // Session Present to 0" [MQTT-3.2.2-6].
        self.delivery.answer(Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code,
            properties,
        }));
        self.delivery.stop();
        self.early.clear();
        self.state = ServerState::Closed;
        Ok(())
    }

    pub(super) fn on_connect(&mut self, connect: Box<Connect>) {
        self.delivery.set_version(connect.protocol);
        self.connect = Some(ConnectTerms::of(&connect));
        self.state = ServerState::AwaitingAnswer;
        self.events.push_back(ServerEvent::Connect(connect));
    }
}
