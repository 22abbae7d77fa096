//! The blocking pool: closures on the pool's own OS threads.

mod worker;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use conc_core::backoff::Backoff;
use conc_core::config;
use conc_core::time::saturating_nanos;
use conc_core::{BoxError, BoxFuture};

use crate::builder::{RawSettings, common_setters};
use crate::engine::{Admitted, Engine, Refusal};
use crate::error::collect_batch;
use crate::front::pool_type;
use crate::job::CancelToken;
use crate::queue::Reservation;
use crate::task::{self, Job, TaskExtras};
use crate::{
    Batch, BatchError, PoolBuildError, PoolShutdown, SubmitError, TaskHandle, TaskOptions,
};
use worker::BlockingFlavor;
pub(crate) use worker::ThreadNotify;
pub use worker::Unstarted;

/// Builds a [`BlockingPool`].
///
/// # Examples
///
/// ```
/// use conc_pool::{BlockingPool, Rejection};
///
/// let pool = BlockingPool::builder()
///     .name("thumbnails")
///     .workers(4)
///     .queue_capacity(10_000)
///     .rejection(Rejection::CallerRuns)
///     .build()?;
/// assert_eq!(pool.metrics().workers, 4);
/// # Ok::<(), conc_pool::PoolBuildError>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
#[derive(Debug)]
pub struct BlockingPoolBuilder {
    raw: RawSettings<Unstarted>,
    stack_size: Option<usize>,
}

impl BlockingPoolBuilder {
    common_setters!(BlockingPool, Unstarted);

    /// Validates the settings and starts the worker threads.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError::Config`] naming the refused setting, its value and
    /// the rule; [`PoolBuildError::Spawn`] when a thread cannot start (the
    /// threads already started are stopped again).
    pub fn build(self) -> Result<BlockingPool, PoolBuildError> {
        if let Some(bytes) = self.stack_size {
            config::between(
                "stack_size",
                bytes,
                BlockingPool::MIN_STACK_SIZE,
                BlockingPool::MAX_STACK_SIZE,
            )?;
        }
        let settings = self.raw.validate(BlockingPool::MAX_WORKERS)?;
        Engine::start(settings, BlockingFlavor::new(self.stack_size))
            .map(BlockingPool::from_engine)
            .map_err(|(index, source)| PoolBuildError::Spawn { index, source })
    }

    /// Stack size of the worker threads, in bytes (the platform may round it
    /// up to its minimum). Must be at least [`BlockingPool::MIN_STACK_SIZE`]
    /// (64 KiB: the worker's own loop, work stealing included, needs part of
    /// it) and at most [`BlockingPool::MAX_STACK_SIZE`] (1 GiB). Defaults to
    /// the standard library's.
    pub fn stack_size(self, bytes: usize) -> Self {
        Self { stack_size: Some(bytes), ..self }
    }
}

pool_type! {
    /// A pool of OS threads running closures: bounded or unbounded queue,
    /// priorities with aging, rejection that hands work back, panics caught into
    /// the task's handle, graceful and immediate shutdown.
    ///
    /// Cloning gives another handle to the same pool. When the last handle is
    /// dropped the workers finish the queued tasks and exit.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::{BlockingPool, TaskOptions};
    ///
    /// let pool = BlockingPool::builder().workers(2).build()?;
    /// let sum = pool.submit(|| (1..=100u64).sum::<u64>()).unwrap();
    /// let urgent = pool.submit_with(TaskOptions::new().priority(5), || "first in line").unwrap();
    /// assert_eq!(sum.join()?, 5050);
    /// assert_eq!(urgent.join()?, "first in line");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct BlockingPool(BlockingFlavor);
    max = 1 << 15,
    open = "",
    close = "# Ok::<(), Box<dyn std::error::Error>>(())"
}

impl BlockingPool {
    /// The largest worker stack size `build()` accepts: 1 GiB.
    pub const MAX_STACK_SIZE: usize = 1 << 30;

