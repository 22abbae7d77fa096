//! Admission: unique jobs and debounced jobs, one state machine.

use serde::{Deserialize, Serialize};

/// When a job's admission lock is released.
///
/// # Examples
///
/// ```
/// use conc_bus::admission::Release;
///
/// assert_ne!(Release::Processed, Release::Processing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Release {
    /// When the job succeeds or fails for good.
    Processed,
    /// When the job is reserved to run.
    Processing,
    /// Only when the lock expires.
    Expiry,
    /// When the job is reserved to run, or superseded by a later dispatch.
    Debounce,
}

/// The admission lock a job holds: its key and when it lets go. The owner is
/// the job itself (its id), so only this dispatch can release it.
///
/// # Examples
///
/// ```
/// use conc_bus::admission::{Release, Ticket};
///
/// let ticket = Ticket::new("invoice:42", Release::Processed);
/// assert_eq!(ticket.key, "invoice:42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ticket {
    /// The lock's key.
    pub key: String,
    /// When it is released.
    pub release: Release,
}

impl Ticket {
    /// A ticket for `key`, released as `release` says.
    pub fn new(key: impl Into<String>, release: Release) -> Self {
        Self { key: key.into(), release }
    }
}
