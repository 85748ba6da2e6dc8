//! Proptest strategies for the codec suites: arbitrary valid packets for one protocol version,
//! carrying only the fields and properties that version and packet type allow, with the
//! combinations the spec forbids repaired away.

use bytes::Bytes;
use mquictt_protocol::properties::Properties;
use mquictt_protocol::PropertySet;
use mquictt_protocol::{
    Auth, ConnAck, Connect, Disconnect, MqttString, Packet, PacketId, ProtocolVersion, PubAck,
    Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, UnsubAck, Unsubscribe, Will,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{filter, pid, s, topic};

/// MQTT strings: any characters but U+0000, some of them multi-byte.
pub(crate) fn arb_string() -> impl Strategy<Value = MqttString> {
    "[^\u{0}]{0,12}".prop_map(|text| s(&text))
}

pub(crate) fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Topic names: levels of letters, digits, spaces and non-ASCII text, possibly empty
/// levels, never a wildcard.
pub(crate) fn arb_topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z0-9 $é中/]{1,16}".prop_map(|text| topic(&text))
}

/// Topic filters built level by level so that wildcards always sit where 4.7.1 allows.
pub(crate) fn arb_topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![
        3 => "[a-z0-9é]{0,5}",
        1 => Just("+".to_string()),
    ];
    (
        vec(level, 1..4),
        any::<bool>(),
        option::weighted(0.2, "[a-z]{1,4}"),
    )
        .prop_map(|(levels, multi_level, share)| {
            let mut text = levels.join("/");
            if multi_level {
                text.push_str("/#");
            }
            // A filter is at least one character long [MQTT-4.7.3-1].
            if text.is_empty() {
                text.push('+');
            }
            if let Some(name) = share {
                text = format!("$share/{name}/{text}");
            }
            filter(&text)
        })
}

fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn arb_packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(pid)
}

fn arb_reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(|code| {
        ReasonCode::from_u8(code).expect("the tables below hold defined reason codes")
    })
}

/// Reason codes each packet may carry in MQTT 5 (3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1,
/// 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];
/// MQTT 3.1.1 CONNACK return codes 0..=5 and SUBACK return codes, as reason codes.
const V3_CONNACK_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const V3_SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

/// Which properties a packet (or a will) may carry, table 2-4 of MQTT 5.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PropertyScope {
    Connect,
    Will,
    ConnAck,
    Publish,
    Acknowledgement,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

/// Every property with an arbitrary valid value, each present about half the time.
fn arb_any_properties() -> impl Strategy<Value = Properties> {
    let first = (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(arb_string()),
        option::of(arb_topic_name()),
        option::of(arb_bytes(8)),
        vec(1u32..=268_435_455, 0..3),
        option::of(any::<u32>()),
        option::of(arb_string()),
        option::of(any::<u16>()),
        option::of(arb_string()),
        option::of(arb_bytes(8)),
        option::of(any::<bool>()),
    );
    let second = (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(arb_string()),
        option::of(arb_string()),
        option::of(arb_string()),
        option::of(1..=u16::MAX),
        option::of(any::<u16>()),
        option::of(1..=u16::MAX),
        option::of(0u8..=1),
        option::of(any::<bool>()),
        vec((arb_string(), arb_string()), 0..3),
        option::of(1..=u32::MAX),
    );
    let third = (
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    );
    (first, second, third).prop_map(|(a, b, c)| {
        Properties::from(PropertySet {
            payload_format_indicator: a.0,
            message_expiry_interval: a.1,
            content_type: a.2,
            response_topic: a.3.map(|t| t.as_mqtt_str().clone()),
            correlation_data: a.4,
            subscription_identifiers: a.5,
            session_expiry_interval: a.6,
            assigned_client_identifier: a.7,
            server_keep_alive: a.8,
            authentication_method: a.9,
            authentication_data: a.10,
            request_problem_information: a.11,
            will_delay_interval: b.0,
            request_response_information: b.1,
            response_information: b.2,
            server_reference: b.3,
            reason_string: b.4,
            receive_maximum: b.5,
            topic_alias_maximum: b.6,
            topic_alias: b.7,
            maximum_qos: b.8,
            retain_available: b.9,
            user_properties: b.10,
            maximum_packet_size: b.11,
            wildcard_subscription_available: c.0,
            subscription_identifier_available: c.1,
            shared_subscription_available: c.2,
        })
    })
}

