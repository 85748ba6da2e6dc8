"""MQTT 5.0 scenarios about subscriptions and connections that a paho-mqtt client plays
against the broker: retain handling 0/1/2, retain as published, no local, subscription
identifiers, QoS 2 delivered exactly once, assigned client identifiers and session takeover.
Absence is shown with a marker message published after the point where the unwanted message
would have been sent, never with a sleep."""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from peer import Peer, check, properties, take

SUBSCRIBE = PacketTypes.SUBSCRIBE


def _first_after_subscribe(peer, filter_, options, marker_topic, publisher):
    """Subscribes with `options`, then publishes a live marker; returns the first message."""
    peer.subscribe(filter_, options=options)
    publisher.publish(marker_topic, b"live", qos=1)
    return peer.next_message("a message after SUBACK")


def retain_handling(target):
    """Retain Handling 0 sends retained messages on every subscribe, 1 only when the
    subscription is new, 2 never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]."""
    topic = target.label("rh") + "/state"
    pub = Peer(target, target.label("rh-pub"))
    pub.connect()
    pub.publish(topic, b"retained", qos=1, retain=True)
    sub = Peer(target, target.label("rh-sub"))
    sub.connect()

    def first(handling):
        got = _first_after_subscribe(sub, topic,
                                     SubscribeOptions(qos=1, retainHandling=handling),
                                     topic, pub)
        if got.payload == b"retained":
            check(got.retain, "a retained message sent on subscribe must carry RETAIN")
            live = sub.next_message("the live marker")
            check(live.payload == b"live", f"expected the marker, got {live.payload!r}")
        return got.payload

    check(first(SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE) == b"retained",
          "Retain Handling 0 did not send the retained message")
    check(first(SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE) == b"retained",
          "Retain Handling 0 did not send it again for a replaced subscription")
    check(first(SubscribeOptions.RETAIN_SEND_IF_NEW_SUB) == b"live",
          "Retain Handling 1 sent the retained message for an existing subscription")
    check(first(SubscribeOptions.RETAIN_DO_NOT_SEND) == b"live",
          "Retain Handling 2 sent the retained message")
    sub.unsubscribe(topic)
    check(first(SubscribeOptions.RETAIN_SEND_IF_NEW_SUB) == b"retained",
          "Retain Handling 1 did not send the retained message for a new subscription")
    pub.publish(topic, b"", qos=1, retain=True)
    pub.disconnect()
    sub.disconnect()


def retain_as_published(target):
    """Live messages keep their RETAIN flag only for Retain As Published subscriptions
    [MQTT-3.3.1-12] [MQTT-3.3.1-13]."""
    topic = target.label("rap") + "/state"
    keeps = Peer(target, target.label("rap-keep"))
    keeps.connect()
    keeps.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
    clears = Peer(target, target.label("rap-clear"))
    clears.connect()
    clears.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=False))
    pub = Peer(target, target.label("rap-pub"))
    pub.connect()
    pub.publish(topic, b"flagged", qos=1, retain=True)
    pub.publish(topic, b"plain", qos=1, retain=False)
    kept = [keeps.next_message("flagged"), keeps.next_message("plain")]
    cleared = [clears.next_message("flagged"), clears.next_message("plain")]
    check([m.retain for m in kept] == [True, False], f"Retain As Published 1: {kept}")
    check([m.retain for m in cleared] == [False, False], f"Retain As Published 0: {cleared}")
    pub.publish(topic, b"", qos=1, retain=True)
    for peer in (pub, keeps, clears):
        peer.disconnect()


def no_local(target):
    """With No Local a client does not get its own messages back; others still do
    [MQTT-3.8.3-3]."""
    topic = target.label("nl") + "/chat"
    marker = target.label("nl") + "/marker"
    talker = Peer(target, target.label("nl-talker"))
    talker.connect()
    talker.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
    talker.subscribe(marker, qos=1)
    listener = Peer(target, target.label("nl-listener"))
    listener.connect()
    listener.subscribe(topic, qos=1)
    talker.publish(topic, b"hello", qos=1)
    talker.publish(marker, b"marker", qos=1)
    check(listener.next_message("the chat message").payload == b"hello", "listener missed it")
    first = talker.next_message("the marker")
    check(first.topic == marker, f"No Local echoed the client's own message on {first.topic}")
    talker.disconnect()
    listener.disconnect()


