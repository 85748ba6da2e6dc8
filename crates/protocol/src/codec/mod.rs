//! The MQTT codec: one decoder and one encoder for MQTT 3.1, 3.1.1 and 5.0 over the packet
//! types of [`crate::packet`]. This file owns the fixed header (2.1), framing against the
//! maximum packet size, the decode and encode entry points and the [`Decoder`] that remembers
//! the protocol version; each packet family has its own file.
//!
//! Decoding follows one contract: `Ok(None)` means more bytes are needed and the buffer is
//! untouched; `Ok(Some(packet))` consumed exactly that packet's bytes; an `Err` means the
//! connection must be closed (after a CONNACK or DISCONNECT carrying
//! [`ProtocolError::reason_code`] where the version allows). The size limit is checked as soon
//! as the fixed header is readable, before any of the body is awaited. Decoded strings, topics,
//! binary data and payloads are slices of one `Bytes` split off the input, never copies.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod primitives;
mod properties;
pub mod property_rules;
mod publish;
mod suback;
mod subscribe;
pub mod varint;

use bytes::{Buf, BytesMut};

pub use property_rules::PropertyContext;
pub use varint::{decode_varint, encode_varint, varint_len, VarInt, MAX_VARINT};

use crate::error::ProtocolError;
use crate::packet::{Packet, PacketType};
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};
use primitives::{Output, Reader};
use varint::write_varint;

/// The largest packet MQTT can describe: one type byte, four length bytes and a remaining
/// length of 268,435,455. Use it as `max_packet_size` for "no limit of our own".
pub const MAX_PACKET_SIZE: u32 = 1 + 4 + MAX_VARINT;

impl PacketType {
    /// The packet type for the four high bits of the first byte; `None` for 0, which is
    /// reserved. 15 (AUTH) is returned for every version; the codec rejects it before 5.0.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return None,
        })
    }
}

/// Decodes one packet from the front of `buf`.
///
/// `version` is the protocol version of the connection; a CONNECT is decoded by the version it
/// names itself. `max_packet_size` bounds the whole packet, fixed header included.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>, ProtocolError> {
    decode_packet(buf, Some(version), max_packet_size)
}

/// A decoder for one connection: it remembers the protocol version (taken from the CONNECT it
/// decodes, or set by the caller) and the maximum packet size.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
}

impl Decoder {
    /// A decoder that does not know the version yet: the first packet must be a CONNECT
    /// [MQTT-3.1.0-1], which then sets it. This is the server side of a new connection.
    pub fn new(max_packet_size: u32) -> Self {
        Self {
            version: None,
            max_packet_size,
        }
    }

    /// A decoder for a connection whose version is known, as on the client side.
    pub fn with_version(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self {
            version: Some(version),
            max_packet_size,
        }
    }

    /// The protocol version in force, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the protocol version.
    pub fn set_version(&mut self, v: ProtocolVersion) {
        self.version = Some(v);
    }

    /// The largest packet accepted, fixed header included.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Changes the largest packet accepted.
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.max_packet_size = max;
    }

    /// Decodes one packet with the contract of [`decode`]. A decoded CONNECT sets the version.
    ///
    /// While the version is unknown, a CONNECT that fails to decode still sets it if its
    /// protocol name and level were readable and supported, so that a server can answer with a
    /// CONNACK in the format the client asked for before closing.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
        let named_version = match self.version {
            None => connect::peek_version(buf),
            Some(_) => None,
        };
        let result = decode_packet(buf, self.version, self.max_packet_size);
        match &result {
            Ok(Some(Packet::Connect(connect))) => self.version = Some(connect.protocol),
            Err(_) if named_version.is_some() => self.version = named_version,
            _ => {}
        }
        result
    }
}

/// What the fixed header says.
#[derive(Debug, Clone, Copy)]
struct FixedHeader {
    packet_type: PacketType,
    flags: u8,
    /// Fixed header length: the type byte plus the remaining length bytes.
    header_len: usize,
    remaining_length: usize,
    /// Whether the remaining length used its minimal encoding [MQTT-1.5.5-1].
    minimal: bool,
}

