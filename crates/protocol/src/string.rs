//! `MqttString`: a UTF-8 string as MQTT defines it (1.5.4), held in a shared `Bytes` buffer so
//! that decoding a packet does not copy its strings.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Why a byte string is not an MQTT UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    /// Not well-formed UTF-8, which includes encoded surrogates U+D800..U+DFFF [MQTT-1.5.4-1].
    #[error("string is not well-formed UTF-8 [MQTT-1.5.4-1]")]
    InvalidUtf8,
    /// Contains U+0000 [MQTT-1.5.4-2].
    #[error("string contains the null character U+0000 [MQTT-1.5.4-2]")]
    NullCharacter,
    /// Longer than the 65,535 bytes a two-byte length prefix can describe (1.5.4).
    #[error("string is {0} bytes long; MQTT strings are at most 65535 bytes")]
    TooLong(usize),
}

/// A UTF-8 string that satisfies MQTT's rules: well-formed, no U+0000, at most 65,535 bytes.
///
/// Cloning is cheap: the text stays in the buffer it was decoded from.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

impl MqttString {
    /// The longest string a two-byte length prefix allows.
    pub const MAX_LEN: usize = u16::MAX as usize;

    /// Checks `bytes` against the rules of 1.5.4 and wraps them without copying.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        if bytes.len() > Self::MAX_LEN || !AsciiScan::of(&bytes).plain {
            Self::check_bytes(&bytes)?;
        }
        Ok(Self(bytes))
    }

    /// Wraps bytes that the caller has found plain by [`AsciiScan`] or checked with
    /// [`MqttString::check_bytes`], and whose length fits a two-byte prefix.
    #[inline]
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The full checks of 1.5.4 for any bytes: well-formed UTF-8 first, then no U+0000 and
    /// the length, in that order of precedence.
    pub(crate) fn check_bytes(bytes: &[u8]) -> Result<(), StringError> {
        let text = std::str::from_utf8(bytes).map_err(|_| StringError::InvalidUtf8)?;
        Self::check(text)
    }

    /// Copies `text` into a new buffer after checking it.
    pub fn new(text: impl AsRef<str>) -> Result<Self, StringError> {
        let text = text.as_ref();
        Self::check(text)?;
        Ok(Self(Bytes::copy_from_slice(text.as_bytes())))
    }

    /// Wraps a string literal. Panics on a literal that breaks the rules, which is a bug in
    /// the calling code, never a peer's doing.
    pub fn from_static(text: &'static str) -> Self {
        match Self::check(text) {
            Ok(()) => Self(Bytes::from_static(text.as_bytes())),
            Err(e) => panic!("invalid MQTT string literal {text:?}: {e}"),
        }
    }

    fn check(text: &str) -> Result<(), StringError> {
        if text.len() > Self::MAX_LEN {
            return Err(StringError::TooLong(text.len()));
        }
        if text.as_bytes().contains(&0) {
            return Err(StringError::NullCharacter);
        }
        Ok(())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The constructors only accept valid UTF-8, so this cannot fail; fall back to "" rather
        // than panic to keep that proof local.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying buffer, for encoding without a copy.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one pass over a byte string found, eight bytes at a time. Plain ASCII without U+0000
/// is the common case of topics, client identifiers and user names, and such bytes are valid
/// UTF-8 with no U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2], so the full UTF-8 validation only runs
/// for strings that are not plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AsciiScan {
    /// Every byte is in 0x01..=0x7F.
    pub(crate) plain: bool,
    /// A `+` or `#` is present; only meaningful when `plain`.
    pub(crate) wildcard: bool,
}

impl AsciiScan {
    /// Scans `bytes` eight at a time as one integer; the last word overlaps the one before it,
    /// which does not change what is found. Below eight bytes, as one padded word.
    #[inline(always)]
    pub(crate) fn of(bytes: &[u8]) -> Self {
        let mut lanes = ScanLanes::default();
        let mut rest = bytes;
        while let Some((word, tail)) = rest.split_first_chunk::<WORD>() {
            lanes.add(u64::from_ne_bytes(*word));
            rest = tail;
        }
        if !rest.is_empty() {
            match bytes.last_chunk::<WORD>() {
                Some(last) => lanes.add(u64::from_ne_bytes(*last)),
                None => lanes.add(short_word(rest)),
            }
        }
        Self {
            plain: lanes.bad & HIGH_BITS == 0,
            wildcard: lanes.wildcard & HIGH_BITS != 0,
        }
    }
}

