//! The client machine of a data stream in EMQX-compatible multi-stream MQTT over QUIC: a
//! machine that starts already connected, with the protocol version, limits, Maximum QoS and
//! Retain Available that its control stream's CONNECT and CONNACK settled, but with its own
//! packet identifiers, inflight windows and topic aliases (every stream is its own exchange
//! space). CONNECT, PINGREQ, DISCONNECT and AUTH belong on the control stream: this machine
//! never sends them, and CONNACK, PINGRESP, DISCONNECT or AUTH from the server on a data
//! stream is a protocol error that closes only the data stream. This file owns only what
//! differs from a control stream; the rest is `client.rs`.

use std::collections::VecDeque;
use std::time::Instant;

use crate::packet::Packet;

use super::super::config::ClientConfig;
use super::super::delivery::{Delivery, Limits};
use super::super::error::SessionError;
use super::super::events::ConnectionInfo;
use super::super::keep_alive::ClientKeepAlive;
use super::super::Role;
use super::{ClientSession, ClientState};

/// What every data stream of a connection inherits from its accepted control stream. Take it
/// with [`ClientSession::data_stream_template`] once CONNACK accepted the connection, and
/// make one machine per data stream with [`ClientSession::for_data_stream`].
#[derive(Debug, Clone)]
pub struct ClientStreamTemplate {
    config: ClientConfig,
    connection: ConnectionInfo,
    limits: Limits,
}

impl ClientStreamTemplate {
    /// What the control stream's CONNACK established.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }
}

impl ClientSession {
    /// What data streams inherit from this control stream; `None` until CONNACK accepted the
    /// connection, after it closed, and on a data stream itself.
    pub fn data_stream_template(&self) -> Option<ClientStreamTemplate> {
        if self.data_stream || self.state != ClientState::Connected {
            return None;
        }
        Some(ClientStreamTemplate {
            config: self.config.clone(),
            connection: self.connection.clone()?,
            limits: self.limits.clone()?,
        })
    }

    /// A machine for one data stream: connected from the start, without a CONNECT of its own
    /// and without keep alive (PINGREQ travels on the control stream, which carries the
    /// connection's liveness). Its session state is its own: take it with `take_state` when
    /// the stream ends; the server never keeps a data stream's state, so it is not resumed.
    pub fn for_data_stream(template: &ClientStreamTemplate, now: Instant) -> Self {
        let mut delivery = Delivery::new(template.config.connect.protocol, Role::Client);
        delivery.start(&template.limits);
        ClientSession {
            config: template.config.clone(),
            state: ClientState::Connected,
            delivery,
            // A Keep Alive of 0 switches the timer off: no PINGREQ on a data stream.
            keep_alive: ClientKeepAlive::new(0, None, now),
            resumed: None,
            connection: Some(template.connection.clone()),
            limits: Some(template.limits.clone()),
            data_stream: true,
            pending_subscribes: Default::default(),
            pending_unsubscribes: Default::default(),
            events: VecDeque::new(),
            error: None,
        }
    }

    /// Whether this machine serves a data stream.
    pub fn is_data_stream(&self) -> bool {
        self.data_stream
    }
}

