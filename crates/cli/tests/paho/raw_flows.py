"""Raw-byte MQTT 5.0 scenarios about per-connection state: topic aliases that must not
outlive their connection, and a full Receive Maximum window that may hold back PUBLISH
packets but nothing else. Each scenario is named after the statement it checks."""

from peer import Peer, check
from raw_packets import (PINGREQ, PINGRESP, PROTOCOL_ERROR, SUBACK, SUBSCRIBE, RawConnection,
                         packet, string, subscribe_body, varint)

PUBLISH_QOS0, PUBACK = 0x30, 0x40


def _publish_with_alias(topic, alias, payload):
    props = bytes([0x23]) + alias.to_bytes(2, "big")
    return packet(PUBLISH_QOS0, string(topic) + varint(len(props)) + props + payload)


def mqtt_3_3_2_7_topic_aliases_do_not_survive_a_reconnect(target):
    """A Topic Alias set on one connection means nothing on the next one, even for the same
    session: publishing by that alias alone is a protocol error [MQTT-3.3.2-7]."""
    topic = target.label("alias7") + "/t"
    watcher = Peer(target, target.label("alias7-watch"))
    watcher.connect()
    watcher.subscribe(topic, qos=1)
    first = RawConnection(target, target.label("alias7"), session_expiry=60)
    first.send(_publish_with_alias(topic, 1, b"set"))
    first.send(_publish_with_alias("", 1, b"by alias"))
    for payload in (b"set", b"by alias"):
        check(watcher.next_message(payload.decode()).payload == payload, "alias not resolved")
    first.close()
    second = RawConnection(target, target.label("alias7"), clean_start=False, session_expiry=60)
    check(second.session_present, "the session was not kept")
    second.send(_publish_with_alias("", 1, b"stale alias"))
    second.expect_disconnect_and_close(PROTOCOL_ERROR, "an alias of the previous connection")
    watcher.disconnect()


def mqtt_3_3_4_10_a_full_window_holds_back_only_publishes(target):
    """With the client's Receive Maximum of 1 used up, the broker sends no further QoS 1
    PUBLISH [MQTT-3.3.4-9] but still answers PINGREQ and SUBSCRIBE [MQTT-3.3.4-10]
    [MQTT-4.9.0-3]; the PUBACK releases the next PUBLISH."""
    topic = target.label("window") + "/t"
    sub = RawConnection(target, target.label("window-sub"), receive_maximum=1)
    sub.subscribe(topic, 1)
    pub = Peer(target, target.label("window-pub"))
    pub.connect()
    pub.publish(topic, b"one", qos=1)
    pub.publish(topic, b"two", qos=1)
    _, first_id, payload = sub.read_publish()
    check(payload == b"one", f"first delivery {payload!r}")
    sub.send(packet(PINGREQ, b""))
    check(sub.read() == (PINGRESP, b""), "PINGREQ not answered next while the window is full")
    sub.send(packet(SUBSCRIBE, subscribe_body(7, target.label("window") + "/other", 1)))
    kind, body = sub.read()
    check(kind == SUBACK and body[:2] == (7).to_bytes(2, "big"),
          f"SUBSCRIBE not answered next while the window is full: {kind:#x}")
    sub.send(packet(PUBACK, first_id))
    _, _, payload = sub.read_publish()
    check(payload == b"two", f"second delivery {payload!r}")
    sub.close()
    pub.disconnect()
