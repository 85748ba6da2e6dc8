"""One paho-mqtt client as the interoperability scenarios drive it: where the broker is, a
connection with every callback turned into a queue the scenario reads with a bounded wait,
and the few packet builders (properties, subscription options, reason codes) the scenarios
share. Nothing here asserts protocol behaviour; the scenarios do."""

import json
import queue
import select
import subprocess
import sys
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

# Every wait for something that must happen is bounded by this; a broker that works answers
# on loopback in milliseconds, so hitting it means the behaviour is missing.
WAIT = 10.0


class ScenarioFailed(AssertionError):
    """A broker behaviour a scenario expected did not happen."""


def check(condition, message):
    """Fails the scenario with `message` unless `condition` holds."""
    if not condition:
        raise ScenarioFailed(message)


@dataclass(frozen=True)
class Target:
    """Where the broker listens and over which transport to reach it."""

    host: str
    port: int
    transport: str  # "tcp" or "websockets"
    path: str = "/mqtt"

    def label(self, name):
        """A client id or topic level unique to this transport, so runs never collide."""
        return f"{name}-{self.transport[:2]}"


def properties(packet_type, **values):
    """A Properties block of `packet_type` with the given MQTT 5 properties set."""
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def disconnect_reason(code):
    """The DISCONNECT reason code with numeric value `code`."""
    return ReasonCode(PacketTypes.DISCONNECT, identifier=code)


class Peer:
    """A connected paho client whose callbacks feed queues."""

    def __init__(self, target, client_id, protocol=mqtt.MQTTv5, clean_start=True,
                 session_expiry=None, will=None, connect_properties=None):
        self.target = target
        self.protocol = protocol
        self.clean_start = clean_start
        self.connect_properties = connect_properties
        v311 = protocol != mqtt.MQTTv5
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_start if v311 else None,
            protocol=protocol,
            transport=target.transport,
            # A lost connection must stay lost: the scenarios reconnect on purpose only.
            reconnect_on_failure=False,
        )
        if target.transport == "websockets":
            self.client.ws_set_options(path=target.path)
        if session_expiry is not None:
            self.connect_properties = self.connect_properties or properties(PacketTypes.CONNECT)
            self.connect_properties.SessionExpiryInterval = session_expiry
        if will is not None:
            self.client.will_set(**will)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _client, _userdata, flags, reason_code, props):
        self.connacks.put((flags.session_present, reason_code.value, props))

    def _on_message(self, _client, _userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _props):
        self.subacks.put((mid, [code.value for code in reason_codes]))

    def _on_unsubscribe(self, _client, _userdata, mid, reason_codes, _props):
        self.unsubacks.put((mid, [code.value for code in reason_codes]))

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props):
        self.disconnects.put(reason_code.value)

    def connect(self):
        """Connects and waits for a successful CONNACK; returns (session_present, reason,
        properties)."""
        connack = self.try_connect()
        check(connack[1] == 0, f"connection refused with reason {connack[1]:#x}")
        return connack

    def try_connect(self):
        """Connects and waits for CONNACK, whatever its reason code; returns
        (session_present, reason, properties)."""
        kwargs = {}
        if self.protocol == mqtt.MQTTv5:
            kwargs["clean_start"] = self.clean_start
            kwargs["properties"] = self.connect_properties
        self.client.connect(self.target.host, self.target.port, keepalive=30, **kwargs)
        self.client.loop_start()
        return take(self.connacks, "CONNACK")

    def subscribe(self, topic, qos=1, options=None, props=None):
        """Subscribes one filter and waits for its SUBACK; returns the reason codes."""
        if self.protocol == mqtt.MQTTv5:
            options = options or SubscribeOptions(qos=qos)
            result, mid = self.client.subscribe(topic, options=options, properties=props)
        else:
            result, mid = self.client.subscribe(topic, qos=qos)
        check(result == mqtt.MQTT_ERR_SUCCESS, f"SUBSCRIBE {topic} not sent: {result}")
        acked_mid, codes = take(self.subacks, f"SUBACK for {topic}")
        check(acked_mid == mid, f"SUBACK for packet {acked_mid}, expected {mid}")
        return codes

    def unsubscribe(self, topic):
        """Unsubscribes one filter and waits for its UNSUBACK; returns the reason codes
        (5.0; empty in 3.1.1, whose UNSUBACK has none)."""
        result, mid = self.client.unsubscribe(topic)
        check(result == mqtt.MQTT_ERR_SUCCESS, f"UNSUBSCRIBE {topic} not sent: {result}")
        acked_mid, codes = take(self.unsubacks, f"UNSUBACK for {topic}")
        check(acked_mid == mid, f"UNSUBACK for packet {acked_mid}, expected {mid}")
        return codes

    def publish(self, topic, payload, qos=1, retain=False, props=None):
        """Publishes and waits until the flow of its QoS is complete."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(timeout=WAIT)
        check(info.is_published(), f"PUBLISH to {topic} (QoS {qos}) was not acknowledged")

    def next_message(self, what="a message"):
        """The next application message received, waiting at most WAIT seconds."""
        return take(self.messages, what)

    def disconnect(self, reason=None):
        """Sends DISCONNECT (5.0: with `reason`, default 0x00) and stops the network loop."""
        if self.protocol == mqtt.MQTTv5 and reason is not None:
            self.client.disconnect(reasoncode=disconnect_reason(reason))
        else:
            self.client.disconnect()
        take(self.disconnects, "the end of the connection")
        self.client.loop_stop()

    def stop(self):
        """Stops the network loop of a connection the broker has already closed."""
        self.client.loop_stop()


def take(source, what):
    """The next item of `source`, failing the scenario after WAIT seconds."""
    try:
        return source.get(timeout=WAIT)
    except queue.Empty:
        raise ScenarioFailed(f"no {what} within {WAIT} s") from None


def spawn_held_connection(target, client_id, protocol, will, session_expiry=None):
    """Starts a separate process that connects with `will` and then idles, so that killing it
    loses the connection without a DISCONNECT, as a crashed device would. `will` has `topic`
    and `payload`, optionally `delay` (seconds), `retain` and `user` (user properties, a list
    of pairs). Returns the process once its CONNACK arrived."""
    args = [sys.executable, sys.argv[0], "hold-connection", "--host", target.host,
            "--port", str(target.port), "--transport", target.transport,
            "--client-id", client_id, "--protocol", str(protocol), "--will", json.dumps(will)]
    if session_expiry is not None:
        args += ["--session-expiry", str(session_expiry)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], WAIT)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "connected":
        process.kill()
        raise ScenarioFailed(f"the will client did not connect within {WAIT} s: {line!r}")
    return process


def hold_connection(target, client_id, protocol, will_json, session_expiry):
    """The body of the process started by `spawn_held_connection`."""
    will = json.loads(will_json)
    will_props = None
    if protocol == mqtt.MQTTv5:
        will_props = properties(PacketTypes.WILLMESSAGE,
                                WillDelayInterval=will.get("delay", 0))
        if will.get("user"):
            will_props.UserProperty = [tuple(pair) for pair in will["user"]]
    peer = Peer(target, client_id, protocol=protocol, session_expiry=session_expiry,
                will={"topic": will["topic"], "payload": will["payload"], "qos": 1,
                      "retain": will.get("retain", False), "properties": will_props})
    peer.connect()
    print("connected", flush=True)
    # Killed by the scenario long before this; the bound keeps a forgotten process from
    # lingering.
    time.sleep(4 * WAIT)