    /// The smallest worker stack size `build()` accepts: 64 KiB. A worker
    /// that steals from another registers with the deques' memory reclaimer
    /// on first use, which takes several KiB of stack in a debug build.
    pub const MIN_STACK_SIZE: usize = 64 << 10;

    /// A builder with the defaults: one worker per available CPU, unbounded
    /// queue, [`Rejection::Reject`](crate::Rejection::Reject), aging every 64
    /// dequeues, the coarse clock.
    pub fn builder() -> BlockingPoolBuilder {
        BlockingPoolBuilder { raw: RawSettings::new(), stack_size: None }
    }

    /// Admits one task, under the pool's policy (waiting for room under the
    /// block policy) or, for the `try_` forms, without it.
    fn admit(&self, honour_policy: bool) -> Result<Admitted<'_, Job>, Refusal> {
        match self.engine().admit(honour_policy)? {
            Admitted::Wait(timeout) => self
                .wait_for_room(timeout)
                .map(|room| Admitted::Queue(crate::engine::Room::Reserved(room))),
            admitted => Ok(admitted),
        }
    }

    /// Waits for room until `timeout` (parking the submitting thread).
    fn wait_for_room(&self, timeout: Duration) -> Result<Reservation<'_, Job>, Refusal> {
        let queue = &self.engine().core.queue;
        // A timeout too long to represent (`Duration::MAX`) waits forever.
        let deadline = Instant::now().checked_add(timeout);
        let (notify, waker) = ThreadNotify::current();
        let mut ticket = None;
        loop {
            match queue.reserve_or_wait(&waker, &mut ticket) {
                Ok(Some(reservation)) => {
                    queue.cancel_wait(ticket);
                    return Ok(reservation);
                }
                Ok(None) if notify.wait_until(deadline) => {}
                Ok(None) => {
                    queue.cancel_wait(ticket);
                    return Err(Refusal::Timeout);
                }
                Err(()) => return Err(Refusal::Closed),
            }
        }
    }

    /// The deadline, on the pool's timeline, of a task submitted at `now`.
    fn deadline(options: TaskOptions, now: u64) -> Option<u64> {
        // A timeout too long to represent (`Duration::MAX`) is no deadline.
        options.timeout.map(|t| now.saturating_add(saturating_nanos(t))).filter(|&d| d < u64::MAX)
    }

    /// Submits a closure; its handle resolves to the output. On a full queue
    /// the pool's [`Rejection`](crate::Rejection) policy applies.
    ///
    /// # Errors
    ///
    /// [`SubmitError`] with the closure handed back: `Full` (reject policy),
    /// `Timeout` (block policy), `Closed` (shut down).
    pub fn submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(TaskOptions::new(), f)
    }

    /// [`submit`](Self::submit) with a priority and a deadline (checked on
    /// the pool's clock before the closure starts: a running closure cannot
    /// be preempted).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn submit_with<F, T>(
        &self,
        options: TaskOptions,
        f: F,
    ) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_inner(options, f, true, |f, _: &CancelToken<'_>| f())
    }

    /// Submits a closure that can watch for cancellation through its
    /// [`CancelToken`] (a running closure cannot be preempted otherwise).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn submit_cancellable<F, T>(&self, f: F) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&CancelToken<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_inner(TaskOptions::new(), f, true, |f, token| f(token))
    }

    /// Submits without waiting, evicting or running on the caller: on a full
    /// queue the closure comes straight back, with no allocation and no lock.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the closure handed back.
    pub fn try_submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.try_submit_with(TaskOptions::new(), f)
    }

    /// [`try_submit`](Self::try_submit) with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`try_submit`](Self::try_submit).
    pub fn try_submit_with<F, T>(
        &self,
        options: TaskOptions,
        f: F,
    ) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_inner(options, f, false, |f, _: &CancelToken<'_>| f())
    }

    /// Submits `f`, run through `call` (with or without the token).
    pub(crate) fn submit_inner<F, T, C>(
        &self,
        options: TaskOptions,
        f: F,
        honour_policy: bool,
        call: C,
    ) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: Send + 'static,
        T: Send + 'static,
        C: FnOnce(F, &CancelToken<'_>) -> T + Send + 'static,
    {
        let engine = self.engine();
        let admitted = self.admit(honour_policy);
        if let Err(refusal) = admitted {
            // Refused before anything was allocated.
            return Err(engine.refuse(refusal, f));
        }
        let now = options.timeout.map(|_| engine.core.now());
        let deadline = now.and_then(|now| Self::deadline(options, now));
        let extras = TaskExtras::new(deadline);
        if let Ok(Admitted::Queue(room)) = admitted {
            // The task is made (one allocation: the job and its handle's
            // slot) only once the push is sure to succeed, so a refused
            // closure comes back as it was given.
            let mut handle = None;
            engine
                .place(room, f, options.priority, |f| {
                    let (job, made) = task::with_handle(f, call, extras);
                    handle = Some(made);
                    job
                })
                .map_err(|(refusal, f)| engine.refuse(refusal, f))?;
            Ok(handle.expect("a placed task was made"))
        } else {
            let (job, handle) = task::with_handle(f, call, extras);
            let outcome = job.run(now.unwrap_or_else(|| engine.core.now()));
            engine.core.count_outside(outcome);
            Ok(handle)
        }
    }

    /// Submits a fire-and-forget closure. A panic is caught, counted and
    /// logged through `tracing`; the worker keeps serving.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn spawn<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_inner(f, TaskOptions::new(), true)
    }

    /// [`spawn`](Self::spawn) with a priority (the deadline is ignored: a
    /// fire-and-forget task has no handle to report it to).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub fn spawn_with<F>(&self, options: TaskOptions, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_inner(f, options, true)
    }

    /// [`spawn`](Self::spawn) that never waits, evicts or runs on the caller.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the closure handed back.
    pub fn try_spawn<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_inner(f, TaskOptions::new(), false)
    }

    /// [`try_spawn`](Self::try_spawn) with a priority.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the closure handed back.
    pub fn try_spawn_with<F>(&self, options: TaskOptions, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_inner(f, options, false)
    }

    fn spawn_inner<F>(
        &self,
        f: F,
        options: TaskOptions,
        honour_policy: bool,
    ) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let engine = self.engine();
        let extras = TaskExtras::new(None);
        match self.admit(honour_policy) {
            Ok(Admitted::Queue(room)) => engine
                .place(room, f, options.priority, |f| task::spawn(f, extras))
                .map_err(|(refusal, f)| engine.refuse(refusal, f)),
            Ok(_) => {
                engine.core.count_outside(task::spawn(f, extras).run(0));
                Ok(())
            }
            Err(refusal) => Err(engine.refuse(refusal, f)),
        }
    }

    /// Submits every closure, in order; the batch resolves to their outputs
    /// **in input order**. Each closure goes through `submit` (and its policy).
    ///
    /// # Errors
    ///
    /// On the first refusal, [`BatchError`] with the handles of the tasks
    /// already accepted (they keep running) and every closure not accepted,
    /// the refused one first.
    pub fn submit_batch<I, F, T>(&self, tasks: I) -> Result<Batch<T>, BatchError<T, F>>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        collect_batch(tasks, |task| self.submit(task))
    }

    /// Submits an operation retried with `backoff` while it fails: the
    /// handle resolves to its first success, or to its last error once the
    /// backoff's retries run out. The worker sleeps between attempts (use
    /// the async pool for long backoffs). A panic is not retried.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), with the operation handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    /// use conc_core::backoff::Backoff;
    /// use conc_pool::BlockingPool;
    ///
    /// let pool = BlockingPool::builder().workers(1).build()?;
    /// let backoff = Backoff::fixed(Duration::from_millis(1)).max_retries(3).build()?;
    /// let calls = std::sync::Arc::new(AtomicU32::new(0));
    /// let seen = calls.clone();
    /// let handle = pool.submit_retry(backoff, move || {
    ///     if seen.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok("done") }
    /// }).unwrap();
    /// assert_eq!(handle.join()?, Ok("done"));
    /// assert_eq!(calls.load(Ordering::SeqCst), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_retry<F, T, E>(
        &self,
        backoff: Backoff,
        operation: F,
    ) -> Result<TaskHandle<Result<T, E>>, SubmitError<F>>
    where
        F: FnMut() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.submit_inner(
            TaskOptions::new(),
            (operation, backoff),
            true,
            |(mut op, backoff), token| {
                let mut delays = backoff.delays();
                loop {
                    match op() {
                        Ok(value) => return Ok(value),
                        Err(error) => match delays.next() {
                            Some(delay) if !token.is_cancelled() => thread::sleep(delay),
                            _ => return Err(error),
                        },
                    }
                }
            },
        )
        .map_err(|error| error.map(|(op, _)| op))
    }

    /// A typed processor around this pool: every input goes through
    /// `process`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::BlockingPool;
    ///
    /// let pool = BlockingPool::builder().workers(2).build()?;
    /// let lengths = pool.processor(|line: String| line.len());
    /// assert_eq!(lengths.submit("four".to_owned()).unwrap().join()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn processor<I, O, P>(&self, process: P) -> crate::Processor<I, O>
    where
        P: Fn(I) -> O + Send + Sync + 'static,
        I: Send + 'static,
        O: Send + 'static,
    {
        crate::Processor::new(self.clone(), Arc::new(process))
    }

    /// Graceful shutdown: stops accepting work, lets the workers finish the
    /// queue until `timeout`, then hands back every task that did not start.
    /// Closures still running at the timeout cannot be preempted; they are
    /// counted in the report and finish on their own. A timeout too long to
    /// represent (`Duration::MAX`) waits for the queue to run dry.
    pub fn shutdown(&self, timeout: Duration) -> PoolShutdown<Unstarted> {
        let engine = self.engine();
        engine.core.queue.close();
        engine.flavor.wait_exits(Instant::now().checked_add(timeout));
        let unstarted = engine.drain();
        PoolShutdown { unstarted, still_running: engine.core.running() }
    }

    /// Immediate shutdown: stops accepting work and hands back every queued
    /// task at once; running closures finish on their own.
    pub fn shutdown_now(&self) -> PoolShutdown<Unstarted> {
        let engine = self.engine();
        engine.core.queue.close();
        let unstarted = engine.drain();
        PoolShutdown { unstarted, still_running: engine.core.running() }
    }

    /// Blocks until every worker has exited (after a shutdown), or until
    /// `timeout`; whether they all had.
    #[must_use = "whether every worker exited"]
    pub fn join(&self, timeout: Duration) -> bool {
        self.engine().flavor.wait_exits(Instant::now().checked_add(timeout)) == 0
    }

    /// Shuts down with `deadline` on a thread of its own (a graceful shutdown
    /// blocks), so the registry calling it is never blocked.
    fn stop_until(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        let pool = self.clone();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stopper = thread::Builder::new()
            .name(format!("{}-stop", self.engine().core.name))
            .spawn(move || {
                let report = pool.shutdown(timeout);
                let _ = tx.send(report.stop_error(&pool.engine().core.name));
            });
        let report: BoxFuture<'_, Option<BoxError>> = if stopper.is_ok() {
            Box::pin(async move {
                rx.await
                    .unwrap_or_else(|_| Some("the pool's stopping thread gave no report".into()))
            })
        } else {
            let report = self.shutdown_now();
            Box::pin(std::future::ready(report.stop_error(&self.engine().core.name)))
        };
        Box::pin(async move { report.await.map_or(Ok(()), Err) })
    }
}
