"""MQTT 5.0 scenarios a paho-mqtt client plays against the broker: properties forwarded
unchanged, request/response, shared subscriptions, wills with a delay, session expiry, topic
aliases, subscription options (retain handling, retain as published, no local),
subscription identifiers, QoS 2, assigned client identifiers and session takeover. Each
scenario takes a `Target` and raises `ScenarioFailed` when the broker misbehaves.

Where a scenario must show that something does *not* arrive, it does not sleep: it sends a
marker message after the point where the unwanted message would have been queued, and checks
that the marker comes first, because the broker delivers to one session in order."""

import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes

from peer import WAIT, Peer, check, properties, spawn_held_connection

PUBLISH = PacketTypes.PUBLISH


def properties_pass_through(target):
    """User properties (order and repeats kept), content type, payload format indicator,
    response topic and correlation data reach the subscriber unchanged [MQTT-3.3.2-4]
    [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]."""
    topic = target.label("props") + "/reading"
    sub = Peer(target, target.label("props-sub"))
    sub.connect()
    sub.subscribe(topic + "/#", qos=1)
    sub.subscribe(topic, qos=1)
    pub = Peer(target, target.label("props-pub"))
    pub.connect()
    user = [("unit", "C"), ("site", "north"), ("unit", "K")]
    sent = properties(PUBLISH, UserProperty=user, ContentType="application/json",
                      PayloadFormatIndicator=1, ResponseTopic=topic + "/reply",
                      CorrelationData=b"\x00\x01\xfe", MessageExpiryInterval=300)
    pub.publish(topic, b'{"t": 21.5}', qos=1, props=sent)
    got = sub.next_message("the published message")
    check(got.payload == b'{"t": 21.5}', f"payload changed: {got.payload!r}")
    received = got.properties
    check(received.UserProperty == user, f"user properties changed: {received.UserProperty}")
    check(received.ContentType == "application/json", f"content type: {received.ContentType}")
    check(received.PayloadFormatIndicator == 1, "payload format indicator lost")
    check(received.ResponseTopic == topic + "/reply", f"response topic: {received.ResponseTopic}")
    check(received.CorrelationData == b"\x00\x01\xfe", "correlation data changed")
    check(0 < received.MessageExpiryInterval <= 300,
          f"expiry interval {received.MessageExpiryInterval} not within (0, 300]")
    # Two matching subscriptions of one session give one copy [MQTT-3.3.4-2]: the marker
    # published next must be the next message.
    pub.publish(topic, b"marker", qos=1)
    check(sub.next_message("the marker").payload == b"marker", "a second copy was delivered")
    pub.disconnect()
    sub.disconnect()


def request_response(target):
    """A responder answers on the Response Topic with the request's Correlation Data, and the
    requester matches the answer by it [MQTT-3.3.2-15] [MQTT-3.3.2-16]."""
    service = target.label("svc") + "/time"
    responder = Peer(target, target.label("responder"))
    responder.connect()
    responder.subscribe(service, qos=1)
    requester = Peer(target, target.label("requester"))
    requester.connect()
    reply_topic = target.label("svc") + "/replies/requester"
    requester.subscribe(reply_topic, qos=1)
    for n in range(3):
        correlation = f"req-{n}".encode()
        requester.publish(service, b"now?", qos=1,
                          props=properties(PUBLISH, ResponseTopic=reply_topic,
                                           CorrelationData=correlation))
        request = responder.next_message("the request")
        check(request.properties.ResponseTopic == reply_topic, "response topic changed")
        responder.publish(request.properties.ResponseTopic, f"answer-{n}".encode(), qos=1,
                          props=properties(PUBLISH,
                                           CorrelationData=request.properties.CorrelationData))
        reply = requester.next_message("the reply")
        check(reply.properties.CorrelationData == correlation,
              f"reply correlates with {reply.properties.CorrelationData!r}, not {correlation!r}")
        check(reply.payload == f"answer-{n}".encode(), f"reply payload {reply.payload!r}")
    requester.disconnect()
    responder.disconnect()


