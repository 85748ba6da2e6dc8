//! Normative statements of MQTT 5.0 checked against the real `mquictt` binary with paho-mqtt
//! and with raw MQTT bytes from Python (`tests/paho/raw_packets.py`, for packets no client
//! library sends). Every test is named after the statement it checks; raw-byte tests use
//! TCP, the others run over TCP and WebSocket.

mod common;
mod paho;

use paho::{play, play_over_both_transports, start_broker, start_broker_with_config};

/// The configuration of a broker that supports QoS up to 1 and no retained messages.
const LIMITED_BROKER: &str = "[mqtt]\nmaximum_qos = 1\nretain_available = false\n";

/// The broker answers every PINGREQ with a PINGRESP.
#[test]
fn mqtt_3_12_4_1_pingreq_gets_pingresp() {
    let broker = start_broker();
    play("mqtt_3_12_4_1_pingreq_gets_pingresp", "tcp", broker.port(0));
}

/// SUBSCRIBE gets a SUBACK with its packet identifier and one reason code per filter, in order.
#[test]
fn mqtt_3_8_4_1_suback_echoes_the_packet_identifier() {
    let broker = start_broker();
    play(
        "mqtt_3_8_4_1_suback_echoes_the_packet_identifier",
        "tcp",
        broker.port(0),
    );
}

/// SUBSCRIBE with fixed-header flags 0000 ends with DISCONNECT 0x81.
#[test]
fn mqtt_3_8_1_1_subscribe_with_wrong_flags_is_malformed() {
    let broker = start_broker();
    play(
        "mqtt_3_8_1_1_subscribe_with_wrong_flags_is_malformed",
        "tcp",
        broker.port(0),
    );
}

/// No Local on a `$share/` filter ends with DISCONNECT 0x82.
#[test]
fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = start_broker();
    play(
        "mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error",
        "tcp",
        broker.port(0),
    );
}

/// Reserved Subscription Options bits end with DISCONNECT 0x81.
#[test]
fn mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed() {
    let broker = start_broker();
    play(
        "mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed",
        "tcp",
        broker.port(0),
    );
}

/// A client PUBLISH carrying a Subscription Identifier ends with DISCONNECT 0x82.
#[test]
fn mqtt_3_3_4_6_subscription_identifier_from_a_client_is_a_protocol_error() {
    let broker = start_broker();
    play(
        "mqtt_3_3_4_6_subscription_identifier_from_a_client_is_a_protocol_error",
        "tcp",
        broker.port(0),
    );
}

/// DISCONNECT with fixed-header flags 0001 ends with DISCONNECT 0x81.
#[test]
fn mqtt_3_14_1_1_disconnect_with_reserved_flags_is_malformed() {
    let broker = start_broker();
    play(
        "mqtt_3_14_1_1_disconnect_with_reserved_flags_is_malformed",
        "tcp",
        broker.port(0),
    );
}

/// A QoS 2 shared message whose member lost its connection before PUBREC goes to no other
/// member: it is completed when that member resumes, dropped if its session ended.
#[test]
fn mqtt_4_8_2_4_and_5_qos2_shared_message_stays_with_its_member() {
    let broker = start_broker();
    play(
        "mqtt_4_8_2_4_and_5_qos2_shared_message_stays_with_its_member",
        "tcp",
        broker.port(0),
    );
}

/// A Topic Alias of one connection is unknown on the next one of the same session.
#[test]
fn mqtt_3_3_2_7_topic_aliases_do_not_survive_a_reconnect() {
    let broker = start_broker();
    play(
        "mqtt_3_3_2_7_topic_aliases_do_not_survive_a_reconnect",
        "tcp",
        broker.port(0),
    );
}

/// A full Receive Maximum window holds back PUBLISH packets only: PINGREQ and SUBSCRIBE are
/// answered, and the PUBACK releases the next PUBLISH.
#[test]
fn mqtt_3_3_4_10_a_full_window_holds_back_only_publishes() {
    let broker = start_broker();
    play(
        "mqtt_3_3_4_10_a_full_window_holds_back_only_publishes",
        "tcp",
        broker.port(0),
    );
}

/// A client that does not ask for Response Information gets none in CONNACK.
#[test]
fn mqtt_3_1_2_28_no_response_information_unless_requested() {
    play_over_both_transports(
        &start_broker(),
        "mqtt_3_1_2_28_no_response_information_unless_requested",
    );
}

/// With Request Problem Information 0, a PUBACK 0x10 carries no Reason String or User
/// Property.
#[test]
fn mqtt_3_1_2_29_no_reason_string_on_acknowledgements() {
    play_over_both_transports(
        &start_broker(),
        "mqtt_3_1_2_29_no_reason_string_on_acknowledgements",
    );
}

/// A will with Will Retain 1 is retained, one with Will Retain 0 is not.
#[test]
fn mqtt_3_1_2_14_and_15_will_retain_flag() {
    play_over_both_transports(&start_broker(), "mqtt_3_1_2_14_and_15_will_retain_flag");
}

/// The will keeps its user properties and their order.
#[test]
fn mqtt_3_1_3_10_will_user_properties_keep_their_order() {
    play_over_both_transports(
        &start_broker(),
        "mqtt_3_1_3_10_will_user_properties_keep_their_order",
    );
}

/// A PUBLISH with RETAIN 0 leaves the retained message of its topic alone.
#[test]
fn mqtt_3_3_1_8_publish_without_retain_leaves_the_retained_message() {
    play_over_both_transports(
        &start_broker(),
        "mqtt_3_3_1_8_publish_without_retain_leaves_the_retained_message",
    );
}

/// Topic matching neither folds case nor normalises Unicode.
#[test]
fn mqtt_4_7_3_4_topics_match_without_normalisation() {
    play_over_both_transports(
        &start_broker(),
        "mqtt_4_7_3_4_topics_match_without_normalisation",
    );
}

/// A broker limited to QoS 1 without retained messages announces both in CONNACK.
#[test]
fn mqtt_3_2_2_9_maximum_qos_is_announced() {
    let (broker, _config) = start_broker_with_config(LIMITED_BROKER);
    play_over_both_transports(&broker, "mqtt_3_2_2_9_maximum_qos_is_announced");
}

/// SUBSCRIBE at QoS 2 to a QoS 1 broker is granted QoS 1.
#[test]
fn mqtt_3_2_2_10_subscribe_at_qos_2_is_granted_the_maximum() {
    let (broker, _config) = start_broker_with_config(LIMITED_BROKER);
    play_over_both_transports(
        &broker,
        "mqtt_3_2_2_10_subscribe_at_qos_2_is_granted_the_maximum",
    );
}

/// A will above the broker's Maximum QoS is refused with CONNACK 0x9B.
#[test]
fn mqtt_3_2_2_12_will_qos_above_the_maximum_is_refused_with_0x9b() {
    let (broker, _config) = start_broker_with_config(LIMITED_BROKER);
    play_over_both_transports(
        &broker,
        "mqtt_3_2_2_12_will_qos_above_the_maximum_is_refused_with_0x9b",
    );
}

/// A retained will on a broker without retained messages is refused with CONNACK 0x9A.
#[test]
fn mqtt_3_2_2_13_retained_will_without_retain_support_is_refused_with_0x9a() {
    let (broker, _config) = start_broker_with_config(LIMITED_BROKER);
    play_over_both_transports(
        &broker,
        "mqtt_3_2_2_13_retained_will_without_retain_support_is_refused_with_0x9a",
    );
}
