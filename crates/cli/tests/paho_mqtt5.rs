//! MQTT 5.0 interoperability with paho-mqtt (Python, from PyPI) against the real `mquictt`
//! binary over TCP and WebSocket: every test plays one scenario of `tests/paho/` on both
//! transports against a fresh broker on ephemeral loopback ports.

mod common;
mod paho;

use paho::{play_over_both_transports, start_broker};

/// User properties (order and repeats), content type, payload format indicator, response topic and
/// correlation data arrive unchanged; one copy for two matching subscriptions.
#[test]
fn paho_v5_properties_pass_through_unchanged() {
    play_over_both_transports(&start_broker(), "v5-properties");
}

/// A responder answers on the Response Topic with the Correlation Data of the request.
#[test]
fn paho_v5_request_response_replies_carry_the_correlation_data() {
    play_over_both_transports(&start_broker(), "v5-request-response");
}

/// A retained message that waited goes out with a smaller Message Expiry Interval.
#[test]
fn paho_v5_message_expiry_is_decremented_by_the_time_spent_waiting() {
    play_over_both_transports(&start_broker(), "v5-message-expiry");
}

/// `$share/workers/...` gives each message to one member, every member some, and a plain subscriber
/// all.
#[test]
fn paho_v5_shared_subscription_spreads_messages_over_the_group() {
    play_over_both_transports(&start_broker(), "v5-shared-subscription");
}

/// A killed client's will with Will Delay 1 s arrives, and not before the delay.
#[test]
fn paho_v5_will_is_published_after_its_delay_when_the_connection_is_lost() {
    play_over_both_transports(&start_broker(), "v5-will-delay");
}

/// Reconnecting to the session within the Will Delay cancels the will.
#[test]
fn paho_v5_delayed_will_is_cancelled_when_the_session_resumes_in_time() {
    play_over_both_transports(&start_broker(), "v5-will-cancelled");
}

/// DISCONNECT with Normal disconnection discards the will.
#[test]
fn paho_v5_will_is_not_published_after_disconnect_0x00() {
    play_over_both_transports(&start_broker(), "v5-will-normal-disconnect");
}

/// DISCONNECT with Disconnect with Will Message publishes the will.
#[test]
fn paho_v5_will_is_published_after_disconnect_0x04() {
    play_over_both_transports(&start_broker(), "v5-will-disconnect-with-will");
}

/// A session with a Session Expiry Interval queues QoS 1 messages while offline and delivers them
/// in order on resume.
#[test]
fn paho_v5_offline_qos1_messages_are_delivered_when_the_session_resumes() {
    play_over_both_transports(&start_broker(), "v5-session-expiry-queue");
}

/// After its one-second Session Expiry Interval the session, its subscription and its queue are
/// gone.
#[test]
fn paho_v5_session_is_gone_after_its_expiry_interval() {
    play_over_both_transports(&start_broker(), "v5-session-expired");
}

/// A client publishing by Topic Alias alone reaches subscribers under the full topic name.
#[test]
fn paho_v5_topic_alias_from_the_client_is_resolved() {
    play_over_both_transports(&start_broker(), "v5-topic-alias");
}

/// Retain Handling 0 sends retained messages on every subscribe, 1 only for a new subscription, 2
/// never.
#[test]
fn paho_v5_retain_handling_0_1_and_2() {
    play_over_both_transports(&start_broker(), "v5-retain-handling");
}

/// Live messages keep RETAIN only for Retain As Published subscriptions.
#[test]
fn paho_v5_retain_as_published_keeps_or_clears_the_retain_flag() {
    play_over_both_transports(&start_broker(), "v5-retain-as-published");
}

/// No Local keeps a client's own messages from it while others still get them.
#[test]
fn paho_v5_no_local_does_not_echo_own_messages() {
    play_over_both_transports(&start_broker(), "v5-no-local");
}

/// A message matching two subscriptions carries both Subscription Identifiers.
#[test]
fn paho_v5_subscription_identifiers_of_every_matching_subscription() {
    play_over_both_transports(&start_broker(), "v5-subscription-identifiers");
}

/// Twenty QoS 2 messages arrive once each, in order, with QoS 2.
#[test]
fn paho_v5_qos2_is_delivered_exactly_once() {
    play_over_both_transports(&start_broker(), "v5-qos2-exactly-once");
}

/// An empty client id gets an Assigned Client Identifier, different per connection.
#[test]
fn paho_v5_empty_client_id_gets_a_unique_assigned_identifier() {
    play_over_both_transports(&start_broker(), "v5-assigned-client-id");
}

/// A second connection with the same client id ends the first with DISCONNECT 0x8E.
#[test]
fn paho_v5_takeover_sends_disconnect_0x8e_to_the_old_connection() {
    play_over_both_transports(&start_broker(), "v5-takeover");
}

/// UNSUBACK says 0x00 or 0x11 per filter and messages on the removed filter stop.
#[test]
fn paho_v5_unsubscribe_answers_per_filter_and_stops_delivery() {
    play_over_both_transports(&start_broker(), "v5-unsubscribe");
}
