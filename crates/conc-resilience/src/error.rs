//! The errors the primitives share: what stopped a call, and a tower service
//! called before it was ready.

use std::fmt;

use crate::{BulkheadError, Elapsed, Rejected, Shed};

/// What kind of failure a [`ResilienceError`] is, for fallbacks and metrics.
///
/// # Examples
///
/// ```
/// use conc_resilience::ErrorKind;
///
/// assert!(ErrorKind::BreakerOpen.is_rejection());
/// assert!(!ErrorKind::Timeout.is_rejection());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation's own error.
    Inner,
    /// The circuit breaker refused the call.
    BreakerOpen,
    /// The bulkhead refused the call.
    BulkheadFull,
    /// A timeout cut the call (or the whole run) off.
    Timeout,
    /// The load shedder refused the call.
    Shed,
}

impl ErrorKind {
    /// Whether the call was refused before it ran (breaker, bulkhead, shedder).
    pub fn is_rejection(self) -> bool {
        matches!(self, Self::BreakerOpen | Self::BulkheadFull | Self::Shed)
    }
}

/// The error of a [`Stack`](crate::Stack) run, as a [`Fallback`](crate::Fallback)
/// sees it: the operation's own error, or which primitive stopped it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Elapsed, ErrorKind, ResilienceError};
///
/// let error: ResilienceError<std::io::Error> = ResilienceError::Timeout(Elapsed { after: Duration::from_secs(1) });
/// assert_eq!(error.kind(), ErrorKind::Timeout);
/// assert!(error.into_inner().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResilienceError<E> {
    /// The operation ran and failed (after any retries).
    Inner(E),
    /// The circuit breaker refused the call.
    BreakerOpen(Rejected),
    /// The bulkhead refused the call.
    BulkheadFull(BulkheadError),
    /// A timeout elapsed.
    Timeout(Elapsed),
    /// The load shedder refused the call.
    Shed(Shed),
}

impl<E> ResilienceError<E> {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Inner(_) => ErrorKind::Inner,
            Self::BreakerOpen(_) => ErrorKind::BreakerOpen,
            Self::BulkheadFull(_) => ErrorKind::BulkheadFull,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Shed(_) => ErrorKind::Shed,
        }
    }

    /// The operation's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for ResilienceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inner(error) => error.fmt(f),
            Self::BreakerOpen(rejected) => rejected.fmt(f),
            Self::BulkheadFull(error) => error.fmt(f),
            Self::Timeout(elapsed) => elapsed.fmt(f),
            Self::Shed(shed) => shed.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ResilienceError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Inner(error) => Some(error),
            Self::BreakerOpen(rejected) => Some(rejected),
            Self::BulkheadFull(error) => Some(error),
            Self::Timeout(elapsed) => Some(elapsed),
            Self::Shed(shed) => Some(shed),
        }
    }
}

/// A tower service of this crate was called without a successful
/// `poll_ready` first.
///
/// # Examples
///
/// ```
/// use conc_resilience::NotReady;
///
/// assert_eq!(NotReady.to_string(), "service called before poll_ready returned ready");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("service called before poll_ready returned ready")]
pub struct NotReady;
