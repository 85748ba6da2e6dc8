"""Scenarios that need bytes no well-behaved client library sends: a raw TCP connection
speaking MQTT 5.0 packet by packet, to check how the broker answers PINGREQ and protocol
violations (malformed fixed headers, properties a client must not send, options that are a
protocol error). Each scenario is named after the normative statement it checks."""

import socket

from peer import WAIT, check

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

    def __init__(self, target, client_id):
        self.sock = socket.create_connection((target.host, target.port), timeout=WAIT)
        body = string("MQTT") + bytes([5, 0x02]) + (30).to_bytes(2, "big") + varint(0)
        self.sock.sendall(packet(CONNECT, body + string(client_id)))
        kind, body = self.read()
        check(kind == CONNACK and len(body) >= 2 and body[1] == 0, f"CONNACK {kind:#x} {body!r}")

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
