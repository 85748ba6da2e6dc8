"""Normative statements of MQTT 5.0 checked with paho-mqtt against the broker, each scenario
named after the statement it checks: the RETAIN flag of wills, the order of will user
properties, retained messages untouched by non-retained publishes, topic matching without
normalisation, and what a broker configured with Maximum QoS 1 and no retained messages
announces and refuses (those scenarios need `maximum_qos = 1` and `retain_available = false`
in the broker's `[mqtt]` configuration)."""

import queue

from paho.mqtt.packettypes import PacketTypes

from peer import Peer, check, properties, spawn_held_connection, take

V5 = 5


def _kill_with_will(target, name, will):
    held = spawn_held_connection(target, target.label(name), V5, will)
    held.kill()
    held.wait()


def mqtt_3_1_2_14_and_15_will_retain_flag(target):
    """A will with Will Retain 1 is published as a retained message, one with Will Retain 0
    is not [MQTT-3.1.2-14] [MQTT-3.1.2-15]."""
    base = target.label("willretain")
    watcher = Peer(target, base + "-watch")
    watcher.connect()
    watcher.subscribe(base + "/#", qos=1)
    _kill_with_will(target, "willretain-a", {"topic": base + "/kept", "payload": "kept",
                                             "retain": True})
    _kill_with_will(target, "willretain-b", {"topic": base + "/plain", "payload": "plain",
                                             "retain": False})
    # Both wills published: only then can a late subscriber tell retained from not.
    got = sorted(watcher.next_message(f"will {n}").payload for n in range(2))
    check(got == [b"kept", b"plain"], f"wills published: {got}")
    late = Peer(target, base + "-late")
    late.connect()
    late.subscribe(base + "/#", qos=1)
    first = late.next_message("the retained will")
    check(first.payload == b"kept" and first.retain, f"got {first.payload!r}, {first.retain}")
    watcher.publish(base + "/marker", b"marker", qos=1)
    check(late.next_message("the marker").payload == b"marker",
          "the will with Will Retain 0 was retained")
    watcher.publish(base + "/kept", b"", qos=1, retain=True)
    watcher.disconnect()
    late.disconnect()


def mqtt_3_1_3_10_will_user_properties_keep_their_order(target):
    """The will is published with its User Properties unchanged and in order [MQTT-3.1.3-10]."""
    topic = target.label("willprops") + "/status"
    watcher = Peer(target, target.label("willprops-watch"))
    watcher.connect()
    watcher.subscribe(topic, qos=1)
    user = [["reason", "power"], ["site", "b7"], ["reason", "battery"]]
    _kill_with_will(target, "willprops", {"topic": topic, "payload": "gone", "user": user})
    will = watcher.next_message("the will")
    check(will.properties.UserProperty == [tuple(pair) for pair in user],
          f"will user properties {will.properties.UserProperty}")
    watcher.disconnect()


def mqtt_3_3_1_8_publish_without_retain_leaves_the_retained_message(target):
    """A PUBLISH with RETAIN 0 neither stores nor replaces nor removes the retained message
    of its topic [MQTT-3.3.1-8]; one with RETAIN 1 replaces it [MQTT-3.3.1-5]."""
    topic = target.label("keepret") + "/state"
    pub = Peer(target, target.label("keepret-pub"))
    pub.connect()
    pub.publish(topic, b"retained", qos=1, retain=True)
    pub.publish(topic, b"live", qos=1, retain=False)
    pub.publish(topic, b"", qos=1, retain=False)
    sub = Peer(target, target.label("keepret-sub"))
    sub.connect()
    sub.subscribe(topic, qos=1)
    got = sub.next_message("the retained message")
    check(got.payload == b"retained" and got.retain, f"retained message now {got.payload!r}")
    pub.publish(topic, b"", qos=1, retain=True)
    pub.disconnect()
    sub.disconnect()


