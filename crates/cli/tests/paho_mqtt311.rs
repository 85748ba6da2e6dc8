//! MQTT 3.1.1 interoperability with paho-mqtt (Python, from PyPI) against the real `mquictt`
//! binary over TCP and WebSocket: every test plays one scenario of `tests/paho/` on both
//! transports against a fresh broker on ephemeral loopback ports.

mod common;
mod paho;

use paho::{play_over_both_transports, start_broker};

/// QoS 0, 1 and 2 round trips with RETAIN 0 on live messages.
#[test]
fn paho_v311_qos_0_1_2_round_trips() {
    play_over_both_transports(&start_broker(), "v311-qos");
}

/// A retained message is replaced by the next, sent with RETAIN 1 on subscribe and deleted by an
/// empty payload.
#[test]
fn paho_v311_retained_message_is_replaced_and_deleted() {
    play_over_both_transports(&start_broker(), "v311-retained");
}

/// A killed client's will is published.
#[test]
fn paho_v311_will_is_published_when_the_connection_is_lost() {
    play_over_both_transports(&start_broker(), "v311-will");
}

/// Clean Session 0 keeps subscriptions and queued QoS 1 messages, with Session Present 1; Clean
/// Session 1 discards them.
#[test]
fn paho_v311_persistent_session_queues_while_offline() {
    play_over_both_transports(&start_broker(), "v311-persistent-session");
}

/// An empty client id with Clean Session 1 connects and works.
#[test]
fn paho_v311_empty_client_id_with_clean_session_is_accepted() {
    play_over_both_transports(&start_broker(), "v311-empty-client-id");
}

/// A second connection with the same client id closes the first.
#[test]
fn paho_v311_takeover_closes_the_old_connection() {
    play_over_both_transports(&start_broker(), "v311-takeover");
}
