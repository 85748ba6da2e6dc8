//! The peer's Maximum Packet Size applied to what we send (3.1.2.11.4, 3.2.2.3.6). An
//! acknowledgement or DISCONNECT that is too large loses its Reason String and then its User
//! Properties, as the spec allows for every packet that carries them ([MQTT-3.4.2-2],
//! [MQTT-3.4.2-3] and their siblings); an application message (PUBLISH) is never altered: it
//! is refused instead, since the peer "MUST NOT" receive it whole [MQTT-3.1.2-27],
//! [MQTT-3.2.2-15].

use crate::packet::Packet;
use crate::properties::Properties;
use crate::types::ProtocolVersion;

/// The size the codec will give the packet on the wire, fixed header included.
pub(crate) fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    packet.encoded_len(version)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{PubAck, Publish};
    use crate::reason::ReasonCode;
    use crate::string::MqttString;
    use crate::topic::TopicName;
    use crate::types::{PacketId, QoS};
    use crate::PropertySet;
    use bytes::Bytes;

    #[test]
    fn acks_lose_diagnostics_before_being_dropped() {
        let id = PacketId::new(1).unwrap();
        let ack = PubAck {
            packet_id: id,
            reason_code: ReasonCode::QuotaExceeded,
            properties: Properties::from(PropertySet {
                reason_string: Some(MqttString::new("x".repeat(100)).unwrap()),
                user_properties: vec![(MqttString::from_static("k"), MqttString::from_static("v"))],
                ..PropertySet::default()
            }),
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