/// Clears every property the scope does not allow, and repairs the combinations the spec
/// forbids (authentication data without a method, more than one subscription identifier in
/// SUBSCRIBE).
fn restrict(all: Properties, scope: PropertyScope) -> Properties {
    use PropertyScope as S;
    let mut p = Properties::from(PropertySet {
        user_properties: all.user_properties.clone(),
        ..PropertySet::default()
    });
    let publish_like = matches!(scope, S::Publish | S::Will);
    if publish_like {
        p.payload_format_indicator = all.payload_format_indicator;
        p.message_expiry_interval = all.message_expiry_interval;
        p.content_type = all.content_type.clone();
        p.response_topic = all.response_topic.clone();
        p.correlation_data = all.correlation_data.clone();
    }
    match scope {
        S::Will => p.will_delay_interval = all.will_delay_interval,
        S::Publish => {
            p.subscription_identifiers = all.subscription_identifiers.clone();
            p.topic_alias = all.topic_alias;
        }
        S::Subscribe => {
            p.subscription_identifiers = all
                .subscription_identifiers
                .iter()
                .copied()
                .take(1)
                .collect();
        }
        S::Connect => {
            p.session_expiry_interval = all.session_expiry_interval;
            p.authentication_method = all.authentication_method.clone();
            p.authentication_data = all.authentication_data.clone();
            p.request_problem_information = all.request_problem_information;
            p.request_response_information = all.request_response_information;
            p.receive_maximum = all.receive_maximum;
            p.topic_alias_maximum = all.topic_alias_maximum;
            p.maximum_packet_size = all.maximum_packet_size;
        }
        S::ConnAck => {
            p.session_expiry_interval = all.session_expiry_interval;
            p.assigned_client_identifier = all.assigned_client_identifier.clone();
            p.server_keep_alive = all.server_keep_alive;
            p.authentication_method = all.authentication_method.clone();
            p.authentication_data = all.authentication_data.clone();
            p.response_information = all.response_information.clone();
            p.server_reference = all.server_reference.clone();
            p.reason_string = all.reason_string.clone();
            p.receive_maximum = all.receive_maximum;
            p.topic_alias_maximum = all.topic_alias_maximum;
            p.maximum_qos = all.maximum_qos;
            p.retain_available = all.retain_available;
            p.maximum_packet_size = all.maximum_packet_size;
            p.wildcard_subscription_available = all.wildcard_subscription_available;
            p.subscription_identifier_available = all.subscription_identifier_available;
            p.shared_subscription_available = all.shared_subscription_available;
        }
        S::Acknowledgement => p.reason_string = all.reason_string.clone(),
        S::Unsubscribe => {}
        S::Disconnect => {
            p.session_expiry_interval = all.session_expiry_interval;
            p.server_reference = all.server_reference.clone();
            p.reason_string = all.reason_string.clone();
        }
        S::Auth => {
            // "It is a Protocol Error to omit the Authentication Method" (3.15.2.2.2).
            p.authentication_method = Some(all.authentication_method.clone().unwrap_or_default());
            p.authentication_data = all.authentication_data.clone();
            p.reason_string = all.reason_string.clone();
        }
    }
    // "It is a Protocol Error to include Authentication Data if there is no Authentication
    // Method" (3.1.2.11.10).
    if p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    p
}

