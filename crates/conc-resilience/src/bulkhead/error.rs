//! Why a bulkhead refused a call, and the refused work handed back.

use std::fmt;
use std::time::Duration;

/// Why a bulkhead refused a call.
///
/// # Examples
///
/// ```
/// use conc_resilience::{Bulkhead, BulkheadError};
///
/// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
/// let _held = bulkhead.try_acquire()?;
/// let refused = bulkhead.try_acquire().unwrap_err();
/// assert_eq!(refused, BulkheadError::Full { max_concurrent: 1, queued: 0 });
/// assert_eq!(refused.to_string(), "bulkhead is full: 1 calls running, 0 waiting");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BulkheadError {
    /// Every slot was taken and the queue was full (or there is no queue).
    #[error("bulkhead is full: {max_concurrent} calls running, {queued} waiting")]
    Full {
        /// The bulkhead's limit.
        max_concurrent: u32,
        /// Callers waiting when this one was refused.
        queued: u32,
    },
    /// The caller waited `max_wait` in the queue without getting a slot.
    #[error("no bulkhead slot within {waited:?}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
    },
}

/// A call a bulkhead refused, handed back with the reason.
///
/// # Examples
///
/// ```
/// use conc_resilience::Bulkhead;
///
/// # futures::executor::block_on(async {
/// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
/// let _held = bulkhead.try_acquire()?;
/// let refused = bulkhead.try_call(async { 5 }).await.unwrap_err();
/// assert_eq!(refused.work.await, 5, "the work comes back untouched");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
#[must_use = "the refused work is handed back to be run or dropped"]
pub struct Refused<F> {
    /// Why.
    pub error: BulkheadError,
    /// The work, never started.
    pub work: F,
}

impl<F> fmt::Display for Refused<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<F: fmt::Debug> std::error::Error for Refused<F> {}