// Inlined, together with the decoders of the hot packets, so that a packet struct of several
// hundred bytes is built where the caller wants it instead of being copied out of each nested
// `Result`; without it those copies took about a fifth of the time to decode a small PUBLISH.
#[inline(always)]
fn decode_packet(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<Packet>, ProtocolError> {
    let Some(header) = read_fixed_header(buf, version, max_packet_size)? else {
        return Ok(None);
    };
    let total = header.header_len + header.remaining_length;
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    // Only a CONNECT may arrive while the version is unknown, and it names its own version;
    // the placeholder below is never used to decode anything else.
    let version = version.unwrap_or(ProtocolVersion::V5);
    if header.packet_type == PacketType::Publish {
        // The hot path: PUBLISH is read straight from the frame, and built straight into the
        // value returned.
        return publish::decode_frame(frame, header.header_len, header.flags, version)
            .map(|p| Some(Packet::Publish(p)));
    }
    // `header_len <= total == frame.len()`, so this cannot run past the end.
    frame.advance(header.header_len);
    let mut r = Reader::new(frame);
    let packet = decode_body(&mut r, header, version)?;
    if let Packet::Connect(connect) = &packet {
        if connect.protocol.is_v5() && !header.minimal {
            return Err(ProtocolError::VarIntNotMinimal);
        }
    }
    if !r.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            packet_type: header.packet_type,
            extra: r.remaining(),
        });
    }
    Ok(Some(packet))
}

