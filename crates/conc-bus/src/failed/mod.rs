//! The failed store's vocabulary: a [`FailedJob`], why it failed
//! ([`FailReason`]), how to page through them ([`FailedQuery`]) and how to
//! pick some for a retry or a delete ([`Selection`]).
//!
//! Every backend keeps failed jobs with their envelope (payload, attempt
//! history, error chain) until they are retried, forgotten, flushed or pruned;
//! [`Queue`](crate::Queue) has the operations.

use serde::{Deserialize, Serialize};

use crate::id::JobId;
use crate::job::Envelope;

/// Why a job was moved to the failed store. Each says which limit tripped, so
/// a crash that used up the attempts is never mistaken for a timeout.
///
/// # Examples
///
/// ```
/// use conc_bus::FailReason;
///
/// assert_eq!(FailReason::Abandoned.to_string(), "its attempts ran out while a worker held it (the worker may have crashed)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum FailReason {
    /// An attempt failed and `max_attempts` attempts had been made.
    #[error("it failed and used its last attempt")]
    AttemptsExhausted,
    /// `max_exceptions` attempts failed (releases do not count).
    #[error("it reached its limit of failed attempts")]
    TooManyExceptions,
    /// Its `retry_until` deadline passed before another attempt.
    #[error("its retry deadline passed")]
    DeadlinePassed,
    /// The handler said no retry can help.
    #[error("its handler failed it as fatal")]
    Fatal,
    /// An attempt ran out of time and the job fails on timeout.
    #[error("an attempt timed out and it fails on timeout")]
    TimedOut,
    /// A reservation found its attempts used up by attempts that never
    /// reported back: the workers holding it died or lost it.
    #[error("its attempts ran out while a worker held it (the worker may have crashed)")]
    Abandoned,
    /// The job was released after its last attempt.
    #[error("it was released after its last attempt")]
    ReleasedOut,
    /// Its payload could not be decoded, or no handler knows its name.
    #[error("its payload could not be decoded")]
    Undecodable,
}

/// A job in the failed store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedJob {
    /// The job as it was when it failed, history included.
    pub envelope: Envelope,
    /// Reservations it had, the failing one included.
    pub attempts: u32,
    /// When it was stored as failed, in Unix milliseconds.
    pub failed_at: u64,
    /// Which limit tripped.
    pub reason: FailReason,
    /// The last error, with its chain of sources.
    pub error: String,
}

impl FailedJob {
    /// `envelope`, failed after `attempts` attempts at `failed_at` for `reason` with `error`.
    pub fn new(
        envelope: Envelope,
        attempts: u32,
        failed_at: u64,
        reason: FailReason,
        error: impl Into<String>,
    ) -> Self {
        Self { envelope, attempts, failed_at, reason, error: error.into() }
    }
}

/// A page of the failed store: optionally of one queue or job name, after a
/// cursor (the last id of the previous page), at most `limit` jobs.
///
/// # Examples
///
/// ```
/// use conc_bus::FailedQuery;
///
/// let query = FailedQuery::new().queue("mail").limit(20);
/// assert_eq!(query.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct FailedQuery {
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs of this name.
    pub name: Option<String>,
    /// Only jobs whose id sorts after this one (the previous page's last).
    pub after: Option<JobId>,
    /// The most jobs to return. Defaults to 100.
    pub limit: usize,
}

impl Default for FailedQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl FailedQuery {
    /// The first 100 failed jobs of every queue and name.
    pub fn new() -> Self {
        Self { queue: None, name: None, after: None, limit: 100 }
    }

    /// Only jobs of `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only jobs named `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs after `id`.
    pub fn after(mut self, id: JobId) -> Self {
        self.after = Some(id);
        self
    }

    /// At most `limit` jobs.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `job` belongs to this query's filter (the cursor aside).
    pub(crate) fn matches(&self, job: &FailedJob) -> bool {
        self.queue.as_deref().is_none_or(|q| job.envelope.queue == q)
            && self.name.as_deref().is_none_or(|n| job.envelope.name == n)
            && self.after.is_none_or(|after| job.envelope.id > after)
    }
}

/// Which failed jobs an operation applies to.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobId, Selection};
///
/// let one = Selection::Ids(vec![JobId::from_u128(1)]);
/// assert!(matches!(Selection::Queue("mail".into()), Selection::Queue(_)));
/// # let _ = one;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// These jobs.
    Ids(Vec<JobId>),
    /// Every failed job of this queue.
    Queue(String),
    /// Every failed job that failed before this Unix millisecond (pruning by age).
    FailedBefore(u64),
    /// Every failed job.
    All,
}

impl Selection {
    /// Whether `job` is selected.
    pub(crate) fn selects(&self, job: &FailedJob) -> bool {
        match self {
            Self::Ids(ids) => ids.contains(&job.envelope.id),
            Self::Queue(queue) => job.envelope.queue == *queue,
            Self::FailedBefore(cutoff) => job.failed_at < *cutoff,
            Self::All => true,
        }
    }
}
