//! The peer's Maximum Packet Size applied to what we send (3.1.2.11.4, 3.2.2.3.6). An
//! acknowledgement or DISCONNECT that is too large loses its Reason String and then its User
//! Properties, as the spec allows for every packet that carries them ([MQTT-3.4.2-2],
//! [MQTT-3.4.2-3] and their siblings); an application message (PUBLISH) is never altered: it
//! is refused instead, since the peer "MUST NOT" receive it whole [MQTT-3.1.2-27],
//! [MQTT-3.2.2-15].

use crate::packet::Packet;
use crate::properties::Properties;
use crate::types::ProtocolVersion;

/// Sizes packets with the encoder's own arithmetic.
pub(crate) fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    estimate::packet_len(packet, version)
}

/// Returns the packet if it fits `maximum` (after dropping diagnostics where allowed), or
/// the size it would have had.
pub(crate) fn fit_to_maximum(
    mut packet: Packet,
    version: ProtocolVersion,
    maximum: Option<u32>,
) -> Result<Packet, usize> {
    let Some(maximum) = maximum else {
        return Ok(packet);
    };
    let fits = |packet: &Packet| {
        let size = encoded_len(packet, version);
        if u32::try_from(size).is_ok_and(|size| size <= maximum) {
            Ok(())
        } else {
            Err(size)
        }
    };
    let size = match fits(&packet) {
        Ok(()) => return Ok(packet),
        Err(size) => size,
    };
    if matches!(packet, Packet::Publish(_) | Packet::Connect(_)) {
        return Err(size);
    }
    let Some(properties) = diagnostics(&mut packet) else {
        return Err(size);
    };
    properties.reason_string = None;
    if fits(&packet).is_ok() {
        return Ok(packet);
    }
    if let Some(properties) = diagnostics(&mut packet) {
        properties.user_properties.clear();
    }
    fits(&packet).map(|()| packet)
}

/// The properties of a packet whose Reason String and User Properties are diagnostics that
/// may be dropped.
fn diagnostics(packet: &mut Packet) -> Option<&mut Properties> {
    match packet {
        Packet::ConnAck(p) => Some(&mut p.properties),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            Some(&mut p.properties)
        }
        Packet::SubAck(p) => Some(&mut p.properties),
        Packet::UnsubAck(p) => Some(&mut p.properties),
        Packet::Disconnect(p) => Some(&mut p.properties),
        Packet::Auth(p) => Some(&mut p.properties),
        Packet::Connect(_)
        | Packet::Publish(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingReq
        | Packet::PingResp => None,
    }
}

/// Encoded sizes computed field by field from the wire format (2.1, 2.2.2, 3.x).
mod estimate {
    use crate::packet::{Packet, PubAck};
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::types::{ProtocolVersion, QoS};

    pub(super) fn packet_len(packet: &Packet, version: ProtocolVersion) -> usize {
        let remaining = remaining_len(packet, version);
        1 + varint_len(remaining) + remaining
    }

    fn remaining_len(packet: &Packet, version: ProtocolVersion) -> usize {
        let v5 = version.is_v5();
        let props = |p: &Properties| if v5 { properties_block(p) } else { 0 };
        match packet {
            Packet::Connect(c) => {
                let name = 2 + c.protocol.protocol_name().len();
                let will = c.will.as_ref().map_or(0, |w| {
                    (if c.protocol.is_v5() {
                        properties_block(&w.properties)
                    } else {
                        0
                    }) + 2
                        + w.topic.as_str().len()
                        + 2
                        + w.payload.len()
                });
                let connect_props = if c.protocol.is_v5() {
                    properties_block(&c.properties)
                } else {
                    0
                };
                name + 4
                    + connect_props
                    + 2
                    + c.client_id.len()
                    + will
                    + c.username.as_ref().map_or(0, |u| 2 + u.len())
                    + c.password.as_ref().map_or(0, |p| 2 + p.len())
            }
            Packet::ConnAck(c) => 2 + props(&c.properties),
            Packet::Publish(p) => {
                2 + p.topic.as_str().len()
                    + if p.qos == QoS::AtMostOnce { 0 } else { 2 }
                    + props(&p.properties)
                    + p.payload.len()
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                2 + if v5 { ack_tail(a) } else { 0 }
            }
            Packet::Subscribe(s) => {
                2 + props(&s.properties)
                    + s.filters
                        .iter()
                        .map(|(f, _)| 2 + f.as_str().len() + 1)
                        .sum::<usize>()
            }
            Packet::SubAck(s) => 2 + props(&s.properties) + s.reason_codes.len(),
            Packet::Unsubscribe(u) => {
                2 + props(&u.properties)
                    + u.filters
                        .iter()
                        .map(|f| 2 + f.as_str().len())
                        .sum::<usize>()
            }
            Packet::UnsubAck(u) => {
                2 + if v5 {
                    properties_block(&u.properties) + u.reason_codes.len()
                } else {
                    0
                }
            }
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(d) => {
                if v5 {
                    reason_tail(d.reason_code, &d.properties)
                } else {
                    0
                }
            }
            Packet::Auth(a) => reason_tail(a.reason_code, &a.properties),
        }
    }

