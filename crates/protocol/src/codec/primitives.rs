//! The data representations of 1.5 (bytes, two- and four-byte integers, Variable Byte
//! Integers, UTF-8 strings, binary data) read from one packet's bytes with bounds checks, and
//! written to an output buffer with length checks. Reading never panics and never copies:
//! strings and binary data come out as slices of the packet's `Bytes`.

use bytes::{Buf, Bytes, BytesMut};

use super::varint::decode_varint;
use crate::error::ProtocolError;
use crate::string::{AsciiScan, MqttString};

/// A cursor over the body of exactly one packet (or one property block).
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    #[inline]
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// The bytes not read yet, to look at without consuming them.
    #[inline(always)]
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes not read yet.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline]
    pub(crate) fn read_u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        let byte = *self.buf.first().ok_or(ProtocolError::Truncated { field })?;
        self.buf.advance(1);
        Ok(byte)
    }

    #[inline]
    pub(crate) fn read_u16(&mut self, field: &'static str) -> Result<u16, ProtocolError> {
        let bytes: [u8; 2] = self
            .buf
            .get(..2)
            .and_then(|s| s.try_into().ok())
            .ok_or(ProtocolError::Truncated { field })?;
        self.buf.advance(2);
        Ok(u16::from_be_bytes(bytes))
    }

    #[inline]
    pub(crate) fn read_u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        let bytes: [u8; 4] = self
            .buf
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(ProtocolError::Truncated { field })?;
        self.buf.advance(4);
        Ok(u32::from_be_bytes(bytes))
    }

    /// A Variable Byte Integer inside a packet body. These only occur in MQTT 5 (property
    /// lengths, identifiers, subscription identifiers), so the minimal encoding is required
    /// [MQTT-1.5.5-1].
    #[inline]
    pub(crate) fn read_varint(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        // One byte is the common case (property lengths below 128, every identifier).
        if let Some(&byte) = self.buf.first() {
            if byte & 0x80 == 0 {
                self.buf.advance(1);
                return Ok(u32::from(byte));
            }
        }
        let varint = decode_varint(&self.buf)?.ok_or(ProtocolError::Truncated { field })?;
        if !varint.minimal {
            return Err(ProtocolError::VarIntNotMinimal);
        }
        self.buf.advance(varint.len);
        Ok(varint.value)
    }

    /// Consumes the next byte if it is 0, such as the property length of an empty property
    /// list.
    #[inline]
    pub(crate) fn skip_zero_byte(&mut self) -> bool {
        let zero = self.buf.first() == Some(&0);
        if zero {
            self.buf.advance(1);
        }
        zero
    }

    /// The next `len` bytes, without copying.
    #[inline]
    pub(crate) fn read_bytes(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<Bytes, ProtocolError> {
        if len > self.buf.len() {
            return Err(ProtocolError::Truncated { field });
        }
        Ok(self.split_front(len))
    }

    /// The first `len` bytes as their own `Bytes`, skipped by this reader; `len` is at most
    /// `self.remaining()`. A clone cut to length costs one reference count increment and,
    /// unlike `Bytes::split_to`, is inlined.
    #[inline(always)]
    fn split_front(&mut self, len: usize) -> Bytes {
        let mut front = self.buf.clone();
        front.truncate(len);
        self.skip(len);
        front
    }

    /// Skips `len` bytes, at most `self.remaining()`.
    #[inline(always)]
    pub(crate) fn skip(&mut self, len: usize) {
        // Callers have checked the length; `Bytes::advance` would panic past the end, so
        // clamp rather than trust that.
        self.buf.advance(len.min(self.buf.len()));
    }

    /// Binary Data (1.5.6): a two-byte length and that many bytes.
    #[inline]
    pub(crate) fn read_binary(&mut self, field: &'static str) -> Result<Bytes, ProtocolError> {
        let len = self.read_u16(field)?;
        self.read_bytes(usize::from(len), field)
    }

    /// A UTF-8 Encoded String (1.5.4), checked against [MQTT-1.5.4-1] and [MQTT-1.5.4-2].
    #[inline]
    pub(crate) fn read_string(&mut self, field: &'static str) -> Result<MqttString, ProtocolError> {
        self.read_string_scanned(field).map(|(s, _)| s)
    }

    /// A UTF-8 Encoded String and what the pass that checked it found, which tells a topic
    /// name's wildcard check whether it needs a pass of its own.
    #[inline]
    pub(crate) fn read_string_scanned(
        &mut self,
        field: &'static str,
    ) -> Result<(MqttString, AsciiScan), ProtocolError> {
        // Checked in place first: the string is only split off (a reference count increment)
        // once it is known to be valid.
        let Some((&[high, low], rest)) = self.buf.split_first_chunk::<2>() else {
            return Err(ProtocolError::Truncated { field });
        };
        let len = usize::from(u16::from_be_bytes([high, low]));
        let text = rest.get(..len).ok_or(ProtocolError::Truncated { field })?;
        let scan = AsciiScan::of(text);
        if !scan.plain {
            MqttString::check_bytes(text)
                .map_err(|error| ProtocolError::InvalidString { field, error })?;
        }
        self.skip(2);
        // The two-byte length prefix keeps the string within `MqttString::MAX_LEN`.
        Ok((MqttString::from_checked(self.split_front(len)), scan))
    }

    /// A reader over the next `len` bytes, which this reader skips.
    #[inline]
    pub(crate) fn split(&mut self, len: usize, field: &'static str) -> Result<Self, ProtocolError> {
        self.read_bytes(len, field).map(Self::new)
    }

    /// Everything not read yet, such as the payload of a PUBLISH.
    #[inline]
    pub(crate) fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }
}

