//! Errors of queue operations: a lost lease, a refused push (the jobs handed
//! back), a backend that failed.

use std::fmt;

use conc_core::BoxError;
use conc_core::config::ConfigError;

use super::backend::Pushed;
use crate::id::JobId;

/// A transition refused because its lease is no longer the job's: it expired
/// and the job was reserved again (or recovered), or the job is gone. Nothing
/// was changed.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobId, LeaseLost};
///
/// let lost = LeaseLost::new(JobId::from_u128(1));
/// assert_eq!(lost.to_string(), "lease on job 00000000000000000000000001 was lost: the job was reserved again or is gone");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("lease on job {job} was lost: the job was reserved again or is gone")]
#[non_exhaustive]
pub struct LeaseLost {
    /// The job.
    pub job: JobId,
}

impl LeaseLost {
    /// The lease on `job` was lost.
    pub fn new(job: JobId) -> Self {
        Self { job }
    }
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A transition carried a lease that is no longer the job's.
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
    /// The backend could not be reached or failed; the operation may be retried.
    #[error("queue backend failed: {0}")]
    Backend(#[source] BoxError),
    /// A stored job or setting could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A setting or argument was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a push was refused. The jobs are handed back in every case, so nothing
/// given to the queue is lost.
#[non_exhaustive]
pub enum PushError {
    /// The queue is at its bounded depth and its overflow policy refuses more.
    Full {
        /// The queue.
        queue: String,
        /// Its bound.
        capacity: u64,
        /// The jobs, untouched.
        jobs: Vec<Pushed>,
    },
    /// A job with the same id is already stored (a retried push that had
    /// landed); no job of the batch was stored.
    Duplicate {
        /// The id already present.
        id: JobId,
        /// The jobs, untouched.
        jobs: Vec<Pushed>,
    },
    /// A job's settings were refused.
    Invalid {
        /// What was wrong.
        error: ConfigError,
        /// The jobs, untouched.
        jobs: Vec<Pushed>,
    },
    /// A unique job's key is held by another job; no job was stored.
    Locked {
        /// The key.
        key: String,
        /// The job holding it.
        held_by: JobId,
        /// The jobs, untouched.
        jobs: Vec<Pushed>,
    },
    /// The backend failed; none, or all, of the jobs may have been stored when
    /// the failure came after the write (retrying with the same ids is safe:
    /// a stored id is refused as a duplicate).
    Backend {
        /// The backend's error.
        error: BoxError,
        /// The jobs.
        jobs: Vec<Pushed>,
    },
}

impl PushError {
    /// The jobs handed back.
    pub fn into_jobs(self) -> Vec<Pushed> {
        match self {
            Self::Full { jobs, .. }
            | Self::Duplicate { jobs, .. }
            | Self::Invalid { jobs, .. }
            | Self::Locked { jobs, .. }
            | Self::Backend { jobs, .. } => jobs,
        }
    }

    /// The jobs handed back, by reference.
    pub fn jobs(&self) -> &[Pushed] {
        match self {
            Self::Full { jobs, .. }
            | Self::Duplicate { jobs, .. }
            | Self::Invalid { jobs, .. }
            | Self::Locked { jobs, .. }
            | Self::Backend { jobs, .. } => jobs,
        }
    }
}

impl fmt::Debug for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jobs = self.jobs().len();
        match self {
            Self::Full { queue, capacity, .. } => f
                .debug_struct("Full")
                .field("queue", queue)
                .field("capacity", capacity)
                .field("jobs", &jobs)
                .finish(),
            Self::Duplicate { id, .. } => {
                f.debug_struct("Duplicate").field("id", id).field("jobs", &jobs).finish()
            }
            Self::Invalid { error, .. } => {
                f.debug_struct("Invalid").field("error", error).field("jobs", &jobs).finish()
            }
            Self::Locked { key, held_by, .. } => f
                .debug_struct("Locked")
                .field("key", key)
                .field("held_by", held_by)
                .field("jobs", &jobs)
                .finish(),
            Self::Backend { error, .. } => {
                f.debug_struct("Backend").field("error", error).field("jobs", &jobs).finish()
            }
        }
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.jobs().len();
        match self {
            Self::Full { queue, capacity, .. } => {
                write!(f, "queue `{queue}` is full ({capacity} jobs); {n} job(s) handed back")
            }
            Self::Duplicate { id, .. } => {
                write!(f, "job {id} is already stored; {n} job(s) handed back")
            }
            Self::Invalid { error, .. } => write!(f, "{error}; {n} job(s) handed back"),
            Self::Locked { key, held_by, .. } => {
                write!(f, "key `{key}` is held by job {held_by}; {n} job(s) handed back")
            }
            Self::Backend { error, .. } => {
                write!(f, "queue backend failed: {error}; {n} job(s) handed back")
            }
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid { error, .. } => Some(error),
            Self::Backend { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}
