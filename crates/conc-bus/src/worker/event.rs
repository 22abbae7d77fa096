//! [`WorkerEvent`]: what a worker tells its subscribers, as it happens.

use std::time::Duration;

use crate::failed::FailReason;
use crate::id::JobId;

/// Something a worker did or noticed. Subscribe with
/// [`Worker::subscribe`](crate::Worker::subscribe); events are built only
/// while someone is subscribed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{JobId, WorkerEvent};
///
/// let event = WorkerEvent::Processed { id: JobId::from_u128(1), name: "ping".into(), queue: "default".into(), runtime: Duration::from_millis(3) };
/// assert!(matches!(event, WorkerEvent::Processed { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// An attempt started.
    Processing {
        /// The job.
        id: JobId,
        /// Its name.
        name: String,
        /// Its queue.
        queue: String,
        /// Which attempt (1 for the first).
        attempt: u32,
    },
    /// An attempt succeeded and the job was acknowledged.
    Processed {
        /// The job.
        id: JobId,
        /// Its name.
        name: String,
        /// Its queue.
        queue: String,
        /// How long the attempt ran.
        runtime: Duration,
    },
    /// An attempt failed; the job is retried later unless `dead` says why not.
    Failed {
        /// The job.
        id: JobId,
        /// Its name.
        name: String,
        /// Its queue.
        queue: String,
        /// Which attempt.
        attempt: u32,
        /// The error, with its chain.
        error: String,
        /// Set when the job went to the failed store: which limit tripped.
        dead: Option<FailReason>,
    },
    /// The job was put back on its queue, not as a failure.
    Released {
        /// The job.
        id: JobId,
        /// Its queue.
        queue: String,
        /// When it becomes available again.
        delay: Duration,
    },
    /// A reservation found a job dead (out of attempts, past its deadline)
    /// and stored it as failed without running it.
    FoundDead {
        /// The job.
        id: JobId,
        /// Its name.
        name: String,
        /// Its queue.
        queue: String,
        /// Which limit tripped.
        reason: FailReason,
    },
    /// The worker lost a job's lease (it expired, and the job was taken
    /// again); the attempt was abandoned and its result not recorded.
    LeaseLost {
        /// The job.
        id: JobId,
        /// Its queue.
        queue: String,
    },
    /// A job waited longer than its queue's threshold before it started.
    LongWait {
        /// The queue.
        queue: String,
        /// How long the job waited.
        waited: Duration,
        /// The threshold.
        threshold: Duration,
    },
    /// The backend failed; the worker retries after `retry_in`.
    BackendError {
        /// The error.
        error: String,
        /// The wait before the next try.
        retry_in: Duration,
    },
    /// The backend answered again after failing.
    BackendRecovered,
    /// The worker is stopping.
    Stopping {
        /// Why.
        reason: WorkerStop,
    },
}

/// Why a worker stopped.
///
/// # Examples
///
/// ```
/// use conc_bus::WorkerStop;
///
/// assert_eq!(WorkerStop::MaxJobs.to_string(), "it finished its max_jobs");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerStop {
    /// `stop` was called (or the registry shut it down).
    #[error("it was asked to stop")]
    Requested,
    /// It finished `max_jobs` jobs.
    #[error("it finished its max_jobs")]
    MaxJobs,
    /// It ran for `max_time`.
    #[error("it ran for its max_time")]
    MaxTime,
    /// Its queues were empty and it stops when empty.
    #[error("its queues were empty")]
    Empty,
}
