//! The byte layout of stored records: messages (as an MQTT 5 PUBLISH, so the protocol codec
//! that checks every packet from the network checks them too, plus the publisher and the
//! expiry deadline), queued copies, subscriptions, pending wills and in-flight marks. Decoding
//! treats stored bytes like peer input: a damaged record is an error, never a panic. Instants
//! become wall-clock milliseconds on the way out and come back relative to the current clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use mquictt_broker::message::{ClientId, Message};
use mquictt_broker::registry::PendingWill;
use mquictt_broker::session::{Outgoing, WillSpec};
use mquictt_broker::storage::InFlightStage;
use mquictt_broker::Subscription;
use mquictt_protocol::{
    Packet, PacketId, ProtocolVersion, Publish, QoS, RetainHandling, SubscriptionOptions,
    TopicFilter,
};

/// Version byte in front of every message record, so a later layout can be told apart.
const FORMAT: u8 = 1;
/// Largest PUBLISH the decoder accepts: the protocol's own limit (256 MiB plus header).
const MAX_RECORD: u32 = 268_435_460;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged record: {0}")]
pub(crate) struct RecordError(pub(crate) String);

fn damaged(what: impl Into<String>) -> RecordError {
    RecordError(what.into())
}

/// Converts between the broker's `Instant`s and wall-clock milliseconds, anchored at one
/// moment read from both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    /// Anchors at the current moment.
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// Milliseconds since the Unix epoch of `at`.
    pub(crate) fn wall_millis(&self, at: Instant) -> u64 {
        let wall = if at >= self.instant {
            self.system + (at - self.instant)
        } else {
            self.system - (self.instant - at)
        };
        wall.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The `Instant` of a wall-clock deadline, measured from now; a deadline in the past is
    /// now.
    pub(crate) fn instant_at(&self, millis: u64) -> Instant {
        let wall = UNIX_EPOCH + Duration::from_millis(millis);
        let now = SystemTime::now();
        let instant_now = Instant::now();
        match wall.duration_since(now) {
            Ok(ahead) => instant_now.checked_add(ahead).unwrap_or(instant_now),
            Err(_) => instant_now,
        }
    }
}

/// Reads a record front to back without ever indexing out of bounds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.bytes.len() < n {
            return Err(damaged("record is truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        self.take(1)?
            .first()
            .copied()
            .ok_or_else(|| damaged("record is truncated"))
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        let mut out = [0u8; 4];
        out.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(out))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(out))
    }

    fn string(&mut self) -> Result<&'a str, RecordError> {
        let len = usize::from(self.u16()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| damaged("string is not UTF-8"))
    }

    fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Client identifiers and topics are MQTT strings: at most 65,535 bytes.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..usize::from(len)).unwrap_or_default());
}

/// A message: format, expiry deadline, publisher, then the message as a PUBLISH packet.
pub(crate) fn encode_message(message: &Message, clock: &WallClock, out: &mut Vec<u8>) {
    out.push(FORMAT);
    let expires = message
        .expires_at
        .as_deref()
        .map_or(0, |&at| clock.wall_millis(at).max(1));
    out.extend_from_slice(&expires.to_be_bytes());
    match &message.publisher {
        Some(client) => {
            out.push(1);
            put_string(out, client);
        }
        None => out.push(0),
    }
    let publish = Publish {
        dup: false,
        qos: message.qos,
        retain: message.retain,
        topic: message.topic.clone(),
        // The codec wants an identifier on QoS 1 and 2; it means nothing here.
        packet_id: (message.qos != QoS::AtMostOnce)
            .then(|| PacketId::new(1))
            .flatten(),
        properties: message.properties.clone(),
        payload: message.payload.clone(),
    };
    let mut buf = BytesMut::new();
    // A message the broker accepted from the network encodes again; should it not, the
    // record is written empty and reported damaged when read, never trusted.
    if Packet::Publish(publish)
        .encode(ProtocolVersion::V5, &mut buf)
        .is_ok()
    {
        out.extend_from_slice(&buf);
    }
}

/// Reads a message written by [`encode_message`].
pub(crate) fn decode_message(bytes: &[u8], clock: &WallClock) -> Result<Message, RecordError> {
    let mut reader = Reader::new(bytes);
    let format = reader.u8()?;
    if format != FORMAT {
        return Err(damaged(format!("unknown message format {format}")));
    }
    let expires = reader.u64()?;
    let publisher = match reader.u8()? {
        0 => None,
        _ => Some(ClientId::from(reader.string()?)),
    };
    let mut buf = BytesMut::from(reader.rest());
    let packet = mquictt_protocol::decode(&mut buf, ProtocolVersion::V5, MAX_RECORD)
        .map_err(|e| damaged(format!("stored PUBLISH: {e}")))?;
    let Some(Packet::Publish(publish)) = packet else {
        return Err(damaged("stored message is not a PUBLISH"));
    };
    Ok(Message {
        topic: publish.topic,
        payload: publish.payload,
        qos: publish.qos,
        retain: publish.retain,
        properties: publish.properties,
        publisher,
        expires_at: (expires != 0).then(|| Box::new(clock.instant_at(expires))),
    })
}

