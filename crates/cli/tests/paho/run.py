"""Runs one paho-mqtt interoperability scenario against a running broker and reports the
outcome by exit status: 0 when the broker behaved, 1 with the reason on stderr when it did
not. The Rust tests in `crates/cli/tests/paho_*.rs` start the broker and call this script,
once per transport:

    python3 run.py SCENARIO --port PORT [--transport tcp|websockets] [--host HOST]
"""

import argparse
import sys
import traceback

import paho.mqtt.client as mqtt

import conformance_scenarios
import raw_flows
import raw_packets
import v311_scenarios
import v5_scenarios
import v5_subscriptions
from peer import ScenarioFailed, Target, hold_connection

SCENARIOS = {
    "v5-properties": v5_scenarios.properties_pass_through,
    "v5-request-response": v5_scenarios.request_response,
    "v5-message-expiry": v5_scenarios.message_expiry_decremented,
    "v5-shared-subscription": v5_scenarios.shared_subscription,
    "v5-will-delay": v5_scenarios.will_delay_on_lost_connection,
    "v5-will-cancelled": v5_scenarios.will_cancelled_by_resumed_session,
    "v5-will-normal-disconnect": v5_scenarios.will_not_sent_on_normal_disconnect,
    "v5-will-disconnect-with-will": v5_scenarios.will_sent_on_disconnect_with_will,
    "v5-session-expiry-queue": v5_scenarios.session_expiry_keeps_offline_messages,
    "v5-session-expired": v5_scenarios.session_gone_after_expiry,
    "v5-topic-alias": v5_scenarios.topic_alias_from_client,
    "v5-retain-handling": v5_subscriptions.retain_handling,
    "v5-retain-as-published": v5_subscriptions.retain_as_published,
    "v5-no-local": v5_subscriptions.no_local,
    "v5-subscription-identifiers": v5_subscriptions.subscription_identifiers,
    "v5-qos2-exactly-once": v5_subscriptions.qos2_exactly_once,
    "v5-assigned-client-id": v5_subscriptions.assigned_client_identifier,
    "v5-takeover": v5_subscriptions.takeover,
    "v5-unsubscribe": v5_subscriptions.unsubscribe_stops_delivery,
    "v311-qos": v311_scenarios.qos_round_trips,
    "v311-retained": v311_scenarios.retained_messages,
    "v311-will": v311_scenarios.will_on_lost_connection,
    "v311-persistent-session": v311_scenarios.persistent_session,
    "v311-empty-client-id": v311_scenarios.empty_client_id,
    "v311-takeover": v311_scenarios.takeover,
}
# Conformance scenarios are named after their normative statement, like their Rust tests.
SCENARIOS.update({name: function for module in (raw_packets, raw_flows, conformance_scenarios)
                  for name, function in vars(module).items() if name.startswith("mqtt_")})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS) + ["hold-connection"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    parser.add_argument("--path", default="/mqtt", help="WebSocket path")
    # Only for the helper process of will scenarios.
    parser.add_argument("--client-id")
    parser.add_argument("--protocol", type=int, default=mqtt.MQTTv5)
    parser.add_argument("--will", help="the will, as JSON")
    parser.add_argument("--session-expiry", type=int)
    args = parser.parse_args()
    target = Target(args.host, args.port, args.transport, args.path)
    if args.scenario == "hold-connection":
        hold_connection(target, args.client_id, args.protocol, args.will, args.session_expiry)
        return 0
    try:
        SCENARIOS[args.scenario](target)
    except ScenarioFailed as failure:
        print(f"{args.scenario} over {args.transport}: {failure}", file=sys.stderr)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
