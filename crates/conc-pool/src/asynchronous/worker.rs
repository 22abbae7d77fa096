//! The async pool's flavor of the engine: worker tasks on a tokio runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::JoinError;
use crate::engine::{Engine, Flavor};
use crate::queue::{Entry, Pop};
use crate::task::future::FutureJob;

/// Worker tasks on a tokio runtime.
#[derive(Debug)]
pub(crate) struct AsyncFlavor {
    pub(super) runtime: Handle,
    /// The worker tasks started (finished ones are pruned as it grows), so a
    /// shutdown can wait for them and cut off the ones that overrun.
    pub(super) handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Flavor for AsyncFlavor {
    type Job = FutureJob;
    type Unstarted = UnstartedFuture;
    type StartError = std::convert::Infallible;

    fn start_worker(engine: &Arc<Engine<Self>>, index: usize) -> Result<(), Self::StartError> {
        let span =
            tracing::debug_span!("conc_pool.worker", pool = %engine.core.name, worker = index);
        let task = worker(Arc::clone(engine), index).instrument(span);
        let handle = engine.flavor.runtime.spawn(task);
        let mut handles = engine.flavor.handles.lock().unwrap_or_else(PoisonError::into_inner);
        if handles.len() == handles.capacity() {
            handles.retain(|handle| !handle.is_finished());
        }
        handles.push(handle);
        Ok(())
    }

    fn hand_back(_: &Engine<Self>, job: FutureJob, reason: JoinError) -> UnstartedFuture {
        UnstartedFuture { job: Some(job), reason }
    }
}

/// An async task that was accepted and never started, handed back by a
/// shutdown or an eviction. Await [`run`](Self::run) to resolve its handle
/// as if the pool had run it; drop it and the handle resolves to
/// [`JoinError::NotRun`] (or [`JoinError::Evicted`]).
///
/// # Examples
///
/// ```
/// use conc_pool::AsyncPool;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let pool = AsyncPool::builder().workers(1).build()?;
/// let gate = std::sync::Arc::new(tokio::sync::Notify::new());
/// let held = gate.clone();
/// pool.spawn(async move { held.notified().await }).await.unwrap(); // occupies the worker
/// # while pool.metrics().busy == 0 { tokio::task::yield_now().await; }
/// let queued = pool.submit(async { "late" }).await.unwrap();
/// let report = pool.shutdown_now().await;
/// for task in report.unstarted {
///     task.run().await; // run it here instead
/// }
/// assert_eq!(queued.await?, "late");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping an unstarted task abandons it"]
pub struct UnstartedFuture {
    job: Option<FutureJob>,
    reason: JoinError,
}

impl UnstartedFuture {
    /// Runs the task on the caller's task; its handle gets the output.
    pub async fn run(mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.await;
        }
    }
}

impl Drop for UnstartedFuture {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            job.abandon(self.reason.clone());
        }
    }
}

impl fmt::Debug for UnstartedFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnstartedFuture").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// What a waiting worker gets.
enum Found {
    Job(Entry<FutureJob>),
    /// A retirement request is pending: look at it.
    Retire,
    /// The pool closed and the queue is empty.
    Closed,
}

/// Waits for the next job, as worker `index`. Takes part in tokio's
/// cooperative budget: a worker that always finds a job still yields once
/// its task's budget is spent, so on a current-thread runtime the I/O and
/// timer driver and the other tasks keep running.
struct Next<'a> {
    engine: &'a Engine<AsyncFlavor>,
    index: usize,
    /// Whether the worker is registered idle (it waited at least once).
    registered: bool,
}

impl Future for Next<'_> {
    type Output = Found;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Found> {
        let queue = &self.engine.core.queue;
        if self.registered && self.engine.retire_requested() {
            queue.unregister(self.index);
            return Poll::Ready(Found::Retire);
        }
        // Out of budget: tokio wakes this task again after a turn of others.
        let budget = ready!(tokio::task::coop::poll_proceed(cx));
        Poll::Ready(match queue.pop_or_register(self.index, cx.waker()) {
            Pop::Job(entry) => {
                budget.made_progress();
                if self.registered {
                    // Woken by something other than a push (a waker a past
                    // task kept): make sure no stale registration stays.
                    queue.unregister(self.index);
                }
                Found::Job(entry)
            }
            Pop::Idle => {
                self.registered = true;
                return Poll::Pending;
            }
            Pop::Closed => Found::Closed,
        })
    }
}

/// Waits for the next job; in a dynamic pool, at most the keep-alive, after
/// which the worker may retire (`None`: leave).
async fn next(engine: &Engine<AsyncFlavor>, index: usize) -> Option<(Found, bool)> {
    let mut next = Next { engine, index, registered: false };
    if !engine.dynamic() {
        let found = (&mut next).await;
        return Some((found, next.registered));
    }
    if let Ok(found) = tokio::time::timeout(engine.keep_alive, &mut next).await {
        return Some((found, next.registered));
    }
    // Idle past the keep-alive. Leave the idle list under the queue lock,
    // then take any job a push raced in.
    let queue = &engine.core.queue;
    queue.unregister(index);
    match queue.pop() {
        Some(entry) => Some((Found::Job(entry), true)),
        None if engine.retire_idle(index) => None,
        None => Some((Found::Retire, true)),
    }
}

async fn worker(engine: Arc<Engine<AsyncFlavor>>, index: usize) {
    let core = &engine.core;
    let slot = core.slot(index);
    let mut now = core.now();
    while !engine.between_tasks(index, now) {
        let Some((found, waited)) = next(&engine, index).await else { break };
        if waited {
            now = core.now();
        }
        let entry = match found {
            Found::Job(entry) => entry,
            Found::Retire => continue,
            Found::Closed => {
                engine.closed_leave();
                break;
            }
        };
        core.start(slot, entry.enqueued_nanos, now);
        let outcome = entry.job.await;
        now = core.finish(slot, outcome, now);
    }
    engine.worker_left(index);
}