def message_expiry_decremented(target):
    """A retained message that waited in the broker goes out with its expiry interval reduced
    by the time it waited [MQTT-3.3.2-6]. The wait is the behaviour under test."""
    topic = target.label("expiry") + "/reading"
    pub = Peer(target, target.label("expiry-pub"))
    pub.connect()
    pub.publish(topic, b"short-lived", qos=1, retain=True,
                props=properties(PUBLISH, MessageExpiryInterval=30))
    time.sleep(1.2)
    sub = Peer(target, target.label("expiry-sub"))
    sub.connect()
    sub.subscribe(topic, qos=1)
    got = sub.next_message("the retained message")
    check(got.retain, "a retained message delivered on subscribe must carry RETAIN")
    check(got.properties.MessageExpiryInterval <= 29,
          f"expiry interval {got.properties.MessageExpiryInterval} not decremented")
    pub.publish(topic, b"", qos=1, retain=True)
    pub.disconnect()
    sub.disconnect()


def shared_subscription(target):
    """`$share/group/filter` hands each message to one member of the group, every member gets
    some, and an ordinary subscriber still gets all of them [MQTT-4.8.2-1]."""
    topic = target.label("jobs") + "/queue"
    members = []
    for n in range(2):
        member = Peer(target, target.label(f"worker{n}"))
        member.connect()
        member.subscribe(f"$share/workers/{topic}", qos=1)
        members.append(member)
    watcher = Peer(target, target.label("jobs-watcher"))
    watcher.connect()
    watcher.subscribe(topic, qos=1)
    pub = Peer(target, target.label("jobs-pub"))
    pub.connect()
    count = 10
    for n in range(count):
        pub.publish(topic, f"job-{n}".encode(), qos=1)
    seen = [watcher.next_message(f"job {n} at the watcher").payload for n in range(count)]
    check(seen == [f"job-{n}".encode() for n in range(count)], f"watcher saw {seen}")
    # Every job went to exactly one member: collect what the group received, bounded.
    per_member = [[] for _ in members]
    deadline = time.monotonic() + WAIT
    while sum(map(len, per_member)) < count and time.monotonic() < deadline:
        for index, member in enumerate(members):
            try:
                per_member[index].append(member.messages.get(timeout=0.02).payload)
            except queue.Empty:
                pass
    everything = sorted(p for part in per_member for p in part)
    check(everything == sorted(f"job-{n}".encode() for n in range(count)),
          f"group received {everything}")
    check(all(per_member), f"a member received nothing: {[len(p) for p in per_member]}")
    pub.disconnect()
    watcher.disconnect()
    for member in members:
        member.disconnect()


def _will_watcher(target, name):
    watcher = Peer(target, target.label(name + "-watch"))
    watcher.connect()
    watcher.subscribe(target.label(name) + "/#", qos=1)
    return watcher


def will_delay_on_lost_connection(target):
    """A lost connection with Will Delay 1 s publishes the will after the delay, not before
    [MQTT-3.1.2-8]."""
    name = "willdelay"
    watcher = _will_watcher(target, name)
    will_topic = target.label(name) + "/status"
    held = spawn_held_connection(target, target.label(name), mqtt.MQTTv5,
                                 {"topic": will_topic, "payload": "gone", "delay": 1},
                                 session_expiry=30)
    lost_at = time.monotonic()
    held.kill()
    held.wait()
    will = watcher.next_message("the will")
    waited = time.monotonic() - lost_at
    check(will.topic == will_topic and will.payload == b"gone", f"unexpected {will.topic}")
    check(waited >= 0.9, f"the will came {waited:.2f} s after the loss, before its 1 s delay")
    watcher.disconnect()


def will_cancelled_by_resumed_session(target):
    """A session resumed before the Will Delay ends cancels the will [MQTT-3.1.3-9]."""
    name = "willcancel"
    watcher = _will_watcher(target, name)
    held = spawn_held_connection(target, target.label(name), mqtt.MQTTv5,
                                 {"topic": target.label(name) + "/status", "payload": "gone",
                                  "delay": 2},
                                 session_expiry=30)
    held.kill()
    held.wait()
    again = Peer(target, target.label(name), clean_start=False, session_expiry=30)
    present, _, _ = again.connect()
    check(present, "the session was not kept for the reconnect")
    # Outlive the delay the will had, then show the marker is the first thing to arrive.
    time.sleep(2.5)
    again.publish(target.label(name) + "/marker", b"still here", qos=1)
    first = watcher.next_message("the marker")
    check(first.payload == b"still here", f"the cancelled will arrived: {first.topic}")
    again.disconnect()
    watcher.disconnect()


