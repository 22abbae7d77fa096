//! Task handles: await (or block on) a task's output, or cancel it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::JoinError;
use crate::result_cell::CellReceiver;

/// The handle of one submitted task: a future resolving to the task's output,
/// or to the [`JoinError`] saying why there is none.
///
/// Dropping the handle cancels the task (like `futures`' `RemoteHandle`): a
/// queued task is then never started, a running async task is dropped at its
/// next suspension point. Use `spawn` for fire-and-forget work.
///
/// # Examples
///
/// ```
/// use conc_pool::{AsyncPool, JoinError};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = AsyncPool::builder().workers(2).build()?;
/// let handle = pool.submit(async { 21 * 2 }).await.unwrap();
/// assert_eq!(handle.await?, 42);
///
/// let panics = pool.submit(async { if true { panic!("bad row") } else { 0 } }).await.unwrap();
/// assert!(matches!(panics.await, Err(JoinError::Panicked { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use = "dropping a task handle cancels the task; use `spawn` for fire-and-forget work"]
pub struct TaskHandle<T> {
    /// The result slot at the head of the task's allocation (see
    /// `crate::result_cell`), whichever pool runs it.
    rx: CellReceiver<T>,
    cancelled: bool,
}

impl<T> TaskHandle<T> {
    /// A handle reading from a task's result slot.
    pub(crate) fn from_cell(rx: CellReceiver<T>) -> Self {
        Self { rx, cancelled: false }
    }

    /// Cancels the task: a queued task will not start, a running async task
    /// is dropped at its next suspension point, a running blocking closure
    /// sees it through [`CancelToken::is_cancelled`](crate::CancelToken::is_cancelled).
    /// The handle then resolves to [`JoinError::Cancelled`], unless the task
    /// had already finished, in which case its output is kept.
    pub fn cancel(&mut self) {
        self.cancelled = true;
        self.rx.close();
    }

    /// Whether the task has finished (its result is waiting in the handle).
    pub fn is_finished(&self) -> bool {
        self.rx.is_finished()
    }

    /// Blocks the current thread until the task finishes. Inside an async
    /// runtime, await the handle instead.
    ///
    /// # Panics
    ///
    /// The handle of an async pool's task, when called from inside an async
    /// execution context (as tokio's own blocking calls do): a worker thread
    /// blocked on an async pool's task may be the one that would run it, and
    /// a hang would be silent. A blocking pool's handle blocks the thread
    /// wherever it is called.
    pub fn join(self) -> Result<T, JoinError> {
        if self.rx.runs_a_future() {
            refuse_inside_async_context();
        }
        self.rx.wait().unwrap_or(Err(GONE))
    }
}

/// Panics inside an async execution context, with tokio's own message for
/// blocking there. tokio has no public predicate for that context, so this
/// asks one of its blocking calls, on a channel already holding its value
/// (outside such a context it returns at once).
fn refuse_inside_async_context() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(());
    let _ = rx.blocking_recv();
}

/// What a handle whose task dropped its sender without a result resolves
/// to: that happens only when the task was cancelled (through the handle, or
/// by a shutdown dropping a running async task). Every other path sends its
/// reason.
const GONE: JoinError = JoinError::Cancelled;

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.rx.poll(cx).map(|result| result.unwrap_or(Err(GONE)))
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

/// The handles of a batch: resolves to every task's result, **in input
/// order**, whatever order the tasks finished in.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(4).build()?;
/// let batch = pool.submit_batch((0..10).map(|i| move || i * i)).unwrap();
/// let squares: Vec<u64> = batch.join().into_iter().collect::<Result<_, _>>()?;
/// assert_eq!(squares, (0..10).map(|i| i * i).collect::<Vec<_>>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a batch cancels its tasks"]
pub struct Batch<T> {
    handles: Vec<Option<TaskHandle<T>>>,
    results: Vec<Option<Result<T, JoinError>>>,
}

impl<T> Batch<T> {
    pub(crate) fn new(handles: Vec<TaskHandle<T>>) -> Self {
        let results = handles.iter().map(|_| None).collect();
        Self { handles: handles.into_iter().map(Some).collect(), results }
    }

    /// How many tasks the batch holds.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Cancels every task of the batch that has not finished.
    pub fn cancel(&mut self) {
        for handle in self.handles.iter_mut().flatten() {
            handle.cancel();
        }
    }

    /// Blocks the current thread until every task finished; results in
    /// input order. Inside an async runtime, await the batch instead.
    ///
    /// # Panics
    ///
    /// As [`TaskHandle::join`]: a batch of an async pool's tasks, when called
    /// from inside an async execution context.
    pub fn join(self) -> Vec<Result<T, JoinError>> {
        self.handles
            .into_iter()
            .zip(self.results)
            .map(|(handle, done)| match (done, handle) {
                (Some(result), _) => result,
                (None, Some(handle)) => handle.join(),
                (None, None) => Err(JoinError::Cancelled),
            })
            .collect()
    }
}

impl<T> Unpin for Batch<T> {}

impl<T> Future for Batch<T> {
    type Output = Vec<Result<T, JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (handle, slot) in this.handles.iter_mut().zip(this.results.iter_mut()) {
            if let Some(inner) = handle {
                match Pin::new(inner).poll(cx) {
                    Poll::Ready(result) => {
                        *slot = Some(result);
                        *handle = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(
            std::mem::take(&mut this.results)
                .into_iter()
                .map(|r| r.unwrap_or(Err(JoinError::Cancelled)))
                .collect(),
        )
    }
}

impl<T> fmt::Debug for Batch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("len", &self.handles.len()).finish_non_exhaustive()
    }
}
