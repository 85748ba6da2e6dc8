//! SUBSCRIBE and UNSUBSCRIBE (3.8, 3.10) on the wire: topic filters, the subscription options
//! byte of each SUBSCRIBE filter, and the MQTT 5 properties.

use super::primitives::{prefixed_len, put_string, Output, Reader};
use super::properties::{encode_properties, properties_block_len, properties_if_v5};
use super::property_rules::PropertyContext;
use super::read_packet_id;
use crate::error::ProtocolError;
use crate::packet::{PacketType, Subscribe, Unsubscribe};
use crate::topic::TopicFilter;
use crate::types::{ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};

const NO_LOCAL: u8 = 0b0000_0100;
const RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING_SHIFT: u8 = 4;

fn read_filter(r: &mut Reader) -> Result<TopicFilter, ProtocolError> {
    // [MQTT-3.8.3-1] [MQTT-3.10.3-1]: Topic Filters are UTF-8 Encoded Strings.
    let text = r.read_string("topic filter")?;
    TopicFilter::from_string(text).map_err(ProtocolError::InvalidTopicFilter)
}

/// Parses one subscription options byte (3.8.3.1).
fn parse_options(
    options: u8,
    filter: &TopicFilter,
    version: ProtocolVersion,
) -> Result<SubscriptionOptions, ProtocolError> {
    // 5.0 reserves bits 7-6 [MQTT-3.8.3-5]; 3.1.1 reserves bits 7-2 [MQTT-3-8.3-4].
    let reserved = if version.is_v5() {
        0b1100_0000
    } else {
        0b1111_1100
    };
    if options & reserved != 0 {
        return Err(ProtocolError::SubscriptionOptionsReserved { options, version });
    }
    let qos = QoS::from_u8(options & 0b11).ok_or(ProtocolError::SubscriptionQoS3 { version })?;
    if !version.is_v5() {
        return Ok(SubscriptionOptions::with_qos(qos));
    }
    let retain_handling = RetainHandling::from_u8((options >> RETAIN_HANDLING_SHIFT) & 0b11)
        .ok_or(ProtocolError::RetainHandling3)?;
    let no_local = options & NO_LOCAL != 0;
    // "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
    // [MQTT-3.8.3-4].
    if no_local && filter.share_name().is_some() {
        return Err(ProtocolError::NoLocalOnSharedSubscription);
    }
    Ok(SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: options & RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

fn options_byte(options: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut byte = options.qos as u8;
    if version.is_v5() {
        if options.no_local {
            byte |= NO_LOCAL;
        }
        if options.retain_as_published {
            byte |= RETAIN_AS_PUBLISHED;
        }
        byte |= (options.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
    }
    byte
}

pub(crate) fn decode_subscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Subscribe, ProtocolError> {
    let packet_id = read_packet_id(r, PacketType::Subscribe, version)?;
    let properties = properties_if_v5(r, version, PropertyContext::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = read_filter(r)?;
        let options = r.read_u8("subscription options")?;
        let options = parse_options(options, &filter, version)?;
        filters.push((filter, options));
    }
    // "The Payload MUST contain at least one Topic Filter and Subscription Options pair"
    // [MQTT-3.8.3-2] (5.0), [MQTT-3.8.3-3] (3.1.1).
    if filters.is_empty() {
        return Err(ProtocolError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
            version,
        });
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

pub(crate) fn subscribe_len(s: &Subscribe, version: ProtocolVersion) -> usize {
    let mut len = 2;
    if version.is_v5() {
        len += properties_block_len(&s.properties);
    }
    for (filter, _) in &s.filters {
        len += prefixed_len(filter.as_mqtt_str().as_bytes()) + 1;
    }
    len
}

pub(crate) fn encode_subscribe(
    s: &Subscribe,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    if s.filters.is_empty() {
        return Err(ProtocolError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
            version,
        });
    }
    buf.write_u16(s.packet_id.get());
    if version.is_v5() {
        encode_properties(&s.properties, PropertyContext::Subscribe, buf)?;
    }
    for (filter, options) in &s.filters {
        if version.is_v5() && options.no_local && filter.share_name().is_some() {
            return Err(ProtocolError::NoLocalOnSharedSubscription);
        }
        put_string(buf, filter.as_mqtt_str());
        buf.write_u8(options_byte(options, version));
    }
    Ok(())
}

pub(crate) fn decode_unsubscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, ProtocolError> {
    let packet_id = read_packet_id(r, PacketType::Unsubscribe, version)?;
    let properties = properties_if_v5(r, version, PropertyContext::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(read_filter(r)?);
    }
    // "The Payload of an UNSUBSCRIBE packet MUST contain at least one Topic Filter"
    // [MQTT-3.10.3-2].
    if filters.is_empty() {
        return Err(ProtocolError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
            version,
        });
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

pub(crate) fn unsubscribe_len(u: &Unsubscribe, version: ProtocolVersion) -> usize {
    let mut len = 2;
    if version.is_v5() {
        len += properties_block_len(&u.properties);
    }
    for filter in &u.filters {
        len += prefixed_len(filter.as_mqtt_str().as_bytes());
    }
    len
}

pub(crate) fn encode_unsubscribe(
    u: &Unsubscribe,
    version: ProtocolVersion,
    buf: &mut impl Output,
) -> Result<(), ProtocolError> {
    if u.filters.is_empty() {
        return Err(ProtocolError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
            version,
        });
    }
    buf.write_u16(u.packet_id.get());
    if version.is_v5() {
        encode_properties(&u.properties, PropertyContext::Unsubscribe, buf)?;
    }
    for filter in &u.filters {
        put_string(buf, filter.as_mqtt_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::decode;
    use crate::packet::Packet;
    use crate::properties::Properties;
    use crate::reason::ReasonCode;
    use crate::topic::TopicError;
    use crate::types::PacketId;
    use crate::PropertySet;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::new(text).unwrap()
    }

    fn decode_bytes(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, ProtocolError> {
        decode(&mut BytesMut::from(bytes), version, 1024)
    }

    fn round_trip(packet: Packet, version: ProtocolVersion) -> Vec<u8> {
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf).unwrap();
        assert_eq!(buf.len(), packet.encoded_len(version));
        let bytes = buf.to_vec();
        assert_eq!(decode(&mut buf, version, 1024), Ok(Some(packet)));
        bytes
    }

    #[test]
    fn subscribe_round_trips() {
        let v311 = Packet::Subscribe(Subscribe {
            packet_id: id(10),
            filters: vec![
                (
                    filter("a/b"),
                    SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                ),
                (
                    filter("c/#"),
                    SubscriptionOptions::with_qos(QoS::ExactlyOnce),
                ),
            ],
            properties: Properties::default(),
        });
        let bytes = round_trip(v311, ProtocolVersion::V3_1_1);
        assert_eq!(
            bytes,
            [0x82, 14, 0, 10, 0, 3, b'a', b'/', b'b', 1, 0, 3, b'c', b'/', b'#', 2]
        );
        let v5 = Packet::Subscribe(Subscribe {
            packet_id: id(11),
            filters: vec![
                (
                    filter("a/+"),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                ),
                (
                    filter("$share/g/x"),
                    SubscriptionOptions::with_qos(QoS::AtMostOnce),
                ),
            ],
            properties: Properties::from(PropertySet {
                subscription_identifiers: vec![268_435_455],
                ..PropertySet::default()
            }),
        });
        let bytes = round_trip(v5, ProtocolVersion::V5);
        assert_eq!(
            bytes.get(4..10),
            Some(&[5, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F][..])
        );
    }

    #[test]
    fn subscribe_rules() {
        let cases: [(&[u8], ProtocolVersion, ProtocolError, ReasonCode); 7] = [
            (
                &[0x82, 2, 0, 1],
                ProtocolVersion::V3_1_1,
                ProtocolError::NoTopicFilters {
                    packet_type: PacketType::Subscribe,
                    version: ProtocolVersion::V3_1_1,
                },
                ReasonCode::ProtocolError,
            ),
            (
                &[0x82, 6, 0, 1, 0, 1, b'a', 0x04],
                ProtocolVersion::V3_1_1,
                ProtocolError::SubscriptionOptionsReserved {
                    options: 0x04,
                    version: ProtocolVersion::V3_1_1,
                },
                ReasonCode::MalformedPacket,
            ),
            (
                &[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40],
                ProtocolVersion::V5,
                ProtocolError::SubscriptionOptionsReserved {
                    options: 0x40,
                    version: ProtocolVersion::V5,
                },
                ReasonCode::MalformedPacket,
            ),
            (
                &[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x03],
                ProtocolVersion::V5,
                ProtocolError::SubscriptionQoS3 {
                    version: ProtocolVersion::V5,
                },
                ReasonCode::ProtocolError,
            ),
            (
                &[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30],
                ProtocolVersion::V5,
                ProtocolError::RetainHandling3,
                ReasonCode::ProtocolError,
            ),
            (
                &[
                    0x82, 16, 0, 1, 0, 0, 10, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/',
                    b'a', 0x04,
                ],
                ProtocolVersion::V5,
                ProtocolError::NoLocalOnSharedSubscription,
                ReasonCode::ProtocolError,
            ),
            (
                &[0x82, 8, 0, 1, 0, 0, 2, b'a', b'#', 0x00],
                ProtocolVersion::V5,
                ProtocolError::InvalidTopicFilter(TopicError::MultiLevelWildcardMisplaced),
                ReasonCode::TopicFilterInvalid,
            ),
        ];
        for (bytes, version, expected, reason) in cases {
            let err = decode_bytes(bytes, version).unwrap_err();
            assert_eq!(err, expected, "{bytes:?}");
            assert_eq!(err.reason_code(), reason, "{bytes:?}");
        }
        assert!(matches!(
            decode_bytes(&[0x80, 6, 0, 1, 0, 1, b'a', 0], ProtocolVersion::V3_1_1),
            Err(ProtocolError::InvalidFlags { .. })
        ));
    }

    #[test]
    fn unsubscribe_round_trips() {
        let unsubscribe = Packet::Unsubscribe(Unsubscribe {
            packet_id: id(3),
            filters: vec![filter("a/b"), filter("+")],
            properties: Properties::default(),
        });
        assert_eq!(
            round_trip(unsubscribe.clone(), ProtocolVersion::V3_1_1),
            [0xA2, 10, 0, 3, 0, 3, b'a', b'/', b'b', 0, 1, b'+']
        );
        round_trip(unsubscribe, ProtocolVersion::V5);
        assert!(matches!(
            decode_bytes(&[0xA2, 3, 0, 3, 0], ProtocolVersion::V5),
            Err(ProtocolError::NoTopicFilters { .. })
        ));
    }
}