def mqtt_4_7_3_4_topics_match_without_normalisation(target):
    """Matching compares topic levels character by character: no case folding, no Unicode
    normalisation [MQTT-4.7.3-4]."""
    base = target.label("norm")
    sub = Peer(target, base + "-sub")
    sub.connect()
    sub.subscribe(base + "/Accounts/+", qos=1)
    sub.subscribe(base + "/caf\u00e9/#", qos=1)
    pub = Peer(target, base + "-pub")
    pub.connect()
    pub.publish(base + "/ACCOUNTS/x", b"upper case", qos=1)
    pub.publish(base + "/cafe\u0301/x", b"decomposed", qos=1)
    pub.publish(base + "/Accounts/x", b"exact", qos=1)
    pub.publish(base + "/caf\u00e9/x", b"precomposed", qos=1)
    got = [sub.next_message(f"message {n}").payload for n in range(2)]
    check(got == [b"exact", b"precomposed"], f"matched {got}")
    pub.disconnect()
    sub.disconnect()


def mqtt_3_1_2_28_no_response_information_unless_requested(target):
    """A client that does not ask for Response Information gets none [MQTT-3.1.2-28]."""
    for request in (None, 0):
        connect_props = None
        if request is not None:
            connect_props = properties(PacketTypes.CONNECT, RequestResponseInformation=request)
        peer = Peer(target, target.label("respinfo"), connect_properties=connect_props)
        _, _, props = peer.connect()
        check(getattr(props, "ResponseInformation", None) is None,
              f"CONNACK carries Response Information {props}")
        peer.disconnect()


def mqtt_3_1_2_29_no_reason_string_on_acknowledgements(target):
    """With Request Problem Information 0, acknowledgements carry no Reason String or User
    Property, even when their reason code says something went wrong [MQTT-3.1.2-29]."""
    peer = Peer(target, target.label("probinfo"),
                connect_properties=properties(PacketTypes.CONNECT,
                                              RequestProblemInformation=0))
    acks = queue.Queue()
    peer.client.on_publish = lambda _c, _u, _mid, code, props: acks.put((code.value, props))
    peer.connect()
    peer.client.publish(target.label("probinfo") + "/nobody", b"x", qos=1)
    code, props = take(acks, "PUBACK")
    check(code == 0x10, f"PUBACK {code:#x}, expected 0x10 No matching subscribers")
    check(getattr(props, "ReasonString", None) is None, "PUBACK carries a Reason String")
    check(not getattr(props, "UserProperty", None), "PUBACK carries User Properties")
    peer.disconnect()


def mqtt_3_2_2_9_maximum_qos_is_announced(target):
    """A broker that supports QoS up to 1 says so in CONNACK [MQTT-3.2.2-9]."""
    peer = Peer(target, target.label("maxqos"))
    _, _, props = peer.connect()
    check(getattr(props, "MaximumQoS", None) == 1, f"CONNACK Maximum QoS {props}")
    check(getattr(props, "RetainAvailable", None) == 0, f"CONNACK Retain Available {props}")
    peer.disconnect()


def mqtt_3_2_2_10_subscribe_at_qos_2_is_granted_the_maximum(target):
    """SUBSCRIBE with QoS 2 is still accepted by a QoS 1 broker, granted QoS 1
    [MQTT-3.2.2-10], and messages arrive at QoS 1 [MQTT-3.8.4-8]."""
    topic = target.label("grant") + "/t"
    peer = Peer(target, target.label("grant"))
    peer.connect()
    check(peer.subscribe(topic, qos=2) == [1], "SUBACK did not grant QoS 1")
    peer.publish(topic, b"x", qos=1)
    check(peer.next_message("its own message").qos == 1, "delivered above the granted QoS")
    peer.disconnect()


def mqtt_3_2_2_12_will_qos_above_the_maximum_is_refused_with_0x9b(target):
    """A will at a QoS the broker does not support is refused with CONNACK 0x9B
    [MQTT-3.2.2-12]."""
    peer = Peer(target, target.label("willqos"),
                will={"topic": "status", "payload": "gone", "qos": 2})
    _, reason, _ = peer.try_connect()
    check(reason == 0x9B, f"CONNACK {reason:#x}, expected 0x9b")
    peer.stop()


def mqtt_3_2_2_13_retained_will_without_retain_support_is_refused_with_0x9a(target):
    """A retained will on a broker without retained messages is refused with CONNACK 0x9A
    [MQTT-3.2.2-13]."""
    peer = Peer(target, target.label("willret"),
                will={"topic": "status", "payload": "gone", "qos": 1, "retain": True})
    _, reason, _ = peer.try_connect()
    check(reason == 0x9A, f"CONNACK {reason:#x}, expected 0x9a")
    peer.stop()
