//! Malformed input over TCP and QUIC: a corpus of broken packets (bad lengths, bad UTF-8,
//! wildcards in topic names, duplicate properties, reserved flags, truncated frames,
//! oversized packets, topics past the broker's limits), each sent on its own connection
//! while a healthy client stays connected. Every case gets the reason code the spec gives
//! it, nothing panics, and the healthy client is unaffected.

mod security_support;

use std::time::Duration;

use mquictt_broker::BrokerConfig;
use mquictt_protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use security_support::{connect_packet, metric, publish, Peer, SecureBroker};

/// What the broker must answer before it closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing: 3.1.1 has no way to report, or the version was never learnt.
    Close,
    /// CONNACK with this reason code, then close.
    ConnAck(ReasonCode),
    /// DISCONNECT with this reason code, then close.
    Disconnect(ReasonCode),
    /// PUBACK with this reason code; the connection stays open.
    PubAck(ReasonCode),
    /// SUBACK with this reason code; the connection stays open.
    SubAck(ReasonCode),
}

struct Case {
    name: &'static str,
    /// Connect first with this version, or send the bytes on a fresh connection.
    connect_first: Option<ProtocolVersion>,
    /// The version the answer is decoded with.
    answer_version: ProtocolVersion,
    bytes: Vec<u8>,
    answer: Answer,
}

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// The broker in these tests accepts packets up to this size.
const MAX_PACKET: u32 = 1024;

fn corpus() -> Vec<Case> {
    let case = |name, connect_first, answer_version, bytes: &[u8], answer| Case {
        name,
        connect_first,
        answer_version,
        bytes: bytes.to_vec(),
        answer,
    };
    let deep_topic = "a/".repeat(10) + "a";
    let mut deep_publish = vec![0x32];
    let topic_len = deep_topic.len();
    deep_publish.push((2 + topic_len + 2 + 1 + 1) as u8);
    deep_publish.extend_from_slice(&[0x00, topic_len as u8]);
    deep_publish.extend_from_slice(deep_topic.as_bytes());
    deep_publish.extend_from_slice(&[0x00, 0x07, 0x00, b'x']);
    let mut deep_subscribe = vec![0x82];
    deep_subscribe.push((2 + 1 + 2 + topic_len + 1) as u8);
    deep_subscribe.extend_from_slice(&[0x00, 0x08, 0x00, 0x00, topic_len as u8]);
    deep_subscribe.extend_from_slice(deep_topic.as_bytes());
    deep_subscribe.push(0x01);
    vec![
        case(
            "remaining length longer than four bytes",
            None,
            V5,
            &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            Answer::Close,
        ),
        case(
            "first packet is not CONNECT",
            None,
            V5,
            &[0xC0, 0x00],
            Answer::Close,
        ),
        case(
            "unsupported protocol level",
            None,
            V311,
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'c',
            ],
            Answer::ConnAck(ReasonCode::UnsupportedProtocolVersion),
        ),
        case(
            "5.0 CONNECT with the reserved flag set",
            None,
            V5,
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'c',
            ],
            Answer::ConnAck(ReasonCode::MalformedPacket),
        ),
        case(
            "5.0 CONNECT with ill-formed UTF-8 in the client id",
            None,
            V5,
            &[
                0x10, 0x0F, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 2, 0xC3, 0x28,
            ],
            Answer::ConnAck(ReasonCode::MalformedPacket),
        ),
        case(
            "5.0 CONNECT with Session Expiry Interval twice",
            None,
            V5,
            &[
                0x10, 0x18, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 10,
                0x11, 0, 0, 0, 10, 0, 1, b'c',
            ],
            Answer::ConnAck(ReasonCode::ProtocolError),
        ),
        case(
            "5.0 CONNECT cut short inside its properties",
            None,
            V5,
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 9, 0x11, 0, 1,
            ],
            Answer::ConnAck(ReasonCode::MalformedPacket),
        ),
        case(
            "wildcard in a PUBLISH topic name",
            Some(V5),
            V5,
            &[0x30, 0x07, 0, 3, b'a', b'/', b'+', 0, b'x'],
            Answer::Disconnect(ReasonCode::TopicNameInvalid),
        ),
        case(
            "PUBLISH with QoS 3",
            Some(V5),
            V5,
            &[0x36, 0x09, 0, 3, b'a', b'/', b'b', 0, 1, 0, b'x'],
            Answer::Disconnect(ReasonCode::MalformedPacket),
        ),
        case(
            "PUBLISH with Payload Format Indicator twice",
            Some(V5),
            V5,
            &[0x30, 0x09, 0, 1, b'a', 4, 0x01, 1, 0x01, 1, b'x'],
            Answer::Disconnect(ReasonCode::ProtocolError),
        ),
        case(
            "SUBSCRIBE with reserved header flags 0000",
            Some(V5),
            V5,
            &[0x80, 0x07, 0, 1, 0, 0, 1, b'a', 0x01],
            Answer::Disconnect(ReasonCode::MalformedPacket),
        ),
        case(
            "PUBLISH larger than the Maximum Packet Size",
            Some(V5),
            V5,
            &[0x30, 0xD0, 0x0F, 0, 1, b'a'],
            Answer::Disconnect(ReasonCode::PacketTooLarge),
        ),
        case(
            "second CONNECT",
            Some(V5),
            V5,
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0,
            ],
            Answer::Disconnect(ReasonCode::ProtocolError),
        ),
        case(
            "second CONNECT with an unknown protocol level",
            Some(V5),
            V5,
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 9, 0x02, 0, 60, 0, 0, 0,
            ],
            Answer::Disconnect(ReasonCode::ProtocolError),
        ),
        case(
            "PUBLISH topic deeper than the broker allows",
            Some(V5),
            V5,
            &deep_publish,
            Answer::PubAck(ReasonCode::TopicNameInvalid),
        ),
        case(
            "SUBSCRIBE filter deeper than the broker allows",
            Some(V5),
            V5,
            &deep_subscribe,
            Answer::SubAck(ReasonCode::TopicFilterInvalid),
        ),
        case(
            "3.1.1 PUBLISH with QoS 3",
            Some(V311),
            V311,
            &[0x36, 0x08, 0, 3, b'a', b'/', b'b', 0, 1, b'x'],
            Answer::Close,
        ),
        case(
            "3.1.1 PUBLISH with ill-formed UTF-8 in the topic",
            Some(V311),
            V311,
            &[0x30, 0x05, 0, 2, 0xC3, 0x28, b'x'],
            Answer::Close,
        ),
        case(
            "3.1.1 truncated frame, then end of stream",
            Some(V311),
            V311,
            &[0x30, 0x0A, 0, 3, b'a'],
            Answer::Close,
        ),
    ]
}

