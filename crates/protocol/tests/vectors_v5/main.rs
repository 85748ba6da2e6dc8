//! Byte vectors for MQTT 5.0, written by hand from the OASIS specification: every control
//! packet type, every property at least once in a packet that allows it, the short forms of
//! the acknowledgements, DISCONNECT and AUTH, and valid encodings that are not the canonical
//! one (property order, long forms). Each decodes to the expected `Packet`, also when fed one
//! byte at a time, and the packet encodes back to the canonical bytes.

#[path = "../common/mod.rs"]
mod common;

mod connect;
mod control;
mod framing;
mod publish;
mod subscribe;

use bytes::{Bytes, BytesMut};
use common::{assert_alternate, assert_vector, bin, filter, pid, s, topic, NO_LIMIT};
use mquictt_protocol::properties::Properties;
use mquictt_protocol::PropertySet;
use mquictt_protocol::{
    decode, Auth, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, PubAck, Publish, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicName, UnsubAck,
    Unsubscribe, Will,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn props() -> PropertySet {
    PropertySet::default()
}

fn connack(reason_code: ReasonCode, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: false,
        reason_code,
        properties,
    })
}

fn ack(id: u16, reason_code: ReasonCode, properties: Properties) -> PubAck {
    PubAck {
        packet_id: pid(id),
        reason_code,
        properties,
    }
}