def _will_after_disconnect(target, name, reason):
    """Connects with a will, disconnects with `reason`, reconnects under the same id and
    publishes a marker; returns the first message the watcher sees."""
    watcher = _will_watcher(target, name)
    client_id = target.label(name)
    peer = Peer(target, client_id, session_expiry=30,
                will={"topic": target.label(name) + "/status", "payload": "gone", "qos": 1})
    peer.connect()
    peer.disconnect(reason=reason)
    # The broker has finished with the old connection once it answers this CONNECT for the
    # same session, so a will it was going to publish is queued before the marker.
    again = Peer(target, client_id, clean_start=False, session_expiry=0)
    again.connect()
    again.publish(target.label(name) + "/marker", b"marker", qos=1)
    first = watcher.next_message("the first message")
    again.disconnect()
    watcher.disconnect()
    return first


def will_not_sent_on_normal_disconnect(target):
    """DISCONNECT 0x00 discards the will [MQTT-3.1.2-10] [MQTT-3.14.4-3]."""
    first = _will_after_disconnect(target, "willnormal", 0x00)
    check(first.payload == b"marker",
          f"the will was published after DISCONNECT 0x00: {first.topic}")


def will_sent_on_disconnect_with_will(target):
    """DISCONNECT 0x04 (Disconnect with Will Message) publishes the will."""
    first = _will_after_disconnect(target, "willreason", 0x04)
    check(first.payload == b"gone", f"expected the will first, got {first.payload!r}")


def session_expiry_keeps_offline_messages(target):
    """QoS 1 messages published while a session with a Session Expiry Interval is offline are
    delivered, in order, when it resumes [MQTT-3.1.2-23] [MQTT-3.1.2-5] [MQTT-3.2.2-3]."""
    topic = target.label("offline") + "/cmd"
    client_id = target.label("offline-sub")
    sub = Peer(target, client_id, session_expiry=60)
    sub.connect()
    sub.subscribe(topic, qos=1)
    sub.disconnect()
    pub = Peer(target, target.label("offline-pub"))
    pub.connect()
    for n in range(3):
        pub.publish(topic, f"cmd-{n}".encode(), qos=1)
    back = Peer(target, client_id, clean_start=False, session_expiry=0)
    present, _, _ = back.connect()
    check(present, "Session Present was 0 for a live session")
    got = [back.next_message(f"queued message {n}") for n in range(3)]
    check([m.payload for m in got] == [b"cmd-0", b"cmd-1", b"cmd-2"], f"got {got}")
    check(all(m.qos == 1 for m in got), "queued messages lost their QoS")
    back.disconnect()
    pub.disconnect()


def session_gone_after_expiry(target):
    """A session whose Session Expiry Interval has passed is discarded with its
    subscriptions and queue [MQTT-4.1.0-2]; the one-second expiry is the behaviour tested."""
    topic = target.label("expire") + "/cmd"
    client_id = target.label("expire-sub")
    sub = Peer(target, client_id, session_expiry=1)
    sub.connect()
    sub.subscribe(topic, qos=1)
    sub.disconnect()
    pub = Peer(target, target.label("expire-pub"))
    pub.connect()
    pub.publish(topic, b"too late", qos=1)
    time.sleep(2.0)
    back = Peer(target, client_id, clean_start=False, session_expiry=0)
    present, _, _ = back.connect()
    check(not present, "the expired session was resumed")
    back.subscribe(target.label("expire") + "/marker", qos=1)
    pub.publish(target.label("expire") + "/marker", b"marker", qos=1)
    first = back.next_message("the marker")
    check(first.payload == b"marker", f"a message of the expired session arrived: {first.topic}")
    back.disconnect()
    pub.disconnect()


def topic_alias_from_client(target):
    """A client may set a Topic Alias with a topic and then publish by alias alone; the
    subscriber gets the full topic name every time [MQTT-3.3.2-12]."""
    topic = target.label("alias") + "/a/rather/long/topic/name"
    sub = Peer(target, target.label("alias-sub"))
    sub.connect()
    sub.subscribe(topic, qos=1)
    pub = Peer(target, target.label("alias-pub"))
    _, _, connack = pub.connect()
    check(getattr(connack, "TopicAliasMaximum", 0) >= 1, "broker offers no topic aliases")
    pub.publish(topic, b"first", qos=1, props=properties(PUBLISH, TopicAlias=1))
    pub.publish("", b"second", qos=1, props=properties(PUBLISH, TopicAlias=1))
    pub.publish("", b"third", qos=0, props=properties(PUBLISH, TopicAlias=1))
    for payload in (b"first", b"second", b"third"):
        got = sub.next_message(payload.decode())
        check(got.topic == topic, f"alias not resolved: topic {got.topic!r}")
        check(got.payload == payload, f"got {got.payload!r}, expected {payload!r}")
    pub.disconnect()
    sub.disconnect()
