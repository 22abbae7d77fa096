//! Errors: why work was refused (with the work handed back), why a task gave
//! no output, why a blocking pool could not be built.

use std::fmt;
use std::future::Future;

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

/// Why a submitted task produced no output: what awaiting (or joining) its
/// [`TaskHandle`](crate::TaskHandle) gives instead.
///
/// # Examples
///
/// ```
/// use conc_pool::{BlockingPool, JoinError};
///
/// let pool = BlockingPool::builder().workers(1).build()?;
/// let handle = pool.submit(|| -> u32 { panic!("bad row") }).unwrap();
/// assert_eq!(handle.join(), Err(JoinError::Panicked { message: "bad row".into() }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
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

/// Why [`BlockingPoolBuilder::build`](crate::BlockingPoolBuilder::build) (or a
/// facade built on a blocking pool) failed: a refused setting, or the
/// operating system refusing a worker thread.
///
/// # Examples
///
/// ```
/// use conc_pool::{BlockingPool, PoolBuildError};
///
/// let err = BlockingPool::builder().workers(0).build().unwrap_err();
/// assert!(matches!(err, PoolBuildError::Config(ref e) if e.field == "workers"));
/// assert_eq!(err.to_string(), "invalid `workers` 0: must be at least 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolBuildError {
    /// A setting was refused: the error names the setting, its value and the rule.
    #[error(transparent)]
    Config(#[from] conc_core::config::ConfigError),
    /// The operating system refused to start a worker thread (the threads
    /// already started were stopped again).
    #[error("could not start worker thread {index}")]
    Spawn {
        /// The worker's index.
        index: usize,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A batch submission stopped at its first refused task. Nothing is lost:
/// the accepted tasks keep running (their handles are in `accepted`), and
/// every task not accepted is handed back in `rejected`, in input order.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(1).build()?;
/// drop(pool.shutdown_now());
/// let err = pool.submit_batch((0..3).map(|i| move || i)).unwrap_err();
/// assert_eq!(err.accepted.len(), 0);
/// assert_eq!(err.rejected.len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub struct BatchError<T, F> {
    /// Handles of the tasks accepted before the refusal.
    pub accepted: crate::Batch<T>,
    /// The refused task and every task after it.
    pub rejected: Vec<F>,
    /// Why the first of `rejected` was refused.
    pub reason: SubmitError<()>,
}

impl<T, F> BatchError<T, F> {
    /// The error of a batch that stopped at `refused`: the handles accepted so
    /// far, the refused task and every one after it.
    pub(crate) fn stopped(
        accepted: Vec<crate::TaskHandle<T>>,
        refused: SubmitError<F>,
        rest: impl Iterator<Item = F>,
    ) -> Self {
        let mut rejected = Vec::new();
        let reason = refused.map(|task| rejected.push(task));
        rejected.extend(rest);
        Self { accepted: crate::Batch::new(accepted), rejected, reason }
    }
}

/// Submits every task of a batch through `submit`, stopping at the first refusal.
pub(crate) async fn collect_batch_async<T, F, Fut>(
    tasks: impl IntoIterator<Item = F>,
    mut submit: impl FnMut(F) -> Fut,
) -> Result<crate::Batch<T>, BatchError<T, F>>
where
    Fut: Future<Output = Result<crate::TaskHandle<T>, SubmitError<F>>>,
{
    let mut tasks = tasks.into_iter();
    let mut handles = Vec::with_capacity(batch_capacity(tasks.size_hint().0));
    while let Some(task) = tasks.next() {
        match submit(task).await {
            Ok(handle) => handles.push(handle),
            Err(refused) => return Err(BatchError::stopped(handles, refused, tasks)),
        }
    }
    Ok(crate::Batch::new(handles))
}

/// [`collect_batch_async`] for a submit that never waits.
pub(crate) fn collect_batch<T, F>(
    tasks: impl IntoIterator<Item = F>,
    mut submit: impl FnMut(F) -> Result<crate::TaskHandle<T>, SubmitError<F>>,
) -> Result<crate::Batch<T>, BatchError<T, F>> {
    let batch = std::pin::pin!(collect_batch_async(tasks, |task| std::future::ready(submit(task))));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match batch.poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => unreachable!("a batch of ready submissions never waits"),
    }
}

/// Room reserved up front for a batch's handles: the iterator's lower bound,
/// but never more than a few thousand (an iterator may claim `usize::MAX`).
pub(crate) fn batch_capacity(lower_bound: usize) -> usize {
    lower_bound.min(4_096)
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