/// Where the encoder writes: a `BytesMut` on the wire path, a `Vec` in tests. These calls
/// inline to a capacity check and a copy of a known size, where the `BufMut` methods of
/// `BytesMut` are out-of-line calls that copy even a single byte with `memcpy`.
pub(crate) trait Output {
    /// Appends `bytes`.
    fn write_slice(&mut self, bytes: &[u8]);

    /// Appends one byte.
    #[inline(always)]
    fn write_u8(&mut self, value: u8) {
        self.write_slice(&[value]);
    }

    /// Appends a Two Byte Integer (1.5.2).
    #[inline(always)]
    fn write_u16(&mut self, value: u16) {
        self.write_slice(&value.to_be_bytes());
    }

    /// Appends a Four Byte Integer (1.5.3).
    #[inline(always)]
    fn write_u32(&mut self, value: u32) {
        self.write_slice(&value.to_be_bytes());
    }
}

impl Output for BytesMut {
    #[inline(always)]
    fn write_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Output for Vec<u8> {
    #[inline(always)]
    fn write_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Appends a UTF-8 string with its two-byte length; `MqttString` guarantees the length fits.
pub(crate) fn put_string(buf: &mut impl Output, s: &MqttString) {
    put_short_bytes(buf, s.as_bytes());
}

/// Appends Binary Data with its two-byte length.
pub(crate) fn put_binary(
    buf: &mut impl Output,
    data: &[u8],
    field: &'static str,
) -> Result<(), ProtocolError> {
    check_binary_len(data, field)?;
    put_short_bytes(buf, data);
    Ok(())
}

/// Checks that binary data fits a two-byte length prefix (1.5.6).
pub(crate) fn check_binary_len(data: &[u8], field: &'static str) -> Result<(), ProtocolError> {
    if data.len() > usize::from(u16::MAX) {
        return Err(ProtocolError::BinaryTooLong {
            field,
            len: data.len(),
        });
    }
    Ok(())
}

fn put_short_bytes(buf: &mut impl Output, data: &[u8]) {
    // Callers have checked `data.len() <= u16::MAX`; saturate instead of truncating anyway.
    buf.write_u16(u16::try_from(data.len()).unwrap_or(u16::MAX));
    buf.write_slice(data);
}

/// Encoded size of a string or binary field: its two-byte length plus its bytes.
pub(crate) fn prefixed_len(data: &[u8]) -> usize {
    2 + data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes))
    }

    #[test]
    fn integers_are_big_endian_and_bounds_checked() {
        let mut r = reader(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        assert_eq!(r.read_u8("a"), Ok(0x01));
        assert_eq!(r.read_u32("c"), Ok(0x0203_0405));
        assert_eq!(
            r.read_u16("b"),
            Err(ProtocolError::Truncated { field: "b" })
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.read_u8("a"), Ok(0x06));
        assert!(r.is_empty());
        assert_eq!(r.read_u8("d"), Err(ProtocolError::Truncated { field: "d" }));
        assert_eq!(
            r.read_u16("e"),
            Err(ProtocolError::Truncated { field: "e" })
        );
    }

    #[test]
    fn strings_are_length_prefixed_slices() {
        // The example of 1.5.4: "A𪛔" is 0x41 0xF0 0xAA 0x9B 0x94 after a length of 5.
        let mut r = reader(&[0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, 0xAA]);
        let s = r.read_string("text").unwrap();
        assert_eq!(s.as_str(), "A\u{2A6D4}");
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn string_rules_are_enforced() {
        let mut r = reader(&[0x00, 0x03, b'a', 0x00, b'b']);
        assert_eq!(
            r.read_string("text"),
            Err(ProtocolError::InvalidString {
                field: "text",
                error: crate::string::StringError::NullCharacter
            })
        );
        let mut r = reader(&[0x00, 0x03, 0xED, 0xA0, 0x80]);
        assert_eq!(
            r.read_string("text"),
            Err(ProtocolError::InvalidString {
                field: "text",
                error: crate::string::StringError::InvalidUtf8
            })
        );
        // A length that runs past the end is truncation, not a short string.
        let mut r = reader(&[0x00, 0x04, b'a', b'b']);
        assert_eq!(
            r.read_string("text"),
            Err(ProtocolError::Truncated { field: "text" })
        );
    }

    #[test]
    fn varints_in_bodies_must_be_minimal() {
        let mut r = reader(&[0x80, 0x01, 0x80, 0x00]);
        assert_eq!(r.read_varint("v"), Ok(128));
        assert_eq!(r.read_varint("v"), Err(ProtocolError::VarIntNotMinimal));
        let mut r = reader(&[0x80]);
        assert_eq!(
            r.read_varint("v"),
            Err(ProtocolError::Truncated { field: "v" })
        );
    }

    #[test]
    fn binary_writes_check_the_length() {
        let mut out = Vec::new();
        put_binary(&mut out, b"xy", "data").unwrap();
        assert_eq!(out, [0x00, 0x02, b'x', b'y']);
        let big = vec![0u8; 65_536];
        assert_eq!(
            put_binary(&mut out, &big, "data"),
            Err(ProtocolError::BinaryTooLong {
                field: "data",
                len: 65_536
            })
        );
        assert_eq!(out.len(), 4);
    }
}
