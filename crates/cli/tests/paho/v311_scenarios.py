"""MQTT 3.1.1 scenarios a paho-mqtt client plays against the broker: QoS 0/1/2 round trips,
retained messages, the will of a lost connection, a persistent session (Clean Session 0)
that queues while offline, an empty client id and session takeover. 3.1.1 has no reason
codes or properties, so the checks are on what arrives and on Session Present."""

import paho.mqtt.client as mqtt

from peer import Peer, check, spawn_held_connection, take

V311 = mqtt.MQTTv311


def qos_round_trips(target):
    """Each QoS is delivered at the lower of the publish and subscription QoS
    [MQTT-3.3.4-1] [MQTT-3.8.4-6]."""
    topic = target.label("v3q") + "/data"
    sub = Peer(target, target.label("v3q-sub"), protocol=V311)
    sub.connect()
    check(sub.subscribe(topic, qos=2) == [2], "SUBACK did not grant QoS 2")
    pub = Peer(target, target.label("v3q-pub"), protocol=V311)
    pub.connect()
    for qos in (0, 1, 2):
        pub.publish(topic, f"qos{qos}".encode(), qos=qos)
        got = sub.next_message(f"the QoS {qos} message")
        check(got.payload == f"qos{qos}".encode() and got.qos == qos,
              f"QoS {qos} arrived as {got.payload!r} with QoS {got.qos}")
        check(not got.retain, "a live message to an established subscription has RETAIN 0")
    pub.disconnect()
    sub.disconnect()


def retained_messages(target):
    """A retained message is sent with RETAIN 1 to new subscribers, replaced by the next
    one and removed by an empty payload [MQTT-3.3.1-5] [MQTT-3.3.1-8] [MQTT-3.3.1-10]
    (3.1.1 numbering)."""
    topic = target.label("v3r") + "/state"
    pub = Peer(target, target.label("v3r-pub"), protocol=V311)
    pub.connect()
    pub.publish(topic, b"old", qos=1, retain=True)
    pub.publish(topic, b"new", qos=1, retain=True)
    sub = Peer(target, target.label("v3r-sub"), protocol=V311)
    sub.connect()
    sub.subscribe(topic, qos=1)
    got = sub.next_message("the retained message")
    check(got.payload == b"new" and got.retain, f"got {got.payload!r}, retain {got.retain}")
    pub.publish(topic, b"", qos=1, retain=True)
    check(sub.next_message("the deletion").payload == b"", "the empty retained message is sent")
    late = Peer(target, target.label("v3r-late"), protocol=V311)
    late.connect()
    late.subscribe(topic, qos=1)
    pub.publish(topic, b"live", qos=1)
    check(late.next_message("the live message").payload == b"live",
          "a deleted retained message was still delivered")
    for peer in (pub, sub, late):
        peer.disconnect()


def will_on_lost_connection(target):
    """The will of a connection lost without DISCONNECT is published [MQTT-3.1.2-8]."""
    will_topic = target.label("v3w") + "/status"
    watcher = Peer(target, target.label("v3w-watch"), protocol=V311)
    watcher.connect()
    watcher.subscribe(will_topic, qos=1)
    held = spawn_held_connection(target, target.label("v3w"), V311,
                                 {"topic": will_topic, "payload": "offline"})
    held.kill()
    held.wait()
    got = watcher.next_message("the will")
    check(got.payload == b"offline", f"will payload {got.payload!r}")
    watcher.disconnect()


def persistent_session(target):
    """Clean Session 0 keeps subscriptions and queues QoS 1 messages while offline, with
    Session Present 1 on return [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2]; Clean
    Session 1 then discards it [MQTT-3.1.2-6]."""
    topic = target.label("v3p") + "/cmd"
    client_id = target.label("v3p-sub")
    sub = Peer(target, client_id, protocol=V311, clean_start=False)
    sub.connect()
    sub.subscribe(topic, qos=1)
    sub.disconnect()
    pub = Peer(target, target.label("v3p-pub"), protocol=V311)
    pub.connect()
    pub.publish(topic, b"while-away", qos=1)
    back = Peer(target, client_id, protocol=V311, clean_start=False)
    present, _, _ = back.connect()
    check(present, "Session Present 0 for a stored session")
    check(back.next_message("the queued message").payload == b"while-away", "queue lost")
    back.disconnect()
    clean = Peer(target, client_id, protocol=V311, clean_start=True)
    present, _, _ = clean.connect()
    check(not present, "Session Present 1 with Clean Session 1")
    clean.disconnect()
    pub.disconnect()


def empty_client_id(target):
    """An empty client id with Clean Session 1 is accepted [MQTT-3.1.3-6]."""
    peer = Peer(target, "", protocol=V311, clean_start=True)
    present, _, _ = peer.connect()
    check(not present, "Session Present 1 for a new session")
    topic = target.label("v3e") + "/t"
    peer.subscribe(topic, qos=1)
    peer.publish(topic, b"me", qos=1)
    check(peer.next_message("its own message").payload == b"me", "connection unusable")
    peer.disconnect()


def takeover(target):
    """A second connection with the same client id closes the first [MQTT-3.1.4-2]
    (3.1.1 numbering); the new one works."""
    client_id = target.label("v3twin")
    first = Peer(target, client_id, protocol=V311)
    first.connect()
    second = Peer(target, client_id, protocol=V311)
    second.connect()
    take(first.disconnects, "the close of the old connection")
    first.stop()
    topic = target.label("v3twin") + "/t"
    second.subscribe(topic, qos=1)
    second.publish(topic, b"ok", qos=1)
    check(second.next_message("its own message").payload == b"ok", "new connection broken")
    second.disconnect()