/// A copy for one subscriber: its QoS, RETAIN flag, shared filter and subscription
/// identifiers, then the message.
pub(crate) fn encode_outgoing(outgoing: &Outgoing, clock: &WallClock) -> Vec<u8> {
    let mut out = Vec::with_capacity(outgoing.message.size() + 64);
    out.push(outgoing.qos as u8);
    out.push(u8::from(outgoing.retain));
    match &outgoing.shared {
        Some(filter) => {
            out.push(1);
            put_string(&mut out, filter.as_str());
        }
        None => out.push(0),
    }
    let ids = &outgoing.subscription_identifiers;
    let count = u16::try_from(ids.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for id in ids.iter().take(usize::from(count)) {
        out.extend_from_slice(&id.to_be_bytes());
    }
    encode_message(&outgoing.message, clock, &mut out);
    out
}

/// Reads a copy written by [`encode_outgoing`].
pub(crate) fn decode_outgoing(bytes: &[u8], clock: &WallClock) -> Result<Outgoing, RecordError> {
    let mut reader = Reader::new(bytes);
    let qos = QoS::from_u8(reader.u8()?).ok_or_else(|| damaged("bad QoS"))?;
    let retain = reader.u8()? != 0;
    let shared = match reader.u8()? {
        0 => None,
        _ => Some(Box::new(
            TopicFilter::new(reader.string()?).map_err(|e| damaged(format!("filter: {e}")))?,
        )),
    };
    let count = reader.u16()?;
    let subscription_identifiers = (0..count)
        .map(|_| reader.u32())
        .collect::<Result<Box<[_]>, _>>()?;
    let message = decode_message(reader.rest(), clock)?;
    Ok(Outgoing {
        message: Arc::new(message),
        qos,
        retain,
        subscription_identifiers,
        shared,
    })
}

/// A subscription's options byte (as on the wire in MQTT 5) and identifier; the filter is the
/// record's key.
pub(crate) fn encode_subscription(subscription: &Subscription) -> Vec<u8> {
    let o = &subscription.options;
    let options = (o.qos as u8)
        | u8::from(o.no_local) << 2
        | u8::from(o.retain_as_published) << 3
        | (o.retain_handling as u8) << 4;
    let mut out = vec![options];
    match subscription.identifier {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_be_bytes());
        }
        None => out.push(0),
    }
    out
}

/// Reads a subscription to `filter` written by [`encode_subscription`].
pub(crate) fn decode_subscription(filter: &str, bytes: &[u8]) -> Result<Subscription, RecordError> {
    let mut reader = Reader::new(bytes);
    let options = reader.u8()?;
    let identifier = match reader.u8()? {
        0 => None,
        _ => Some(reader.u32()?),
    };
    Ok(Subscription {
        filter: TopicFilter::new(filter).map_err(|e| damaged(format!("filter: {e}")))?,
        options: SubscriptionOptions {
            qos: QoS::from_u8(options & 0b11).ok_or_else(|| damaged("bad QoS"))?,
            no_local: options & 0b100 != 0,
            retain_as_published: options & 0b1000 != 0,
            retain_handling: RetainHandling::from_u8((options >> 4) & 0b11)
                .ok_or_else(|| damaged("bad retain handling"))?,
        },
        identifier,
    })
}

/// A pending will: when it is due, its delay and expiry, then the message.
pub(crate) fn encode_will(will: &PendingWill, clock: &WallClock) -> Vec<u8> {
    let mut out = Vec::with_capacity(will.will.message.size() + 64);
    out.extend_from_slice(&clock.wall_millis(will.publish_at).to_be_bytes());
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    out.extend_from_slice(&millis(will.will.delay).to_be_bytes());
    match will.will.expiry {
        Some(expiry) => {
            out.push(1);
            out.extend_from_slice(&millis(expiry).to_be_bytes());
        }
        None => out.push(0),
    }
    encode_message(&will.will.message, clock, &mut out);
    out
}

/// Reads a will written by [`encode_will`].
pub(crate) fn decode_will(bytes: &[u8], clock: &WallClock) -> Result<PendingWill, RecordError> {
    let mut reader = Reader::new(bytes);
    let publish_at = clock.instant_at(reader.u64()?);
    let delay = Duration::from_millis(reader.u64()?);
    let expiry = match reader.u8()? {
        0 => None,
        _ => Some(Duration::from_millis(reader.u64()?)),
    };
    let message = decode_message(reader.rest(), clock)?;
    Ok(PendingWill {
        will: WillSpec {
            message,
            delay,
            expiry,
        },
        publish_at,
    })
}

