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
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        let text = std::str::from_utf8(&bytes).map_err(|_| StringError::InvalidUtf8)?;
        Self::check(text)?;
        Ok(Self(bytes))
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
        assert_eq!(MqttString::from_bytes(surrogate), Err(StringError::InvalidUtf8));
        assert_eq!(
            MqttString::new("x".repeat(65_536)),
            Err(StringError::TooLong(65_536))
        );
    }

    #[test]
    fn keeps_zero_width_no_break_space() {
        // "A UTF-8 encoded sequence 0xEF 0xBB 0xBF is always interpreted as U+FEFF ... and MUST
        // NOT be skipped over or stripped off by a packet receiver" [MQTT-1.5.4-3].
        let s = MqttString::from_bytes(Bytes::from_static(&[0xEF, 0xBB, 0xBF, b'a'])).unwrap();
        assert_eq!(s.len(), 4);
    }
}
