//! Errors: why work was refused (with the work handed back), why a task gave
//! no output, why a builder refused its settings.

use std::fmt;

/// Why a pool refused a task. The task is handed back in every variant, so
/// nothing a caller submitted is lost: retry it, run it inline, or drop it.
///
/// # Examples
///
/// ```
/// use conc_pool::{BlockingPool, SubmitError};
///
/// let pool = BlockingPool::builder().workers(1).queue_capacity(1).build()?;
/// let (hold, release) = std::sync::mpsc::channel::<()>();
/// let busy = pool.submit(move || { release.recv().ok(); }).unwrap(); // occupies the worker
/// # while pool.metrics().busy == 0 { std::thread::yield_now(); }
/// let queued = pool.submit(|| 1).unwrap(); // fills the queue
/// match pool.try_submit(|| 2) {
///     Err(SubmitError::Full(task)) => assert_eq!(task(), 2), // handed back, runnable
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// drop(hold);
/// busy.join()?;
/// assert_eq!(queued.join()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum SubmitError<T> {
    /// The queue was full and the rejection policy refused the task.
    Full(T),
    /// The pool is shutting down or shut down.
    Closed(T),
    /// The queue stayed full for the whole blocking timeout.
    Timeout(T),
}

impl<T> SubmitError<T> {
    /// The task that was refused.
    pub fn into_task(self) -> T {
        match self {
            Self::Full(task) | Self::Closed(task) | Self::Timeout(task) => task,
        }
    }

    /// The same error around another value (the task transformed).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> SubmitError<U> {
        match self {
            Self::Full(task) => SubmitError::Full(f(task)),
            Self::Closed(task) => SubmitError::Closed(f(task)),
            Self::Timeout(task) => SubmitError::Timeout(f(task)),
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Full(_) => "Full",
            Self::Closed(_) => "Closed",
            Self::Timeout(_) => "Timeout",
        };
        f.debug_tuple(name).field(&format_args!("..")).finish()
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "pool queue is full; the task was handed back",
            Self::Closed(_) => "pool is shut down; the task was handed back",
            Self::Timeout(_) => {
                "pool queue stayed full until the timeout; the task was handed back"
            }
        })
    }
}

impl<T> std::error::Error for SubmitError<T> {}

/// Why a submitted task produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic was caught and the worker kept serving.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The task was cancelled through its handle (or the handle was dropped)
    /// before it finished.
    #[error("task was cancelled before it finished")]
    Cancelled,
    /// A full queue with the drop-oldest policy evicted the task to make room,
    /// and no eviction callback took it.
    #[error("task was evicted from a full queue to make room for a newer one")]
    Evicted,
    /// The task's deadline passed before it finished (or before it started).
    #[error("task deadline passed before it finished")]
    DeadlineExceeded,
    /// The pool shut down and the task, handed back unstarted, was dropped
    /// without being run.
    #[error("task was never run: the pool shut down and the unstarted task was dropped")]
    NotRun,
}

/// A setting a pool builder refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers` must be at least 1.
    #[error("invalid workers: {value} (must be at least 1)")]
    Workers {
        /// The value given.
        value: usize,
    },
    /// `max_workers` must be at least `workers` (the minimum).
    #[error("invalid max_workers: {value} (must be at least workers, {workers})")]
    MaxWorkers {
        /// The value given.
        value: usize,
        /// The `workers` (minimum) setting.
        workers: usize,
    },
    /// `keep_alive` must be longer than zero.
    #[error("invalid keep_alive: {value:?} (must be longer than zero)")]
    KeepAlive {
        /// The value given.
        value: std::time::Duration,
    },
    /// `queue_capacity` must be at least 1 (use `unbounded()` for no limit).
    #[error("invalid queue_capacity: {value} (must be at least 1)")]
    QueueCapacity {
        /// The value given.
        value: usize,
    },
    /// `aging_step` must be at least 1 dequeue.
    #[error("invalid aging_step: {value} (must be at least 1)")]
    AgingStep {
        /// The value given.
        value: u64,
    },
    /// `stuck_after` must be longer than zero (a zero threshold would count
    /// every busy worker as stuck).
    #[error("invalid stuck_after: {value:?} (must be longer than zero)")]
    StuckAfter {
        /// The value given.
        value: std::time::Duration,
    },
    /// An async pool needs a tokio runtime: build it inside one or pass a handle.
    #[error("invalid runtime: no tokio runtime is running and none was given")]
    NoRuntime,
    /// The operating system refused to start a worker thread.
    #[error("could not start worker thread {index}: {message}")]
    Spawn {
        /// The worker's index.
        index: usize,
        /// The operating system's error.
        message: String,
    },
}

/// A batch submission stopped at its first refused task. Nothing is lost:
/// the accepted tasks keep running (their handles are in `accepted`), and
/// every task not accepted is handed back in `rejected`, in input order.
#[non_exhaustive]
pub struct BatchError<T, F> {
    /// Handles of the tasks accepted before the refusal.
    pub accepted: crate::Batch<T>,
    /// The refused task and every task after it.
    pub rejected: Vec<F>,
    /// Why the first of `rejected` was refused.
    pub reason: SubmitError<()>,
}

impl<T, F> fmt::Debug for BatchError<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchError")
            .field("accepted", &self.accepted.len())
            .field("rejected", &self.rejected.len())
            .field("reason", &self.reason)
            .finish()
    }
}

impl<T, F> fmt::Display for BatchError<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch stopped after {} accepted tasks: {}", self.accepted.len(), self.reason)
    }
}

impl<T, F> std::error::Error for BatchError<T, F> {}
