//! The packets both codecs are measured on, shared by the Criterion benchmark and the
//! instruction-count harness (`examples/codec_profile.rs`): each case holds the same packet in
//! our types and in rumqttc's, and the wire bytes our encoder makes of it, which rumqttc is
//! checked to read back as the same packet.

use bytes::{Bytes, BytesMut};
use mquictt_protocol::properties::Properties;
use mquictt_protocol::{
    Connect, MqttString, Packet, PacketId, PropertySet, ProtocolVersion, Publish, QoS, TopicName,
};
use rumqttc::v5::mqttbytes::v5 as theirs;
use rumqttc::v5::mqttbytes::QoS as TheirQoS;

/// The protocol version of every case.
pub(crate) const V5: ProtocolVersion = ProtocolVersion::V5;
/// How many `publish_64B` packets the stream case puts back to back.
pub(crate) const STREAM_COUNT: usize = 1000;
const TOPIC: &str = "sensors/building-7/floor-3/temperature";
const CLIENT_ID: &str = "sensor-0042";

/// One benchmark case: the same packet in both libraries' types, and its wire bytes.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) ours: Packet,
    pub(crate) theirs: theirs::Packet,
    pub(crate) wire: Bytes,
}

/// PUBLISH QoS 1, packet identifier 42, no properties, `payload_len` bytes of payload.
fn publish_case(name: &'static str, payload_len: usize) -> Case {
    let payload = Bytes::from(vec![0x5A; payload_len]);
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new(TOPIC).expect("valid topic"),
        packet_id: PacketId::new(42),
        properties: Properties::default(),
        payload: payload.clone(),
    });
    let mut publish = theirs::Publish::new(TOPIC, TheirQoS::AtLeastOnce, payload, None);
    publish.pkid = 42;
    case(name, ours, theirs::Packet::Publish(publish))
}

/// CONNECT with user name, password and three properties.
fn connect_case() -> Case {
    let ours = Packet::Connect(Box::new(Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 60,
        client_id: MqttString::new(CLIENT_ID).expect("valid client id"),
        will: None,
        username: Some(MqttString::new("device").expect("valid user name")),
        password: Some(Bytes::from_static(b"correct horse battery staple")),
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(32),
            maximum_packet_size: Some(1 << 20),
            ..PropertySet::default()
        }),
    }));
    let mut properties = theirs::ConnectProperties::new();
    properties.session_expiry_interval = Some(3600);
    properties.receive_maximum = Some(32);
    properties.max_packet_size = Some(1 << 20);
    let connect = theirs::Connect {
        keep_alive: 60,
        client_id: CLIENT_ID.to_string(),
        clean_start: true,
        properties: Some(properties),
    };
    let login = theirs::Login::new("device", "correct horse battery staple");
    case(
        "connect",
        ours,
        theirs::Packet::Connect(connect, None, Some(login)),
    )
}

/// Encodes with our codec and checks that rumqttc reads the bytes as the same packet, so that
/// both decoders work on the same input.
fn case(name: &'static str, ours: Packet, theirs: theirs::Packet) -> Case {
    let mut buf = BytesMut::new();
    ours.encode(V5, &mut buf).expect("benchmark packets encode");
    let wire = buf.freeze();
    let mut check = BytesMut::from(&wire[..]);
    let read = theirs::Packet::read(&mut check, None).expect("rumqttc reads our encoding");
    assert_eq!(read, theirs, "{name}: both codecs see the same packet");
    let mut their_wire = BytesMut::new();
    theirs
        .write(&mut their_wire, None)
        .expect("rumqttc encodes");
    assert_eq!(
        their_wire.len(),
        wire.len(),
        "{name}: both encodings have the same size"
    );
    Case {
        name,
        ours,
        theirs,
        wire,
    }
}

/// The single-packet cases.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        publish_case("publish_64B", 64),
        publish_case("publish_64KiB", 64 * 1024),
        connect_case(),
    ]
}

/// [`STREAM_COUNT`] `publish_64B` packets back to back, as a busy connection delivers them.
pub(crate) fn stream() -> Bytes {
    let case = publish_case("publish_64B", 64);
    let mut stream = BytesMut::new();
    for _ in 0..STREAM_COUNT {
        stream.extend_from_slice(&case.wire);
    }
    stream.freeze()
}