/// What a scan has seen in the high bit of each byte lane, accumulated without branches. A
/// lane's bit may also stand for a byte in a lower lane of the same word, so each test is
/// exact for the string as a whole, which is all a scan reports.
#[derive(Default)]
struct ScanLanes {
    /// A high bit is set once a byte outside 0x01..=0x7F was seen. `word - 0x01..01` sets the
    /// high bit of the lowest zero byte (the bytes below it are at least 1, so no borrow
    /// reaches it), and a byte of 0x80 or more has the bit set already.
    bad: u64,
    /// A high bit is set once `+` or `#` was seen: with bit 3 set both become 0x2B, so XOR
    /// with `+` leaves a zero byte, found exactly by the classic `(x - 1) & !x & 0x80` test.
    wildcard: u64,
}

impl ScanLanes {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.bad |= word | word.wrapping_sub(LOW_BITS);
        let folded = (word | BIT_3) ^ PLUS;
        self.wildcard |= folded.wrapping_sub(LOW_BITS) & !folded;
    }
}

/// A string of fewer than eight bytes as one word, padded with a byte that is plain and not a
/// wildcard: two overlapping halves from four bytes up, byte by byte below.
#[inline(always)]
fn short_word(bytes: &[u8]) -> u64 {
    const PAD: u64 = u64::from_ne_bytes([b'a'; WORD]);
    match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(&first), Some(&last)) => {
            u64::from(u32::from_ne_bytes(first)) | u64::from(u32::from_ne_bytes(last)) << 32
        }
        _ => bytes
            .iter()
            .fold(PAD, |word, &b| (word << 8) | u64::from(b)),
    }
}

const WORD: usize = 8;
const LOW_BITS: u64 = u64::from_ne_bytes([0x01; WORD]);
const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; WORD]);
/// Bit 3 of every byte: `#` (0x23) with it set is `+` (0x2B).
const BIT_3: u64 = u64::from_ne_bytes([0x08; WORD]);
const PLUS: u64 = u64::from_ne_bytes([b'+'; WORD]);

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(text: &str) -> Result<Self, StringError> {
        Self::new(text)
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(text: String) -> Result<Self, StringError> {
        Self::check(&text)?;
        Ok(Self(Bytes::from(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_null_and_bad_utf8() {
        assert_eq!(MqttString::new("a\0b"), Err(StringError::NullCharacter));
        // U+D800 encoded as UTF-8 (a surrogate) is not well-formed [MQTT-1.5.4-1].
        let surrogate = Bytes::from_static(&[0xED, 0xA0, 0x80]);
        assert_eq!(
            MqttString::from_bytes(surrogate),
            Err(StringError::InvalidUtf8)
        );
        assert_eq!(
            MqttString::new("x".repeat(65_536)),
            Err(StringError::TooLong(65_536))
        );
    }

    #[test]
    fn ascii_scan_finds_every_byte_at_every_position() {
        // Every length around the word size and its multiples, every byte value at every
        // position of an otherwise plain string, against the byte-by-byte definition.
        for len in 1..=40 {
            for position in 0..len {
                for value in 0..=255u8 {
                    let mut bytes = vec![b'x'; len];
                    if let Some(b) = bytes.get_mut(position) {
                        *b = value;
                    }
                    let scan = AsciiScan::of(&bytes);
                    let plain = (0x01..=0x7F).contains(&value);
                    assert_eq!(scan.plain, plain, "{bytes:?}");
                    if plain {
                        let wildcard = value == b'+' || value == b'#';
                        assert_eq!(scan.wildcard, wildcard, "{bytes:?}");
                    }
                }
            }
        }
        assert_eq!(
            AsciiScan::of(b""),
            AsciiScan {
                plain: true,
                wildcard: false
            }
        );
    }

    #[test]
    fn plain_bytes_skip_utf8_validation_but_not_the_rules() {
        let long = Bytes::from(vec![b'a'; 65_536]);
        assert_eq!(
            MqttString::from_bytes(long),
            Err(StringError::TooLong(65_536))
        );
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"sensor\0")),
            Err(StringError::NullCharacter)
        );
        let s = MqttString::from_bytes(Bytes::from_static(b"sensors/7")).unwrap();
        assert_eq!(s, "sensors/7");
        let s = MqttString::from_bytes(Bytes::from_static("caf\u{e9}".as_bytes())).unwrap();
        assert_eq!(s, "caf\u{e9}");
    }

    #[test]
    fn keeps_zero_width_no_break_space() {
        // "A UTF-8 encoded sequence 0xEF 0xBB 0xBF is always interpreted as U+FEFF ... and MUST
        // NOT be skipped over or stripped off by a packet receiver" [MQTT-1.5.4-3].
        let s = MqttString::from_bytes(Bytes::from_static(&[0xEF, 0xBB, 0xBF, b'a'])).unwrap();
        assert_eq!(s.len(), 4);
    }
}