/// Refuses the packets that only the control stream may carry.
pub(super) fn check_data_stream_packet(packet: &Packet) -> Result<(), SessionError> {
    match packet {
        Packet::ConnAck(_) | Packet::PingResp | Packet::Disconnect(_) | Packet::Auth(_) => Err(
            SessionError::ControlPacketOnDataStream(packet.packet_type()),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::packet::{Auth, ConnAck, Connect, Disconnect, PubAck, Publish, SubAck};
    use crate::properties::{Properties, PropertySet};
    use crate::reason::ReasonCode;
    use crate::session::error::RequestError;
    use crate::session::events::ClientEvent;
    use crate::string::MqttString;
    use crate::topic::{TopicFilter, TopicName};
    use crate::types::{PacketId, ProtocolVersion, QoS, SubscriptionOptions};

    fn control(now: Instant, connack: PropertySet) -> ClientSession {
        let connect = Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: MqttString::from_static("c"),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        let mut control = ClientSession::new(ClientConfig::new(connect), None, now);
        assert!(matches!(
            control.poll_transmit(now),
            Some(Packet::Connect(_))
        ));
        assert!(control.data_stream_template().is_none(), "no CONNACK yet");
        control
            .handle_packet(
                Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason_code: ReasonCode::Success,
                    properties: Properties::from(connack),
                }),
                now,
            )
            .unwrap();
        control
    }

    fn publish(qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from_static(b"x"),
        }
    }

    fn auth() -> Auth {
        Auth {
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        }
    }

    fn data(control: &ClientSession, now: Instant) -> ClientSession {
        ClientSession::for_data_stream(&control.data_stream_template().unwrap(), now)
    }

    #[test]
    fn starts_connected_without_connect_or_keep_alive() {
        let now = Instant::now();
        let control = control(now, PropertySet::default());
        let mut data = data(&control, now);
        assert!(data.is_connected() && data.is_data_stream());
        assert!(!control.is_data_stream());
        assert_eq!(data.connection(), control.connection());
        assert_eq!(data.poll_transmit(now), None, "no CONNECT on a data stream");
        assert_eq!(
            data.poll_timeout(),
            None,
            "keep alive runs on the control stream"
        );
        data.handle_timeout(now + Duration::from_secs(3600))
            .unwrap();
        assert_eq!(data.poll_transmit(now), None, "never a PINGREQ");
        assert!(data.data_stream_template().is_none());
    }

    #[test]
    fn packet_ids_are_per_stream() {
        let now = Instant::now();
        let mut control = control(now, PropertySet::default());
        let mut first = data(&control, now);
        let mut second = data(&control, now);
        let on_control = control.publish(publish(QoS::AtLeastOnce)).unwrap();
        let a = first.publish(publish(QoS::AtLeastOnce)).unwrap();
        let b = second.publish(publish(QoS::ExactlyOnce)).unwrap();
        assert_eq!(a, PacketId::new(1));
        assert_eq!(a, b, "each stream allocates from its own identifier space");
        assert_eq!(a, on_control);
        // The acknowledgement completes the exchange of its own stream only.
        let id = a.unwrap();
        first.poll_transmit(now);
        first
            .handle_packet(Packet::PubAck(PubAck::success(id)), now)
            .unwrap();
        assert!(matches!(
            first.poll_event(),
            Some(ClientEvent::PublishAcknowledged { packet_id, .. }) if packet_id == id
        ));
        assert_eq!(first.in_flight(), 0);
        assert_eq!(second.in_flight(), 1);
        assert_eq!(control.in_flight(), 1);
    }

    #[test]
    fn inherits_the_limits_of_the_connack() {
        let now = Instant::now();
        let control = control(
            now,
            PropertySet {
                maximum_qos: Some(1),
                receive_maximum: Some(2),
                retain_available: Some(false),
                ..PropertySet::default()
            },
        );
        let mut data = data(&control, now);
        assert_eq!(
            data.send_quota(),
            2,
            "the server's Receive Maximum, per stream"
        );
        assert!(matches!(
            data.publish(publish(QoS::ExactlyOnce)),
            Err(RequestError::QoSNotSupported { .. })
        ));
        let mut retained = publish(QoS::AtMostOnce);
        retained.retain = true;
        assert_eq!(
            data.publish(retained),
            Err(RequestError::RetainNotSupported)
        );
    }

    #[test]
    fn subscribes_on_its_own_stream() {
        let now = Instant::now();
        let control = control(now, PropertySet::default());
        let mut data = data(&control, now);
        let filter = TopicFilter::new("a/#").unwrap();
        let id = data
            .subscribe(
                vec![(filter, SubscriptionOptions::with_qos(QoS::AtLeastOnce))],
                Properties::default(),
            )
            .unwrap();
        assert!(matches!(data.poll_transmit(now), Some(Packet::Subscribe(s)) if s.packet_id == id));
        data.handle_packet(
            Packet::SubAck(SubAck {
                packet_id: id,
                reason_codes: vec![ReasonCode::GrantedQoS1],
                properties: Properties::default(),
            }),
            now,
        )
        .unwrap();
        assert!(matches!(data.poll_event(), Some(ClientEvent::SubAck(_))));
    }

    #[test]
    fn control_packets_close_only_the_data_stream() {
        let now = Instant::now();
        let control = control(now, PropertySet::default());
        for packet in [
            Packet::PingResp,
            Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason_code: ReasonCode::Success,
                properties: Properties::default(),
            }),
            Packet::Auth(auth()),
        ] {
            let mut data = data(&control, now);
            let err = data.handle_packet(packet, now).unwrap_err();
            assert!(matches!(err, SessionError::ControlPacketOnDataStream(_)));
            assert!(data.is_closed());
            assert_eq!(
                data.poll_transmit(now),
                None,
                "no DISCONNECT on a data stream"
            );
        }
        assert!(control.is_connected());
    }

    #[test]
    fn disconnect_and_auth_stay_on_the_control_stream() {
        let now = Instant::now();
        let control = control(now, PropertySet::default());
        let mut data = data(&control, now);
        assert_eq!(
            data.auth(auth()),
            Err(RequestError::ControlStreamOnly(
                crate::packet::PacketType::Auth
            ))
        );
        data.disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
            .unwrap();
        assert!(data.is_closed());
        assert_eq!(
            data.poll_transmit(now),
            None,
            "closing a data stream sends nothing"
        );
    }
}
