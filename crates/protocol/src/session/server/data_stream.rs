//! The server machine of a data stream in EMQX-compatible multi-stream MQTT over QUIC: a
//! machine that starts already connected, with the protocol version, limits, Maximum QoS and
//! Retain Available its control stream's CONNECT and CONNACK settled, but with its own packet
//! identifiers, inflight windows and topic aliases (every stream is its own exchange space).
//! CONNECT, PINGREQ, DISCONNECT and AUTH belong on the control stream; on a data stream they
//! are a protocol error that closes only that stream, and the machine never sends DISCONNECT
//! there. This file owns only what differs from a control stream; the rest is `server.rs`.

use std::sync::Arc;
use std::time::Instant;

use crate::packet::Packet;
use crate::types::{ProtocolVersion, QoS};

use super::super::config::ServerConfig;
use super::super::delivery::{Delivery, Limits};
use super::super::error::SessionError;
use super::super::Role;
use super::{ConnectTerms, ServerSession, ServerState};

/// What every data stream of a connection inherits from its accepted control stream. Take it
/// with [`ServerSession::data_stream_template`] once the CONNECT is accepted, and make one
/// machine per data stream with [`ServerSession::for_data_stream`].
#[derive(Debug, Clone)]
pub struct DataStreamTemplate {
    config: Arc<ServerConfig>,
    connect: ConnectTerms,
    limits: Limits,
    maximum_qos: QoS,
    retain_available: bool,
}

impl DataStreamTemplate {
    /// The protocol version of the control stream's CONNECT.
    pub fn version(&self) -> ProtocolVersion {
        self.connect.protocol
    }
}

impl ServerSession {
    /// What data streams inherit from this control stream; `None` until its CONNECT is
    /// accepted (data-stream bytes wait until then) and on a data stream itself.
    pub fn data_stream_template(&self) -> Option<DataStreamTemplate> {
        if self.data_stream || self.state != ServerState::Connected {
            return None;
        }
        Some(DataStreamTemplate {
            config: self.config.clone(),
            connect: self.connect?,
            limits: self.limits.clone()?,
            maximum_qos: self.maximum_qos,
            retain_available: self.retain_available,
        })
    }

    /// A machine for one data stream: connected from the start, without a CONNACK of its own
    /// and without keep alive (PINGREQ travels on the control stream, which carries the
    /// connection's liveness).
    pub fn for_data_stream(template: &DataStreamTemplate, now: Instant) -> Self {
        let mut session = ServerSession::new(template.config.clone(), now);
        let mut delivery = Delivery::new(template.connect.protocol, Role::Server);
        delivery.start(&template.limits);
        session.delivery = delivery;
        session.connect = Some(template.connect);
        session.limits = Some(template.limits.clone());
        session.maximum_qos = template.maximum_qos;
        session.retain_available = template.retain_available;
        session.state = ServerState::Connected;
        session.data_stream = true;
        session
    }

    /// Whether this machine serves a data stream.
    pub fn is_data_stream(&self) -> bool {
        self.data_stream
    }

    /// Refuses the packets that only the control stream may carry.
    pub(super) fn check_data_stream_packet(&self, packet: &Packet) -> Result<(), SessionError> {
        match packet {
            Packet::Connect(_) | Packet::PingReq | Packet::Disconnect(_) | Packet::Auth(_) => Err(
                SessionError::ControlPacketOnDataStream(packet.packet_type()),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::packet::{Connect, PubAck, Publish};
    use crate::properties::{Properties, PropertySet};
    use crate::session::config::Accept;
    use crate::session::events::ServerEvent;
    use crate::string::MqttString;
    use crate::topic::TopicName;
    use crate::types::{PacketId, ProtocolVersion};

    fn connect() -> Connect {
        Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: MqttString::from_static("c"),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    fn accepted_control(now: Instant) -> ServerSession {
        let mut control = ServerSession::new(ServerConfig::default(), now);
        control
            .handle_packet(Packet::Connect(Box::new(connect())), now)
            .unwrap();
        assert!(control.data_stream_template().is_none());
        let accept = Accept {
            properties: Properties::from(PropertySet {
                maximum_qos: Some(1),
                ..PropertySet::default()
            }),
            resumed: None,
        };
        control.accept(accept, now).unwrap();
        control
    }

    fn publish(qos: QoS, id: u16) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: PacketId::new(id),
            properties: Properties::default(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn starts_connected_without_connack_or_keep_alive() {
        let now = Instant::now();
        let control = accepted_control(now);
        let template = control.data_stream_template().unwrap();
        let mut data = ServerSession::for_data_stream(&template, now);
        assert!(data.is_connected() && data.is_data_stream());
        assert_eq!(data.version(), Some(ProtocolVersion::V5));
        assert_eq!(data.poll_transmit(now), None, "no CONNACK on a data stream");
        assert_eq!(
            data.poll_timeout(),
            None,
            "keep alive runs on the control stream"
        );
        assert!(data.data_stream_template().is_none());
    }

    #[test]
    fn packet_ids_are_per_stream() {
        let now = Instant::now();
        let control = accepted_control(now);
        let template = control.data_stream_template().unwrap();
        let mut first = ServerSession::for_data_stream(&template, now);
        let mut second = ServerSession::for_data_stream(&template, now);
        let a = first.publish(publish(QoS::AtLeastOnce, 0)).unwrap();
        let b = second.publish(publish(QoS::AtLeastOnce, 0)).unwrap();
        assert_eq!(a, b, "each stream allocates from its own identifier space");
        // The acknowledgement completes the exchange of its own stream only.
        let id = a.unwrap();
        first
            .handle_packet(Packet::PubAck(PubAck::success(id)), now)
            .unwrap();
        assert!(matches!(
            first.poll_event(),
            Some(ServerEvent::PublishAcknowledged { .. })
        ));
        assert_eq!(second.in_flight(), 1);
    }

    #[test]
    fn inherits_the_maximum_qos_of_the_connack() {
        let now = Instant::now();
        let control = accepted_control(now);
        let template = control.data_stream_template().unwrap();
        let mut data = ServerSession::for_data_stream(&template, now);
        let err = data
            .handle_packet(Packet::Publish(publish(QoS::ExactlyOnce, 1)), now)
            .unwrap_err();
        assert!(matches!(err, SessionError::QoSNotSupported { .. }));
        // Closed without a DISCONNECT: that belongs on the control stream.
        assert!(data.is_closed());
        assert_eq!(data.poll_transmit(now), None);
    }

    #[test]
    fn control_packets_close_only_the_data_stream() {
        let now = Instant::now();
        let control = accepted_control(now);
        let template = control.data_stream_template().unwrap();
        for packet in [
            Packet::PingReq,
            Packet::Disconnect(Default::default()),
            Packet::Connect(Box::new(connect())),
        ] {
            let mut data = ServerSession::for_data_stream(&template, now);
            let err = data.handle_packet(packet, now).unwrap_err();
            assert!(matches!(err, SessionError::ControlPacketOnDataStream(_)));
            assert!(data.is_closed());
            assert_eq!(data.poll_transmit(now), None);
        }
        assert!(control.is_connected());
    }
}
