//! [`Elapsed`]: a call cut off by a timeout.

use std::time::Duration;

/// A call cut off by a [`Timeout`](super::Timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::Elapsed;
///
/// let elapsed = Elapsed { after: Duration::from_secs(2) };
/// assert_eq!(elapsed.to_string(), "call timed out after 2s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call timed out after {after:?}")]
pub struct Elapsed {
    /// The timeout that passed.
    pub after: Duration,
}