/// Properties for `scope` in MQTT 5; always empty before.
pub(crate) fn arb_properties(
    version: ProtocolVersion,
    scope: PropertyScope,
) -> BoxedStrategy<Properties> {
    if version.is_v5() {
        arb_any_properties()
            .prop_map(move |all| restrict(all, scope))
            .boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

fn arb_will(version: ProtocolVersion) -> impl Strategy<Value = Will> {
    (
        arb_topic_name(),
        arb_bytes(16),
        arb_qos(),
        any::<bool>(),
        arb_properties(version, PropertyScope::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

fn arb_connect(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    // MQTT 3.1 asks for a client identifier of 1 to 23 characters (3.1, CONNECT payload).
    let client_id = if version == ProtocolVersion::V3_1 {
        "[a-zA-Z0-9]{1,23}".prop_map(|id| s(&id)).boxed()
    } else {
        arb_string().boxed()
    };
    (
        any::<bool>(),
        any::<u16>(),
        client_id,
        option::of(arb_will(version)),
        option::of(arb_string()),
        option::of(arb_bytes(8)),
        arb_properties(version, PropertyScope::Connect),
    )
        .prop_map(
            move |(clean, keep_alive, client_id, will, username, password, properties)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22], and an empty client
                // identifier needs a clean session [MQTT-3.1.3-7].
                let password = if version.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                let clean_start = clean || (!version.is_v5() && client_id.is_empty());
                Packet::Connect(Box::new(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn arb_connack(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() {
        CONNACK_CODES
    } else {
        V3_CONNACK_CODES
    };
    (
        any::<bool>(),
        arb_reason(codes),
        arb_properties(version, PropertyScope::ConnAck),
    )
        .prop_map(move |(session_present, reason_code, properties)| {
            // A refusal never has a session [MQTT-3.2.2-6], and MQTT 3.1 has no Session
            // Present flag at all (its byte is reserved).
            let session_present = session_present
                && reason_code == ReasonCode::Success
                && version != ProtocolVersion::V3_1;
            Packet::ConnAck(ConnAck {
                session_present,
                reason_code,
                properties,
            })
        })
}

fn arb_publish(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        arb_topic_name(),
        arb_packet_id(),
        arb_properties(version, PropertyScope::Publish),
        arb_bytes(64),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, retain, name, id, properties, payload, use_alias)| {
                // The topic name may be empty only when a topic alias stands for it (3.3.2.3.4).
                let topic = if version.is_v5() && use_alias && properties.topic_alias.is_some() {
                    TopicName::empty()
                } else {
                    name
                };
                let at_most_once = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: (!at_most_once).then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

fn arb_acknowledgement(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let (publish_codes, release_codes): (&'static [u8], &'static [u8]) = if version.is_v5() {
        (PUBACK_CODES, PUBREL_CODES)
    } else {
        (&[0x00], &[0x00])
    };
    let ack = move |codes: &'static [u8]| {
        (
            arb_packet_id(),
            arb_reason(codes),
            arb_properties(version, PropertyScope::Acknowledgement),
        )
            .prop_map(|(packet_id, reason_code, properties)| PubAck {
                packet_id,
                reason_code,
                properties,
            })
    };
    prop_oneof![
        ack(publish_codes).prop_map(Packet::PubAck),
        ack(publish_codes).prop_map(Packet::PubRec),
        ack(release_codes).prop_map(Packet::PubRel),
        ack(release_codes).prop_map(Packet::PubComp),
    ]
}

fn arb_subscription_options(version: ProtocolVersion) -> BoxedStrategy<SubscriptionOptions> {
    if !version.is_v5() {
        return arb_qos().prop_map(SubscriptionOptions::with_qos).boxed();
    }
    let retain_handling = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendIfNew),
        Just(RetainHandling::DoNotSend),
    ];
    (arb_qos(), any::<bool>(), any::<bool>(), retain_handling)
        .prop_map(
            |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            },
        )
        .boxed()
}

fn arb_subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        arb_packet_id(),
        vec(
            (arb_topic_filter(), arb_subscription_options(version)),
            1..4,
        ),
        arb_properties(version, PropertyScope::Subscribe),
    )
        .prop_map(|(packet_id, mut filters, properties)| {
            // "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
            // [MQTT-3.8.3-4].
            for (f, options) in &mut filters {
                if f.share_name().is_some() {
                    options.no_local = false;
                }
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn arb_suback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() {
        SUBACK_CODES
    } else {
        V3_SUBACK_CODES
    };
    (
        arb_packet_id(),
        vec(arb_reason(codes), 1..5),
        arb_properties(version, PropertyScope::Acknowledgement),
    )
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties,
            })
        })
}

fn arb_unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        arb_packet_id(),
        vec(arb_topic_filter(), 1..4),
        arb_properties(version, PropertyScope::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn arb_unsuback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    // Reason codes exist only in MQTT 5; a 3.1.1 UNSUBACK is just the packet identifier.
    let count = if version.is_v5() { 1..5 } else { 0..1 };
    (
        arb_packet_id(),
        vec(arb_reason(UNSUBACK_CODES), count),
        arb_properties(version, PropertyScope::Acknowledgement),
    )
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reason_codes,
                properties,
            })
        })
}

fn arb_disconnect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    if !version.is_v5() {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    (
        arb_reason(DISCONNECT_CODES),
        arb_properties(version, PropertyScope::Disconnect),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        })
        .boxed()
}

fn arb_auth() -> impl Strategy<Value = Packet> {
    let with_method = (
        arb_reason(AUTH_CODES),
        arb_properties(ProtocolVersion::V5, PropertyScope::Auth),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Auth(Auth {
                reason_code,
                properties,
            })
        });
    prop_oneof![
        1 => Just(Packet::Auth(Auth {
            reason_code: ReasonCode::Success,
            properties: Properties::default(),
        })),
        4 => with_method,
    ]
}

/// Any packet that `version` can carry, with only the fields that version puts on the wire.
pub(crate) fn arb_packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        2 => arb_connect(version),
        1 => arb_connack(version),
        3 => arb_publish(version),
        2 => arb_acknowledgement(version),
        2 => arb_subscribe(version),
        1 => arb_suback(version),
        1 => arb_unsubscribe(version),
        1 => arb_unsuback(version),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => arb_disconnect(version),
    ];
    if version.is_v5() {
        prop_oneof![10 => common, 1 => arb_auth()].boxed()
    } else {
        common.boxed()
    }
}
