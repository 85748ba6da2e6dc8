//! Fuzz target for the server session state machine: the input is split into a control byte
//! and a stream of client bytes; the bytes are decoded as a broker would (the decoder learns
//! the version from CONNECT) and every packet is fed to `ServerSession`, which is answered as
//! a broker answers it (accept or refuse CONNECT, SUBACK, UNSUBACK, acknowledgements,
//! outbound publishes, AUTH refused), with time moving forward between packets so that the
//! connect timeout and keep alive fire too. Nothing may panic, and every packet the machine
//! asks to send must encode.

#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mquictt_protocol::session::{Accept, ServerConfig, ServerEvent, ServerSession};
use mquictt_protocol::{
    Decoder, Disconnect, MqttString, Properties, PropertySet, ProtocolError, ProtocolVersion,
    Publish, QoS, ReasonCode, SubAck, TopicName, UnsubAck,
};

/// Small enough that the fuzzer reaches the limit.
const MAX_PACKET_SIZE: u32 = 4096;

/// How the simulated broker behaves for one input, from its first byte.
struct Policy {
    refuse_connect: bool,
    publish_outbound: bool,
    ack_with_error: bool,
    small_window: bool,
    /// Time between packets: 0 to 15 s in 1 s steps, so timeouts fire now and then.
    step: Duration,
}

impl Policy {
    fn from_byte(byte: u8) -> Self {
        Self {
            refuse_connect: byte & 0x01 != 0 && byte & 0x02 != 0,
            publish_outbound: byte & 0x04 != 0,
            ack_with_error: byte & 0x08 != 0,
            small_window: byte & 0x10 != 0,
            step: Duration::from_secs(u64::from(byte >> 4)),
        }
    }
}

fn drain(session: &mut ServerSession, now: Instant) {
    let version = session.version().unwrap_or(ProtocolVersion::V3_1_1);
    while let Some(packet) = session.poll_transmit(now) {
        let mut out = BytesMut::new();
        if let Err(e) = packet.encode(version, &mut out) {
            panic!("the session asked to send a packet that does not encode: {e:?}\n{packet:?}");
        }
    }
}

fn answer_events(session: &mut ServerSession, policy: &Policy, now: Instant) {
    while let Some(event) = session.poll_event() {
        match event {
            ServerEvent::Connect(connect) => {
                if policy.refuse_connect {
                    let _ = session.refuse(ReasonCode::NotAuthorized, Properties::default());
                    continue;
                }
                let mut properties = Properties::from(PropertySet {
                    receive_maximum: Some(if policy.small_window { 2 } else { 64 }),
                    topic_alias_maximum: Some(4),
                    maximum_packet_size: Some(MAX_PACKET_SIZE),
                    ..PropertySet::default()
                });
                if connect.client_id.is_empty() {
                    properties.assigned_client_identifier = Some(MqttString::from_static("auto-1"));
                }
                let _ = session.accept(
                    Accept {
                        properties,
                        resumed: None,
                    },
                    now,
                );
            }
            ServerEvent::Publish(publish) => {
                if let Some(id) = publish.packet_id {
                    let reason = if policy.ack_with_error {
                        ReasonCode::NotAuthorized
                    } else {
                        ReasonCode::Success
                    };
                    let _ = session.ack_incoming(id, reason);
                }
            }
            ServerEvent::Subscribe(subscribe) => {
                let reason_codes = subscribe
                    .filters
                    .iter()
                    .map(|(_, options)| match options.qos {
                        QoS::AtMostOnce => ReasonCode::GRANTED_QOS_0,
                        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                    })
                    .collect();
                let _ = session.suback(SubAck {
                    packet_id: subscribe.packet_id,
                    reason_codes,
                    properties: Properties::default(),
                });
            }
            ServerEvent::Unsubscribe(unsubscribe) => {
                let reason_codes = vec![ReasonCode::Success; unsubscribe.filters.len()];
                let _ = session.unsuback(UnsubAck {
                    packet_id: unsubscribe.packet_id,
                    reason_codes,
                    properties: Properties::default(),
                });
            }
            ServerEvent::Auth(_) => {
                let _ = session.disconnect(Disconnect::new(ReasonCode::ProtocolError));
            }
            ServerEvent::PublishAcknowledged { .. }
            | ServerEvent::PublishDropped { .. }
            | ServerEvent::Disconnected(_) => {}
        }
    }
}

fn publish_outbound(session: &mut ServerSession, round: usize) {
    if !session.is_connected() {
        return;
    }
    let qos = match round % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let Ok(topic) = TopicName::new(format!("out/{}", round % 5)) else {
        return;
    };
    let _ = session.publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(b"payload"),
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let policy = Policy::from_byte(control);
    let mut now = Instant::now();
    let mut session = ServerSession::new(
        ServerConfig {
            connect_timeout: Some(Duration::from_secs(10)),
            max_queued_publishes: 4,
            ..ServerConfig::default()
        },
        now,
    );
    let mut decoder = Decoder::new(MAX_PACKET_SIZE);
    // Feed the stream in chunks of varying size, as reads from a socket arrive.
    let mut buf = BytesMut::new();
    let mut round = 0usize;
    for chunk in stream.chunks(1 + usize::from(control % 7) * 9) {
        buf.extend_from_slice(chunk);
        loop {
            if session.is_closed() {
                break;
            }
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => {
                    let _ = session.handle_packet(packet, now);
                    answer_events(&mut session, &policy, now);
                    if policy.publish_outbound {
                        publish_outbound(&mut session, round);
                    }
                    drain(&mut session, now);
                    round += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    // As the broker's connection driver answers: an unknown protocol level
                    // (0x84, a CONNACK-only code) on a second CONNECT is a Protocol Error.
                    let reason = match e {
                        ProtocolError::UnsupportedProtocol { .. } => ReasonCode::ProtocolError,
                        other => other.reason_code(),
                    };
                    let _ = session.disconnect(Disconnect::new(reason));
                    drain(&mut session, now);
                    break;
                }
            }
        }
        now += policy.step;
        if let Some(deadline) = session.poll_timeout() {
            if deadline <= now {
                let _ = session.handle_timeout(now);
            }
        }
        drain(&mut session, now);
    }
    let _ = session.take_state();
});