def subscription_identifiers(target):
    """A message matching two subscriptions with identifiers carries both identifiers
    [MQTT-3.3.4-3] [MQTT-3.3.4-4]; one matching a single subscription carries its own."""
    base = target.label("sid")
    sub = Peer(target, target.label("sid-sub"))
    sub.connect()
    sub.subscribe(base + "/+", qos=1, props=properties(SUBSCRIBE, SubscriptionIdentifier=5))
    sub.subscribe(base + "/#", qos=1, props=properties(SUBSCRIBE, SubscriptionIdentifier=900))
    pub = Peer(target, target.label("sid-pub"))
    pub.connect()
    pub.publish(base + "/a", b"both", qos=1)
    pub.publish(base + "/a/b", b"deep", qos=1)
    ids = []
    while True:
        got = sub.next_message("a message")
        if got.payload == b"deep":
            check(got.properties.SubscriptionIdentifier == [900],
                  f"deep topic carried {got.properties.SubscriptionIdentifier}")
            break
        ids += got.properties.SubscriptionIdentifier
    check(sorted(ids) == [5, 900], f"overlapping subscriptions carried {ids}")
    pub.disconnect()
    sub.disconnect()


def qos2_exactly_once(target):
    """QoS 2 messages arrive exactly once each, in order, with QoS 2 [MQTT-4.3.3-10]."""
    topic = target.label("q2") + "/ledger"
    sub = Peer(target, target.label("q2-sub"))
    sub.connect()
    codes = sub.subscribe(topic, qos=2)
    check(codes == [2], f"SUBACK granted {codes}, expected QoS 2")
    pub = Peer(target, target.label("q2-pub"))
    pub.connect()
    count = 20
    for n in range(count):
        pub.publish(topic, f"entry-{n}".encode(), qos=2)
    pub.publish(topic, b"end", qos=2)
    got = []
    while True:
        message = sub.next_message("a ledger entry")
        if message.payload == b"end":
            break
        check(message.qos == 2, f"delivered with QoS {message.qos}")
        got.append(message.payload)
    check(got == [f"entry-{n}".encode() for n in range(count)], f"delivered {got}")
    pub.disconnect()
    sub.disconnect()


def assigned_client_identifier(target):
    """An empty client id gets an Assigned Client Identifier, unique per connection
    [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16]."""
    assigned = []
    peers = []
    for _ in range(2):
        peer = Peer(target, "")
        _, _, props = peer.connect()
        identifier = getattr(props, "AssignedClientIdentifier", None)
        check(identifier, "CONNACK carries no Assigned Client Identifier")
        assigned.append(identifier)
        peers.append(peer)
    check(assigned[0] != assigned[1], f"both connections were assigned {assigned[0]}")
    for peer in peers:
        peer.disconnect()


def takeover(target):
    """A second connection with the same client id takes the session over; the first gets
    DISCONNECT 0x8E (Session taken over) [MQTT-3.1.4-3]."""
    client_id = target.label("twin")
    first = Peer(target, client_id)
    first.connect()
    second = Peer(target, client_id)
    second.connect()
    reason = take(first.disconnects, "DISCONNECT for the old connection")
    check(reason == 0x8E, f"the old connection ended with {reason:#x}, expected 0x8e")
    first.stop()
    # The new connection is the one in service.
    topic = target.label("twin") + "/ping"
    second.subscribe(topic, qos=1)
    second.publish(topic, b"pong", qos=1)
    check(second.next_message("its own message").payload == b"pong", "new connection broken")
    second.disconnect()


def unsubscribe_stops_delivery(target):
    """UNSUBSCRIBE removes exactly the named filter and is answered per filter: 0x00 for a
    subscription that existed, 0x11 (No subscription existed) for one that did not; later
    messages on the removed filter stop [MQTT-3.10.4-1] [MQTT-3.10.4-2] [MQTT-3.11.3-1]."""
    topic = target.label("unsub") + "/t"
    marker = target.label("unsub") + "/marker"
    sub = Peer(target, target.label("unsub-sub"))
    sub.connect()
    sub.subscribe(topic, qos=1)
    sub.subscribe(marker, qos=1)
    check(sub.unsubscribe(topic) == [0x00], "UNSUBACK for an existing subscription")
    check(sub.unsubscribe(topic) == [0x11], "UNSUBACK for a subscription already removed")
    pub = Peer(target, target.label("unsub-pub"))
    pub.connect()
    pub.publish(topic, b"unwanted", qos=1)
    pub.publish(marker, b"marker", qos=1)
    first = sub.next_message("the marker")
    check(first.topic == marker, f"a message on the removed subscription arrived: {first.topic}")
    pub.disconnect()
    sub.disconnect()