fn config() -> BrokerConfig {
    BrokerConfig {
        max_packet_size: MAX_PACKET,
        max_topic_levels: 8,
        connection_rate: None,
        ..BrokerConfig::default()
    }
}

/// Sends `case` on `peer` and checks the broker's answer.
async fn check(case: &Case, mut peer: Peer, end_stream: bool) {
    if let Some(version) = case.connect_first {
        peer.version = version;
        peer.connect("malformed").await;
    }
    peer.version = case.answer_version;
    peer.send_raw(&case.bytes).await;
    if end_stream {
        use tokio::io::AsyncWriteExt;
        let _ = peer.stream.shutdown().await;
    }
    match case.answer {
        Answer::Close => {
            let sent = peer.until_closed().await;
            assert!(
                sent.is_empty(),
                "{}: expected a silent close, got {sent:?}",
                case.name
            );
        }
        Answer::ConnAck(reason) => {
            let sent = peer.until_closed().await;
            match sent.as_slice() {
                [Packet::ConnAck(ack)] => assert_eq!(ack.reason_code, reason, "{}", case.name),
                other => panic!("{}: expected CONNACK {reason:?}, got {other:?}", case.name),
            }
        }
        Answer::Disconnect(reason) => {
            let sent = peer.until_closed().await;
            match sent.as_slice() {
                [Packet::Disconnect(d)] => assert_eq!(d.reason_code, reason, "{}", case.name),
                other => panic!(
                    "{}: expected DISCONNECT {reason:?}, got {other:?}",
                    case.name
                ),
            }
        }
        Answer::PubAck(reason) => match peer.recv().await {
            Some(Packet::PubAck(ack)) => assert_eq!(ack.reason_code, reason, "{}", case.name),
            other => panic!("{}: expected PUBACK {reason:?}, got {other:?}", case.name),
        },
        Answer::SubAck(reason) => match peer.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.reason_codes, vec![reason], "{}", case.name)
            }
            other => panic!("{}: expected SUBACK {reason:?}, got {other:?}", case.name),
        },
    }
}

/// The healthy client still publishes to itself and gets the message.
async fn still_healthy(peer: &mut Peer, round: u16) {
    let payload = round.to_be_bytes();
    peer.send(&Packet::Publish(publish(
        "healthy/echo",
        &payload,
        QoS::AtMostOnce,
        0,
    )))
    .await;
    match peer.recv_within(Duration::from_secs(2)).await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], &payload[..]),
        other => panic!("the healthy client was affected: {other:?}"),
    }
}

async fn healthy_client(peer: Peer) -> Peer {
    let mut peer = peer;
    peer.connect("healthy").await;
    assert_eq!(
        peer.subscribe("healthy/echo", QoS::AtMostOnce, 1).await,
        ReasonCode::GRANTED_QOS_0
    );
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_corpus_over_tcp() {
    let served = SecureBroker::start(config()).await;
    let mut healthy = healthy_client(Peer::tcp(served.tcp, V5).await).await;
    for (round, case) in corpus().iter().enumerate() {
        let peer = Peer::tcp(served.tcp, case.answer_version).await;
        let end_stream = case.name.contains("end of stream");
        check(case, peer, end_stream).await;
        still_healthy(&mut healthy, round as u16).await;
    }
    assert!(metric(&served.broker, |m| &m.limit_refusals) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_corpus_over_quic() {
    let served = SecureBroker::start(config()).await;
    let mut healthy = healthy_client(Peer::quic(&served, V5).await).await;
    for (round, case) in corpus().iter().enumerate() {
        let peer = Peer::quic(&served, case.answer_version).await;
        let end_stream = case.name.contains("end of stream");
        check(case, peer, end_stream).await;
        still_healthy(&mut healthy, round as u16).await;
    }
}

#[tokio::test]
async fn a_connect_with_a_will_topic_past_the_limits_is_refused() {
    let served = SecureBroker::start(config()).await;
    let mut peer = Peer::tcp(served.tcp, V5).await;
    let mut connect = connect_packet(V5, "will");
    connect.will = Some(mquictt_protocol::Will {
        topic: mquictt_protocol::TopicName::new("a/b/c/d/e/f/g/h/i/j").expect("topic"),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: mquictt_protocol::Properties::default(),
    });
    assert_eq!(
        peer.connect_with(connect).await.reason_code,
        ReasonCode::TopicNameInvalid
    );
}
