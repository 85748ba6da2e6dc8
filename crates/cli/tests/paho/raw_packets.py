"""Scenarios that need bytes no well-behaved client library sends: a raw TCP connection
speaking MQTT 5.0 packet by packet, to check how the broker answers PINGREQ and protocol
violations (malformed fixed headers, properties a client must not send, options that are a
protocol error). Each scenario is named after the normative statement it checks."""

import socket

from peer import WAIT, Peer, check

CONNECT, CONNACK, SUBSCRIBE, SUBACK = 0x10, 0x20, 0x82, 0x90
PINGREQ, PINGRESP, DISCONNECT, PUBLISH_QOS1 = 0xC0, 0xD0, 0xE0, 0x32

MALFORMED_PACKET, PROTOCOL_ERROR = 0x81, 0x82


def varint(value):
    """A Variable Byte Integer (1.5.5)."""
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def string(text):
    """A UTF-8 Encoded String (1.5.4)."""
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def packet(first_byte, body):
    """A control packet: fixed header byte, Remaining Length, body."""
    return bytes([first_byte]) + varint(len(body)) + body


class RawConnection:
    """An MQTT 5.0 connection driven byte by byte."""

    def __init__(self, target, client_id, clean_start=True, session_expiry=0,
                 receive_maximum=None):
        self.sock = socket.create_connection((target.host, target.port), timeout=WAIT)
        flags = 0x02 if clean_start else 0x00
        props = bytes([0x11]) + session_expiry.to_bytes(4, "big") if session_expiry else b""
        if receive_maximum is not None:
            props += bytes([0x21]) + receive_maximum.to_bytes(2, "big")
        body = string("MQTT") + bytes([5, flags]) + (30).to_bytes(2, "big")
        body += varint(len(props)) + props
        self.sock.sendall(packet(CONNECT, body + string(client_id)))
        kind, body = self.read()
        check(kind == CONNACK and len(body) >= 2 and body[1] == 0, f"CONNACK {kind:#x} {body!r}")
        self.session_present = bool(body[0] & 0x01)

    def send(self, data):
        self.sock.sendall(data)

    def _exactly(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def read(self):
        """The next packet as (first byte, body), or None when the broker closed."""
        first = self._exactly(1)
        if first is None:
            return None
        length, shift = 0, 0
        while True:
            byte = self._exactly(1)
            check(byte is not None, "connection closed inside a fixed header")
            length += (byte[0] & 0x7F) << shift
            shift += 7
            if not byte[0] & 0x80:
                break
        body = self._exactly(length) if length else b""
        check(body is not None, "connection closed inside a packet")
        return first[0], body

    def expect_disconnect_and_close(self, reason, what):
        """The broker answers with DISCONNECT `reason` and closes [MQTT-4.13.1-1]."""
        answer = self.read()
        check(answer is not None, f"{what}: closed without DISCONNECT {reason:#x}")
        kind, body = answer
        check(kind == DISCONNECT, f"{what}: got packet {kind:#x}, expected DISCONNECT")
        check(body[:1] == bytes([reason]), f"{what}: DISCONNECT reason {body[:1]!r}")
        check(self.read() is None, f"{what}: the connection stayed open after DISCONNECT")
        self.sock.close()

    def subscribe(self, filter_, options):
        """Subscribes one filter and checks the SUBACK grants what `options` asks."""
        self.send(packet(SUBSCRIBE, subscribe_body(1, filter_, options)))
        kind, body = self.read()
        check(kind == SUBACK and body[-1:] == bytes([options & 0x03]), f"SUBACK {body!r}")

    def read_publish(self):
        """The next packet, which must be a PUBLISH: (flags, packet id, payload)."""
        answer = self.read()
        check(answer is not None, "closed while a PUBLISH was expected")
        kind, body = answer
        check(kind & 0xF0 == 0x30, f"got packet {kind:#x}, expected PUBLISH")
        topic_len = int.from_bytes(body[:2], "big")
        rest = body[2 + topic_len:]
        packet_id = None
        if kind & 0x06:
            packet_id, rest = rest[:2], rest[2:]
        props_len, used = 0, 0
        for shift, byte in enumerate(rest[:4]):
            props_len += (byte & 0x7F) << (7 * shift)
            used += 1
            if not byte & 0x80:
                break
        return kind & 0x0F, packet_id, rest[used + props_len:]

    def drop(self):
        """Closes the socket without DISCONNECT: a lost connection."""
        self.sock.close()

    def close(self):
        self.sock.sendall(packet(DISCONNECT, b""))
        self.sock.close()


def subscribe_body(packet_id, filter_, options, props=b""):
    return packet_id.to_bytes(2, "big") + varint(len(props)) + props + string(filter_) + \
        bytes([options])


def mqtt_3_12_4_1_pingreq_gets_pingresp(target):
    """The broker answers every PINGREQ with a PINGRESP [MQTT-3.12.4-1]."""
    conn = RawConnection(target, target.label("ping"))
    for _ in range(3):
        conn.send(packet(PINGREQ, b""))
        check(conn.read() == (PINGRESP, b""), "PINGREQ was not answered with PINGRESP")
    conn.close()


def mqtt_3_8_4_1_suback_echoes_the_packet_identifier(target):
    """SUBSCRIBE is answered by a SUBACK with its Packet Identifier and one reason code per
    filter, in order [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.9.3-1]."""
    conn = RawConnection(target, target.label("suback"))
    props = b""
    body = (0x1234).to_bytes(2, "big") + varint(len(props)) + props
    body += string("a/b") + bytes([2]) + string("c/+") + bytes([0]) + string("d/#") + bytes([1])
    conn.send(packet(SUBSCRIBE, body))
    kind, answer = conn.read()
    check(kind == SUBACK, f"got packet {kind:#x}, expected SUBACK")
    check(answer[:2] == (0x1234).to_bytes(2, "big"), f"SUBACK for packet {answer[:2]!r}")
    codes = answer[3 + answer[2]:]
    check(codes == bytes([2, 0, 1]), f"SUBACK reason codes {codes!r}, expected 02 00 01")
    conn.close()


def mqtt_3_8_1_1_subscribe_with_wrong_flags_is_malformed(target):
    """SUBSCRIBE fixed-header flags other than 0010 are a Malformed Packet [MQTT-3.8.1-1]."""
    conn = RawConnection(target, target.label("subflags"))
    conn.send(packet(0x80, subscribe_body(1, "a/b", 1)))
    conn.expect_disconnect_and_close(MALFORMED_PACKET, "SUBSCRIBE with flags 0000")


def mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error(target):
    """No Local set on a `$share/` filter is a Protocol Error [MQTT-3.8.3-4]."""
    conn = RawConnection(target, target.label("sharednl"))
    conn.send(packet(SUBSCRIBE, subscribe_body(1, "$share/g/a/b", 0x04 | 1)))
    conn.expect_disconnect_and_close(PROTOCOL_ERROR, "No Local on a shared subscription")


def mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed(target):
    """Reserved bits 6 and 7 of the Subscription Options must be 0 [MQTT-3.8.3-5]."""
    conn = RawConnection(target, target.label("subopts"))
    conn.send(packet(SUBSCRIBE, subscribe_body(1, "a/b", 0xC1)))
    conn.expect_disconnect_and_close(MALFORMED_PACKET, "reserved subscription option bits")


def mqtt_3_3_4_6_subscription_identifier_from_a_client_is_a_protocol_error(target):
    """A PUBLISH from a client must not carry a Subscription Identifier [MQTT-3.3.4-6]."""
    conn = RawConnection(target, target.label("pubsid"))
    props = bytes([0x0B]) + varint(7)
    body = string("a/b") + (1).to_bytes(2, "big") + varint(len(props)) + props + b"x"
    conn.send(packet(PUBLISH_QOS1, body))
    conn.expect_disconnect_and_close(PROTOCOL_ERROR, "PUBLISH with a Subscription Identifier")


def mqtt_3_14_1_1_disconnect_with_reserved_flags_is_malformed(target):
    """DISCONNECT fixed-header flags must be 0 [MQTT-3.14.1-1]."""
    conn = RawConnection(target, target.label("discflags"))
    conn.send(packet(DISCONNECT | 0x01, b""))
    conn.expect_disconnect_and_close(MALFORMED_PACKET, "DISCONNECT with flags 0001")


def mqtt_4_8_2_4_and_5_qos2_shared_message_stays_with_its_member(target):
    """A QoS 2 message of a shared subscription whose member lost its connection before
    PUBREC is not handed to another member: it is completed with that member when it resumes
    [MQTT-4.8.2-4], and dropped if its session ended [MQTT-4.8.2-5]."""
    base = target.label("share2")
    publisher = Peer(target, base + "-pub")
    publisher.connect()
    other = Peer(target, base + "-other")
    other.connect()
    other.subscribe(base + "/marker", qos=1)

    # Session that ends with the connection: the message must go nowhere else.
    ending = RawConnection(target, base + "-ending")
    ending.subscribe(f"$share/g1/{base}/a", 2)
    publisher.publish(base + "/a", b"doomed", qos=2)
    check(ending.read_publish()[2] == b"doomed", "the only member did not get the message")
    other.subscribe(f"$share/g1/{base}/a", qos=2)
    ending.drop()
    # Session that outlives the connection: the message waits for it.
    kept = RawConnection(target, base + "-kept", session_expiry=60)
    kept.subscribe(f"$share/g2/{base}/b", 2)
    publisher.publish(base + "/b", b"kept", qos=2)
    flags, packet_id, payload = kept.read_publish()
    check(payload == b"kept" and flags & 0x06 == 0x04, f"got {payload!r} with flags {flags}")
    other.subscribe(f"$share/g2/{base}/b", qos=2)
    kept.drop()

    publisher.publish(base + "/marker", b"marker", qos=1)
    first = other.next_message("the marker")
    check(first.payload == b"marker",
          f"a QoS 2 shared message went to another member: {first.payload!r}")
    resumed = RawConnection(target, base + "-kept", clean_start=False, session_expiry=60)
    check(resumed.session_present, "the member's session was not kept")
    flags, again_id, payload = resumed.read_publish()
    check(payload == b"kept" and again_id == packet_id and flags & 0x08,
          f"resumed delivery {payload!r}, id {again_id!r} (was {packet_id!r}), flags {flags}")
    resumed.send(packet(0x50, again_id + b"\x00"))
    answer = resumed.read()
    check(answer is not None and answer[0] == 0x62 and answer[1][:2] == again_id,
          f"expected PUBREL, got {answer!r}")
    resumed.send(packet(0x70, again_id + b"\x00"))
    resumed.close()
    publisher.disconnect()
    other.disconnect()
