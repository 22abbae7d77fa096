//! [`WorkflowError`]: a batch or chain operation that was refused or failed.

use conc_core::config::ConfigError;

use super::BatchId;
use crate::job::DecodeError;
use crate::queue::{PushError, QueueError};

/// Why a batch or chain operation did not happen. A refused dispatch hands
/// the jobs back (as envelopes, in [`PushError`]).
///
/// # Examples
///
/// ```
/// use conc_bus::batch::{BatchId, WorkflowError};
///
/// let error = WorkflowError::NotFound { id: BatchId::new() };
/// assert!(error.to_string().contains("no batch"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// No batch has this id (never created, or pruned).
    #[error("there is no batch {id}")]
    NotFound {
        /// The id asked for.
        id: BatchId,
    },
    /// The batch is finished or cancelled: nothing can be added to it.
    #[error("batch {id} is {state}: no member can be added")]
    Closed {
        /// The batch.
        id: BatchId,
        /// `"finished"` or `"cancelled"`.
        state: &'static str,
    },
    /// The batch cannot take its failed members back
    /// ([`Queue::recover_batch`](crate::Queue::recover_batch)).
    #[error("batch {id} cannot be recovered: {reason}")]
    NotRecoverable {
        /// The batch.
        id: BatchId,
        /// Why: it is not finished, it timed out, or members were cancelled.
        reason: &'static str,
    },
    /// The job that asked to add to its batch is not a member of one.
    #[error("job {job} is not a member of a batch")]
    NotInBatch {
        /// The job.
        job: crate::id::JobId,
    },
    /// A job of the batch or chain does not serialize.
    #[error(transparent)]
    Encode(#[from] DecodeError),
    /// A job's options are invalid.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The backend refused the jobs (full queue, duplicate id, failure); the
    /// jobs are in the error.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The backend failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}
