//! The Variable Byte Integer of 1.5.5: the remaining length of every packet, property lengths,
//! property identifiers and subscription identifiers. Seven bits per byte, least significant
//! group first, at most four bytes, so at most 268,435,455.

use bytes::BufMut;

use super::primitives::Output;
use crate::error::ProtocolError;

/// The largest value four bytes can carry: 0xFF 0xFF 0xFF 0x7F.
pub const MAX_VARINT: u32 = 268_435_455;

/// A decoded Variable Byte Integer and how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarInt {
    /// The value.
    pub value: u32,
    /// How many bytes it took, 1 to 4.
    pub len: usize,
    /// Whether it used the fewest bytes possible. MQTT 5 requires that [MQTT-1.5.5-1];
    /// MQTT 3.1.1 has no such rule.
    pub minimal: bool,
}

/// Reads a Variable Byte Integer from the start of `bytes`.
///
/// `Ok(None)` means the bytes end before the last byte of the integer. A continuation bit on
/// the fourth byte is an error whatever follows.
#[inline]
pub fn decode_varint(bytes: &[u8]) -> Result<Option<VarInt>, ProtocolError> {
    // One byte, 0 to 127, is the common case and always minimal.
    if let Some(&byte) = bytes.first() {
        if byte & 0x80 == 0 {
            return Ok(Some(VarInt {
                value: u32::from(byte),
                len: 1,
                minimal: true,
            }));
        }
    }
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            let len = index + 1;
            // A longer encoding than needed ends in a byte that adds nothing.
            let minimal = len == 1 || byte != 0;
            return Ok(Some(VarInt {
                value,
                len,
                minimal,
            }));
        }
        if index == 3 {
            return Err(ProtocolError::VarIntTooLong);
        }
    }
    Ok(None)
}

/// How many bytes `value` takes on the wire; values above [`MAX_VARINT`] report 4, the
/// caller rejects them before writing.
pub fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` in the minimal encoding through the encoder's [`Output`], built in a
/// four-byte array and written at once.
#[inline]
pub(crate) fn write_varint(value: usize, buf: &mut impl Output) -> Result<(), ProtocolError> {
    if value > MAX_VARINT as usize {
        return Err(ProtocolError::RemainingLengthTooLarge { length: value });
    }
    if value < 128 {
        // Below 128, so the cast cannot truncate.
        buf.write_u8(value as u8);
        return Ok(());
    }
    let mut bytes = [0u8; 4];
    let mut len = 0;
    let mut rest = value;
    for byte in bytes.iter_mut() {
        // The mask keeps the value below 128, so the cast cannot truncate.
        *byte = (rest & 0x7F) as u8;
        rest >>= 7;
        len += 1;
        if rest == 0 {
            break;
        }
        *byte |= 0x80;
    }
    buf.write_slice(bytes.get(..len).unwrap_or_default());
    Ok(())
}

/// Appends `value` in the minimal encoding.
pub fn encode_varint(value: usize, buf: &mut impl BufMut) -> Result<(), ProtocolError> {
    if value > MAX_VARINT as usize {
        return Err(ProtocolError::RemainingLengthTooLarge { length: value });
    }
    let mut rest = value;
    loop {
        // The mask keeps the value below 128, so the cast cannot truncate.
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if rest == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(value, &mut out).unwrap();
        out
    }

    #[test]
    fn edge_values_round_trip_with_their_spec_lengths() {
        // Table 1-1 of 1.5.5: the boundaries of one to four bytes.
        let cases: [(usize, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (value, bytes) in cases {
            assert_eq!(encoded(value), bytes, "encoding {value}");
            assert_eq!(varint_len(value), bytes.len(), "length of {value}");
            let decoded = decode_varint(bytes).unwrap().unwrap();
            assert_eq!(decoded.value as usize, value);
            assert_eq!(decoded.len, bytes.len());
            assert!(decoded.minimal);
        }
    }

    #[test]
    fn five_bytes_are_malformed() {
        assert_eq!(
            decode_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(ProtocolError::VarIntTooLong)
        );
        // Even before the fifth byte arrives.
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80]),
            Err(ProtocolError::VarIntTooLong)
        );
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        assert_eq!(decode_varint(&[]), Ok(None));
        assert_eq!(decode_varint(&[0x80]), Ok(None));
        assert_eq!(decode_varint(&[0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn non_minimal_encodings_are_flagged() {
        let zero_in_two = decode_varint(&[0x80, 0x00]).unwrap().unwrap();
        assert_eq!(zero_in_two.value, 0);
        assert!(!zero_in_two.minimal);
        let one_in_four = decode_varint(&[0x81, 0x80, 0x80, 0x00]).unwrap().unwrap();
        assert_eq!(one_in_four.value, 1);
        assert!(!one_in_four.minimal);
    }

    #[test]
    fn values_above_the_maximum_are_not_encoded() {
        let mut out = Vec::new();
        assert_eq!(
            encode_varint(268_435_456, &mut out),
            Err(ProtocolError::RemainingLengthTooLarge {
                length: 268_435_456
            })
        );
        assert!(out.is_empty());
    }
}