    /// The reason code and properties of PUBACK-like packets, both omitted when the code is
    /// Success and there are no properties (3.4.2.1).
    fn ack_tail(ack: &PubAck) -> usize {
        reason_tail(ack.reason_code, &ack.properties)
    }

    fn reason_tail(code: ReasonCode, properties: &Properties) -> usize {
        if properties.is_empty() {
            usize::from(code != ReasonCode::Success)
        } else {
            1 + properties_block(properties)
        }
    }

    /// Property Length followed by the properties (2.2.2).
    fn properties_block(p: &Properties) -> usize {
        let len = properties_len(p);
        varint_len(len) + len
    }

    fn properties_len(p: &Properties) -> usize {
        let string = |s: Option<usize>| s.map_or(0, |len| 1 + 2 + len);
        let fixed = |present: bool, width: usize| if present { 1 + width } else { 0 };
        fixed(p.payload_format_indicator.is_some(), 1)
            + fixed(p.message_expiry_interval.is_some(), 4)
            + string(p.content_type.as_ref().map(|s| s.len()))
            + string(p.response_topic.as_ref().map(|s| s.len()))
            + string(p.correlation_data.as_ref().map(|s| s.len()))
            + p.subscription_identifiers
                .iter()
                .map(|&id| 1 + varint_len(usize::try_from(id).unwrap_or(usize::MAX)))
                .sum::<usize>()
            + fixed(p.session_expiry_interval.is_some(), 4)
            + string(p.assigned_client_identifier.as_ref().map(|s| s.len()))
            + fixed(p.server_keep_alive.is_some(), 2)
            + string(p.authentication_method.as_ref().map(|s| s.len()))
            + string(p.authentication_data.as_ref().map(|s| s.len()))
            + fixed(p.request_problem_information.is_some(), 1)
            + fixed(p.will_delay_interval.is_some(), 4)
            + fixed(p.request_response_information.is_some(), 1)
            + string(p.response_information.as_ref().map(|s| s.len()))
            + string(p.server_reference.as_ref().map(|s| s.len()))
            + string(p.reason_string.as_ref().map(|s| s.len()))
            + fixed(p.receive_maximum.is_some(), 2)
            + fixed(p.topic_alias_maximum.is_some(), 2)
            + fixed(p.topic_alias.is_some(), 2)
            + fixed(p.maximum_qos.is_some(), 1)
            + fixed(p.retain_available.is_some(), 1)
            + p.user_properties
                .iter()
                .map(|(k, v)| 1 + 2 + k.len() + 2 + v.len())
                .sum::<usize>()
            + fixed(p.maximum_packet_size.is_some(), 4)
            + fixed(p.wildcard_subscription_available.is_some(), 1)
            + fixed(p.subscription_identifier_available.is_some(), 1)
            + fixed(p.shared_subscription_available.is_some(), 1)
    }

    /// Bytes of a Variable Byte Integer (1.5.5).
    fn varint_len(value: usize) -> usize {
        match value {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            _ => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{PubAck, Publish};
    use crate::reason::ReasonCode;
    use crate::string::MqttString;
    use crate::topic::TopicName;
    use crate::types::{PacketId, QoS};
    use bytes::Bytes;

    #[test]
    fn acks_lose_diagnostics_before_being_dropped() {
        let id = PacketId::new(1).unwrap();
        let ack = PubAck {
            packet_id: id,
            reason_code: ReasonCode::QuotaExceeded,
            properties: Properties {
                reason_string: Some(MqttString::new("x".repeat(100)).unwrap()),
                user_properties: vec![(MqttString::from_static("k"), MqttString::from_static("v"))],
                ..Properties::default()
            },
        };
        let fitted = fit_to_maximum(Packet::PubAck(ack), ProtocolVersion::V5, Some(20)).unwrap();
        let Packet::PubAck(fitted) = fitted else {
            panic!("still a PUBACK");
        };
        assert_eq!(fitted.properties.reason_string, None);
        assert_eq!(fitted.properties.user_properties.len(), 1);
        assert_eq!(fitted.reason_code, ReasonCode::QuotaExceeded);
    }

    #[test]
    fn publish_is_refused_not_trimmed() {
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![0; 100]),
        };
        // 1 fixed header + 1 length + 3 topic + 1 property length + 100 payload.
        let size = encoded_len(&Packet::Publish(publish.clone()), ProtocolVersion::V5);
        assert_eq!(size, 106);
        assert_eq!(
            fit_to_maximum(
                Packet::Publish(publish.clone()),
                ProtocolVersion::V5,
                Some(105)
            ),
            Err(106)
        );
        assert!(fit_to_maximum(Packet::Publish(publish), ProtocolVersion::V5, Some(106)).is_ok());
    }
}
