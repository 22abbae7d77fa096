//! Validated lock names.

use std::fmt;
use std::sync::Arc;

use conc_core::config::ConfigError;

use crate::LockError;

/// The longest lock name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// A validated lock name: not empty, at most [`MAX_NAME_LEN`] bytes, no
/// control characters (backends use a control character to separate the
/// slots of a funnel from user names).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct LockName(Arc<str>);

impl LockName {
    pub(crate) fn new(name: &str) -> Result<Self, LockError> {
        check(name)?;
        Ok(Self(Arc::from(name)))
    }

    /// The name of slot `slot` of the funnel named `self`.
    /// `name`, checked already, shared.
    pub(crate) fn from_checked(name: Arc<str>) -> Self {
        Self(name)
    }

    pub(crate) fn slot(&self, slot: u32) -> Self {
        Self(Arc::from(format!("{}\u{1f}slot{slot}", self.0)))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks that `name` is a valid lock name.
pub(crate) fn check(name: &str) -> Result<(), LockError> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_NAME_LEN {
        "must be at most 512 bytes"
    // Printable ASCII, the usual name, skips decoding the characters.
    } else if !printable_ascii(name.as_bytes()) && name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(ConfigError::new("name", name, reason).into())
}

/// Whether every byte is printable ASCII (0x20..=0x7e), eight at a time:
/// a name is checked on every one-shot `LockStore::get_with`.
#[inline]
fn printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte is printable when its high bit is clear, it is at least 0x20
    // and adding one does not reach 0x80 (so it is not 0x7f). With the high
    // bits clear, each per-byte sum below stays within its byte.
    let word_ok = |word: u64| {
        let below_space = word.wrapping_sub(0x20 * ONES) & !word;
        let delete = (word + ONES) & !word;
        (word | below_space | delete) & HIGH == 0
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0_u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if word & HIGH != 0 || !word_ok(word) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&byte| (0x20..0x7f).contains(&byte))
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::printable_ascii;

    #[test]
    fn printable_ascii_agrees_with_the_byte_by_byte_rule() {
        let rule = |bytes: &[u8]| bytes.iter().all(|&byte| (0x20..0x7f).contains(&byte));
        // Every byte value, at every position of a 19-byte name (two words
        // and a remainder), among printable neighbours.
        for byte in 0..=u8::MAX {
            for at in 0..19 {
                let mut name = *b"customer:0123456789";
                name[at] = byte;
                assert_eq!(printable_ascii(&name), rule(&name), "byte {byte:#x} at {at}");
            }
        }
        assert!(printable_ascii(b""));
        assert!(printable_ascii(b" ~~~~~~~~~~~~~~~ "));
    }
}
