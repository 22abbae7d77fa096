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
    } else if !name.bytes().all(|byte| (0x20..0x7f).contains(&byte))
        && name.chars().any(char::is_control)
    {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(ConfigError::new("name", name, reason).into())
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