/// An in-flight mark: packet identifier and stage.
pub(crate) fn encode_in_flight(packet_id: PacketId, stage: InFlightStage) -> [u8; 3] {
    let [hi, lo] = packet_id.get().to_be_bytes();
    let stage = match stage {
        InFlightStage::Sent => 0,
        InFlightStage::Released => 1,
    };
    [hi, lo, stage]
}

/// Reads an in-flight mark written by [`encode_in_flight`].
pub(crate) fn decode_in_flight(bytes: &[u8]) -> Result<(PacketId, InFlightStage), RecordError> {
    let mut reader = Reader::new(bytes);
    let packet_id = PacketId::new(reader.u16()?).ok_or_else(|| damaged("packet id 0"))?;
    let stage = match reader.u8()? {
        0 => InFlightStage::Sent,
        1 => InFlightStage::Released,
        other => return Err(damaged(format!("unknown in-flight stage {other}"))),
    };
    Ok((packet_id, stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mquictt_protocol::{MqttString, Properties, PropertySet, TopicName};

    fn message() -> Message {
        Message {
            topic: TopicName::new("plant/3/temp").unwrap(),
            payload: Bytes::from_static(b"21.5"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::from(PropertySet {
                content_type: Some(MqttString::new("text/plain").unwrap()),
                user_properties: vec![(
                    MqttString::new("k").unwrap(),
                    MqttString::new("v").unwrap(),
                )],
                ..PropertySet::default()
            }),
            publisher: Some("sensor-3".into()),
            expires_at: None,
        }
    }

    #[test]
    fn messages_and_copies_round_trip() {
        let clock = WallClock::now();
        let outgoing = Outgoing {
            message: Arc::new(message()),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_identifiers: Box::new([7, 300_000]),
            shared: Some(Box::new(TopicFilter::new("$share/g/plant/#").unwrap())),
        };
        let bytes = encode_outgoing(&outgoing, &clock);
        assert_eq!(decode_outgoing(&bytes, &clock).unwrap(), outgoing);
    }

    #[test]
    fn expiry_deadlines_survive_as_wall_clock_time() {
        let clock = WallClock::now();
        let mut m = message();
        m.expires_at = Some(Box::new(Instant::now() + Duration::from_secs(60)));
        let mut bytes = Vec::new();
        encode_message(&m, &clock, &mut bytes);
        let back = decode_message(&bytes, &clock).unwrap();
        let left = *back.expires_at.unwrap() - Instant::now();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60));
        // A deadline that passed while the broker was down comes back as expired.
        m.expires_at = Some(Box::new(Instant::now()));
        let mut bytes = Vec::new();
        encode_message(&m, &clock, &mut bytes);
        std::thread::sleep(Duration::from_millis(5));
        assert!(decode_message(&bytes, &clock)
            .unwrap()
            .is_expired(Instant::now()));
    }

    #[test]
    fn subscriptions_wills_and_marks_round_trip() {
        let clock = WallClock::now();
        let subscription = Subscription {
            filter: TopicFilter::new("a/+/c").unwrap(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
            identifier: Some(42),
        };
        let bytes = encode_subscription(&subscription);
        assert_eq!(decode_subscription("a/+/c", &bytes).unwrap(), subscription);
        let will = PendingWill {
            will: WillSpec {
                message: message(),
                delay: Duration::from_secs(30),
                expiry: Some(Duration::from_secs(600)),
            },
            publish_at: Instant::now() + Duration::from_secs(30),
        };
        let back = decode_will(&encode_will(&will, &clock), &clock).unwrap();
        assert_eq!(back.will, will.will);
        let id = PacketId::new(513).unwrap();
        let mark = encode_in_flight(id, InFlightStage::Released);
        assert_eq!(
            decode_in_flight(&mark).unwrap(),
            (id, InFlightStage::Released)
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let clock = WallClock::now();
        let outgoing = Outgoing {
            message: Arc::new(message()),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_identifiers: Box::new([1]),
            shared: None,
        };
        let bytes = encode_outgoing(&outgoing, &clock);
        for cut in 0..bytes.len() {
            let _ = decode_outgoing(bytes.get(..cut).unwrap(), &clock);
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_outgoing(&flipped, &clock);
            flipped[i] ^= 0xff;
        }
        assert!(decode_outgoing(&[], &clock).is_err());
        assert!(decode_in_flight(&[0, 0, 0]).is_err());
        assert!(decode_subscription("a", &[3, 0]).is_err());
    }
}
