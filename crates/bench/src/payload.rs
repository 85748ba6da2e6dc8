//! The bench's message format and its PUBLISH encoder. Every payload starts with a 20-byte
//! header (send time as nanoseconds since the Unix epoch, publisher index, sequence number, all
//! big-endian), padded with zeros to the requested size: subscribers in any process on the
//! same machine read the end-to-end latency and detect duplicates and gaps from it. The
//! encoder writes a PUBLISH straight into the output buffer, header and payload in one pass,
//! because building a `Packet` per message would cost more than the broker's work on it; a
//! test checks that the protocol crate's decoder reads back exactly what was written.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use mquictt_protocol::codec::encode_varint;
use mquictt_protocol::{PacketId, ProtocolError, ProtocolVersion, QoS};

/// Bytes of the header at the start of every bench payload.
pub const HEADER_LEN: usize = 20;

/// What a subscriber reads from the start of a bench payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    /// When the publisher wrote the message, in nanoseconds since the Unix epoch. The wall
    /// clock, not a monotonic one, so that publisher and subscriber may be different processes.
    pub sent_at_ns: u64,
    /// Index of the publishing client.
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub sequence: u64,
}

impl PayloadHeader {
    /// Reads the header; `None` for a payload too short to be a bench message.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let sent_at_ns = u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?);
        let publisher = u32::from_be_bytes(payload.get(8..12)?.try_into().ok()?);
        let sequence = u64::from_be_bytes(payload.get(12..20)?.try_into().ok()?);
        Some(Self {
            sent_at_ns,
            publisher,
            sequence,
        })
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u64(self.sent_at_ns);
        out.put_u32(self.publisher);
        out.put_u64(self.sequence);
    }
}

/// Nanoseconds since the Unix epoch now; 0 if the clock is set before 1970.
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One PUBLISH as the bench sends it.
#[derive(Debug, Clone, Copy)]
pub struct BenchPublish<'a> {
    /// Topic name (already validated by the caller: no wildcards).
    pub topic: &'a str,
    /// Quality of service.
    pub qos: QoS,
    /// Packet identifier, present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// Total payload size; at least [`HEADER_LEN`].
    pub payload_len: usize,
    /// The header at the start of the payload.
    pub header: PayloadHeader,
}

/// Appends the PUBLISH (fixed header, topic, packet id, empty MQTT 5 properties, payload) to
/// `out` in the wire format of `version`.
pub fn encode_publish(
    publish: &BenchPublish<'_>,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let id_len = if publish.qos == QoS::AtMostOnce { 0 } else { 2 };
    let properties_len = usize::from(version.is_v5());
    let payload_len = publish.payload_len.max(HEADER_LEN);
    let remaining = 2 + publish.topic.len() + id_len + properties_len + payload_len;
    out.reserve(1 + 4 + remaining);
    // PUBLISH fixed header (3.3.1): type 3, DUP 0, QoS in bits 2-1, RETAIN 0.
    out.put_u8(0x30 | ((publish.qos as u8) << 1));
    encode_varint(remaining, out)?;
    let topic_len = u16::try_from(publish.topic.len())
        .map_err(|_| ProtocolError::RemainingLengthTooLarge { length: remaining })?;
    out.put_u16(topic_len);
    out.put_slice(publish.topic.as_bytes());
    if let Some(id) = publish.packet_id {
        out.put_u16(id.get());
    }
    if version.is_v5() {
        // Property Length 0: no properties (3.3.2.3).
        out.put_u8(0);
    }
    publish.header.write(out);
    out.put_bytes(0, payload_len - HEADER_LEN);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mquictt_protocol::{Decoder, Packet};

    fn round_trip(version: ProtocolVersion, qos: QoS, payload_len: usize) {
        let header = PayloadHeader {
            sent_at_ns: 1_700_000_000_123_456_789,
            publisher: 7,
            sequence: 42,
        };
        let publish = BenchPublish {
            topic: "bench/7",
            qos,
            packet_id: (qos != QoS::AtMostOnce).then(|| PacketId::new(9)).flatten(),
            payload_len,
            header,
        };
        let mut out = BytesMut::new();
        encode_publish(&publish, version, &mut out).unwrap();
        let mut decoder = Decoder::with_version(version, u32::MAX);
        let Some(Packet::Publish(decoded)) = decoder.decode(&mut out).unwrap() else {
            panic!("not a PUBLISH");
        };
        assert!(out.is_empty(), "the decoder consumed the whole packet");
        assert_eq!(decoded.topic.as_str(), "bench/7");
        assert_eq!(decoded.qos, qos);
        assert_eq!(decoded.packet_id, publish.packet_id);
        assert_eq!(decoded.payload.len(), payload_len);
        assert_eq!(PayloadHeader::read(&decoded.payload), Some(header));
    }

    #[test]
    fn publish_decodes_with_the_protocol_codec() {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                round_trip(version, qos, 64);
                round_trip(version, qos, 1024);
                round_trip(version, qos, 200_000);
            }
        }
    }

    #[test]
    fn short_payload_has_no_header() {
        assert_eq!(PayloadHeader::read(b"hello"), None);
    }
}