/// Parses and checks the fixed header, if enough of it is there: packet type, flag bits,
/// remaining length and the size limit. Nothing is consumed.
// Inlined so that the header stays in registers instead of being returned through memory.
#[inline(always)]
fn read_fixed_header(
    buf: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<FixedHeader>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let type_bits = first >> 4;
    let flags = first & 0x0F;
    let packet_type = match (PacketType::from_u8(type_bits), version) {
        // The packet that matters for throughput first.
        (Some(PacketType::Publish), Some(_)) => PacketType::Publish,
        (Some(PacketType::Auth), Some(v)) if !v.is_v5() => {
            return Err(ProtocolError::ReservedPacketType {
                packet_type: type_bits,
                version: v,
            })
        }
        (Some(t), Some(_)) => t,
        (None, _) => {
            return Err(ProtocolError::ReservedPacketType {
                packet_type: type_bits,
                version: version.unwrap_or(ProtocolVersion::V5),
            })
        }
        (Some(PacketType::Connect), None) => PacketType::Connect,
        (Some(_), None) => {
            return Err(ProtocolError::ExpectedConnect {
                packet_type: type_bits,
            })
        }
    };
    let flags_valid = match packet_type {
        PacketType::Publish => VALID_PUBLISH_FLAGS >> flags & 1 == 1,
        // `type_bits` is four bits, so the table always has an entry.
        _ => FIXED_FLAGS.get(usize::from(type_bits)) == Some(&flags),
    };
    if !flags_valid {
        check_flags(packet_type, flags, version.unwrap_or(ProtocolVersion::V5))?;
    }
    let Some(length) = decode_varint(buf.get(1..).unwrap_or_default())? else {
        return Ok(None);
    };
    // A CONNECT's version is only known after its body is read; its remaining length is
    // checked for minimality there.
    if !length.minimal && packet_type != PacketType::Connect && version.is_some_and(|v| v.is_v5()) {
        return Err(ProtocolError::VarIntNotMinimal);
    }
    let header_len = 1 + length.len;
    let remaining_length = length.value as usize;
    let size = header_len + remaining_length;
    if size > max_packet_size as usize {
        return Err(ProtocolError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    Ok(Some(FixedHeader {
        packet_type,
        flags,
        header_len,
        remaining_length,
        minimal: length.minimal,
    }))
}

/// Bit `n` is set when `n` is a valid flags nibble of PUBLISH: QoS bits other than 3, and DUP
/// clear on QoS 0. One test on the hot path instead of two.
const VALID_PUBLISH_FLAGS: u16 = {
    let mut valid = 0u16;
    let mut flags = 0;
    while flags < 16 {
        let qos = (flags >> 1) & 0b11;
        if qos != 3 && !(qos == 0 && flags & 0b1000 != 0) {
            valid |= 1 << flags;
        }
        flags += 1;
    }
    valid
};

/// The flag bits that table 2-2 fixes for each packet type, by type value; PUBLISH has its
/// own rules. [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]: PUBREL, SUBSCRIBE and
/// UNSUBSCRIBE have 0, 0, 1, 0; every other type 0.
const FIXED_FLAGS: [u8; 16] = {
    let mut flags = [0; 16];
    flags[PacketType::PubRel as usize] = 0b0010;
    flags[PacketType::Subscribe as usize] = 0b0010;
    flags[PacketType::Unsubscribe as usize] = 0b0010;
    flags
};

/// The flag bits of table 2-2: fixed for every type except PUBLISH, whose QoS and DUP bits are
/// checked here so that a bad PUBLISH is refused before its body is awaited. The header
/// reader tests the tables above first and calls this for the error.
#[cold]
fn check_flags(
    packet_type: PacketType,
    flags: u8,
    version: ProtocolVersion,
) -> Result<(), ProtocolError> {
    let expected = match packet_type {
        PacketType::Publish => {
            if VALID_PUBLISH_FLAGS >> flags & 1 == 1 {
                return Ok(());
            }
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                // "A PUBLISH Packet MUST NOT have both QoS bits set to 1" [MQTT-3.3.1-4].
                return Err(ProtocolError::PublishQoS3);
            }
            // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
            return Err(ProtocolError::DupOnQoS0);
        }
        // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]: bits 3..0 are 0, 0, 1, 0.
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
        _ => 0,
    };
    if flags == expected {
        Ok(())
    } else {
        Err(ProtocolError::InvalidFlags {
            packet_type,
            flags,
            version,
        })
    }
}

// Inlined into `decode_packet`, see the note there.
#[inline(always)]
fn decode_body(
    r: &mut Reader,
    header: FixedHeader,
    version: ProtocolVersion,
) -> Result<Packet, ProtocolError> {
    Ok(match header.packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode(r)?)),
        PacketType::ConnAck => Packet::ConnAck(connack::decode(r, version)?),
        PacketType::Publish => Packet::Publish(publish::decode_frame(
            r.take_rest(),
            0,
            header.flags,
            version,
        )?),
        PacketType::PubAck => Packet::PubAck(ack::decode(r, PacketType::PubAck, version)?),
        PacketType::PubRec => Packet::PubRec(ack::decode(r, PacketType::PubRec, version)?),
        PacketType::PubRel => Packet::PubRel(ack::decode(r, PacketType::PubRel, version)?),
        PacketType::PubComp => Packet::PubComp(ack::decode(r, PacketType::PubComp, version)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode_subscribe(r, version)?),
        PacketType::SubAck => Packet::SubAck(suback::decode_suback(r, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(subscribe::decode_unsubscribe(r, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(suback::decode_unsuback(r, version)?),
        // No variable header and no payload (3.12, 3.13); leftovers are trailing bytes.
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(disconnect::decode(r, version)?),
        PacketType::Auth => Packet::Auth(auth::decode(r)?),
    })
}

/// Reads a packet identifier, which is never 0 ([MQTT-2.2.1-3] in 5.0, [MQTT-2.3.1-1] in
/// 3.1.1).
pub(crate) fn read_packet_id(
    r: &mut Reader,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<PacketId, ProtocolError> {
    let raw = r.read_u16("packet identifier")?;
    PacketId::new(raw).ok_or(ProtocolError::ZeroPacketId {
        packet_type,
        version,
    })
}

impl Packet {
    /// Appends the packet, fixed header included, to `buf` in the wire format of `version`.
    ///
    /// A CONNECT is always written in the version it names in `protocol`. Fields that
    /// `version` does not carry (properties and most reason codes before 5.0) are left out.
    /// On error nothing is appended.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let start = buf.len();
        let result = self.write(version, buf);
        match result {
            Ok(()) => debug_assert_eq!(buf.len() - start, self.encoded_len(version)),
            Err(_) => buf.truncate(start),
        }
        result
    }

    /// The exact number of bytes [`Packet::encode`] appends, fixed header included.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let remaining = self.remaining_length(version);
        1 + varint_len(remaining) + remaining
    }

    /// The version whose wire format applies: a CONNECT's own, otherwise `version`.
    fn wire_version(&self, version: ProtocolVersion) -> ProtocolVersion {
        match self {
            Self::Connect(connect) => connect.protocol,
            _ => version,
        }
    }

    fn first_byte(&self) -> u8 {
        let flags = match self {
            Self::Publish(p) => (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain),
            Self::PubRel(_) | Self::Subscribe(_) | Self::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    fn remaining_length(&self, version: ProtocolVersion) -> usize {
        let version = self.wire_version(version);
        match self {
            Self::Connect(c) => connect::body_len(c),
            Self::ConnAck(c) => connack::body_len(c, version),
            Self::Publish(p) => publish::body_len(p, version),
            Self::PubAck(a) | Self::PubRec(a) | Self::PubRel(a) | Self::PubComp(a) => {
                ack::body_len(a, version)
            }
            Self::Subscribe(s) => subscribe::subscribe_len(s, version),
            Self::SubAck(s) => suback::suback_len(s, version),
            Self::Unsubscribe(u) => subscribe::unsubscribe_len(u, version),
            Self::UnsubAck(u) => suback::unsuback_len(u, version),
            Self::PingReq | Self::PingResp => 0,
            Self::Disconnect(d) => disconnect::body_len(d, version),
            Self::Auth(a) => auth::body_len(a),
        }
    }

    fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), ProtocolError> {
        let version = self.wire_version(version);
        if matches!(self, Self::Auth(_)) && !version.is_v5() {
            return Err(ProtocolError::PacketNotInVersion {
                packet_type: PacketType::Auth,
                version,
            });
        }
        let remaining = self.remaining_length(version);
        if remaining > MAX_VARINT as usize {
            return Err(ProtocolError::RemainingLengthTooLarge { length: remaining });
        }
        buf.reserve(1 + varint_len(remaining) + remaining);
        buf.write_u8(self.first_byte());
        write_varint(remaining, buf)?;
        match self {
            Self::Connect(c) => connect::encode_body(c, buf),
            Self::ConnAck(c) => connack::encode_body(c, version, buf),
            Self::Publish(p) => publish::encode_body(p, version, buf),
            Self::PubAck(a) => ack::encode_body(a, PacketType::PubAck, version, buf),
            Self::PubRec(a) => ack::encode_body(a, PacketType::PubRec, version, buf),
            Self::PubRel(a) => ack::encode_body(a, PacketType::PubRel, version, buf),
            Self::PubComp(a) => ack::encode_body(a, PacketType::PubComp, version, buf),
            Self::Subscribe(s) => subscribe::encode_subscribe(s, version, buf),
            Self::SubAck(s) => suback::encode_suback(s, version, buf),
            Self::Unsubscribe(u) => subscribe::encode_unsubscribe(u, version, buf),
            Self::UnsubAck(u) => suback::encode_unsuback(u, version, buf),
            Self::PingReq | Self::PingResp => Ok(()),
            Self::Disconnect(d) => disconnect::encode_body(d, version, buf),
            Self::Auth(a) => auth::encode_body(a, buf),
        }
    }
}

/// Checks a reason code byte against the codes `packet_type` may carry in MQTT 5.
pub(crate) fn reason_in(
    code: u8,
    allowed: &[ReasonCode],
    packet_type: PacketType,
) -> Result<ReasonCode, ProtocolError> {
    ReasonCode::from_u8(code)
        .filter(|reason| allowed.contains(reason))
        .ok_or(ProtocolError::InvalidReasonCode { packet_type, code })
}

/// Checks a reason code about to be encoded in an MQTT 5 packet.
pub(crate) fn check_reason(
    reason: ReasonCode,
    allowed: &[ReasonCode],
    packet_type: PacketType,
) -> Result<(), ProtocolError> {
    reason_in(reason.as_u8(), allowed, packet_type).map(|_| ())
}

#[cfg(test)]
mod tests;
