//! What a breaker answers when it refuses a call, and the error of
//! [`CircuitBreaker::call`](super::CircuitBreaker::call).

use std::fmt;
use std::time::Duration;

use super::state::BreakerState;

/// A call the breaker refused, with when to try again.
///
/// Cheap: `Copy`, at most 24 bytes, no allocation, no backtrace.
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder().build()?;
/// breaker.force_open();
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.state(), BreakerState::ForcedOpen);
/// assert_eq!(rejected.retry_after(), None);
/// assert_eq!(rejected.to_string(), "circuit breaker is forced-open");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub(crate) state: BreakerState,
    pub(crate) retry_after: Option<Duration>,
}

impl Rejected {
    /// The state that refused the call: open, forced open or half-open (all
    /// probes taken).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How long until the breaker admits probes, when known: the rest of the
    /// wait in open. `None` when forced open or half-open with every probe taken.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker is {}", self.state)?;
        if let Some(after) = self.retry_after {
            write!(f, "; retry after {after:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call): a rejection, or the call's own error.
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerError, CircuitBreaker};
///
/// # futures::executor::block_on(async {
/// let breaker = CircuitBreaker::builder().build()?;
/// let failed: BreakerError<&str> = breaker.call(async { Err::<(), _>("down") }).await.unwrap_err();
/// assert_eq!(failed.into_inner(), Some("down"));
/// breaker.force_open();
/// let refused = breaker.call(async { Ok::<_, &str>(()) }).await.unwrap_err();
/// assert!(refused.rejected().is_some());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// The breaker refused the call; the future was dropped without being polled.
    Rejected(Rejected),
    /// The call ran and failed.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The rejection, if the breaker refused the call.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            Self::Inner(_) => None,
        }
    }

    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Rejected(_) => None,
            Self::Inner(error) => Some(error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(rejected) => rejected.fmt(f),
            Self::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            Self::Inner(error) => Some(error),
        }
    }
}
