//! The async pool: futures run by a set of worker tasks on tokio.

mod worker;

use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use conc_core::backoff::Backoff;
use conc_core::config::ConfigError;
use conc_core::{BoxError, BoxFuture};
use tokio::runtime::Handle;

use crate::builder::{RawSettings, common_setters};
use crate::engine::{Admitted, Engine, Refusal, Room};
use crate::error::collect_batch_async;
use crate::front::pool_type;
use crate::processor::AsyncProcessFn;
use crate::queue::{Queue, Reservation};
use crate::task::future::{self, FutureJob};
use crate::{Batch, BatchError, PoolShutdown, SubmitError, TaskHandle, TaskOptions};
use worker::AsyncFlavor;
pub use worker::UnstartedFuture;

/// Builds an [`AsyncPool`].
///
/// # Examples
///
/// ```
/// use conc_pool::AsyncPool;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let pool = AsyncPool::builder().name("fetch").workers(16).queue_capacity(1_000).build()?;
/// assert_eq!(pool.metrics().capacity, Some(1_000));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
#[derive(Debug)]
pub struct AsyncPoolBuilder {
    raw: RawSettings<UnstartedFuture>,
    runtime: Option<Handle>,
}

impl AsyncPoolBuilder {
    common_setters!(AsyncPool, UnstartedFuture);

    /// The runtime the worker tasks are spawned on. Defaults to the one
    /// `build()` is called in. Its time driver must be on (`enable_time` or
    /// `enable_all` on tokio's builder): task deadlines, the `Block` timeout,
    /// the keep-alive and `shutdown` wait on tokio's timer.
    pub fn runtime(self, handle: Handle) -> Self {
        Self { runtime: Some(handle), ..self }
    }

    /// Checks every setting and spawns the worker tasks.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the refused setting, its value and the rule
    /// (`runtime` when called outside a tokio runtime without
    /// [`runtime`](Self::runtime)).
    pub fn build(self) -> Result<AsyncPool, ConfigError> {
        let settings = self.raw.validate(AsyncPool::MAX_WORKERS)?;
        let runtime = match self.runtime {
            Some(handle) => handle,
            None => Handle::try_current().map_err(|_| {
                ConfigError::new(
                    "runtime",
                    None::<()>,
                    "must be given when `build()` runs outside a tokio runtime",
                )
            })?,
        };
        let flavor = AsyncFlavor { runtime, handles: Mutex::new(Vec::new()) };
        match Engine::start(settings, flavor) {
            Ok(shared) => Ok(AsyncPool::from_engine(shared)),
            Err((_, never)) => match never {},
        }
    }
}

pool_type! {
    /// A pool of worker tasks running futures on tokio, at most `workers` at a
    /// time: bounded or unbounded queue, priorities with aging, rejection that
    /// hands work back, panics caught into the task's handle, deadlines,
    /// cancellation, graceful and immediate shutdown.
    ///
    /// Each worker runs one future at a time, so `workers` is the pool's
    /// concurrency limit. Cloning gives another handle to the same pool; when the
    /// last handle is dropped the workers finish the queued tasks and exit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_pool::{AsyncPool, JoinError, TaskOptions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let pool = AsyncPool::builder().workers(4).build()?;
    /// let handle = pool.submit(async { "fetched" }).await.unwrap();
    /// assert_eq!(handle.await?, "fetched");
    ///
    /// let slow = pool
    ///     .submit_with(TaskOptions::new().timeout(Duration::from_millis(10)), async {
    ///         tokio::time::sleep(Duration::from_secs(60)).await;
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(slow.await, Err(JoinError::DeadlineExceeded));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct AsyncPool(AsyncFlavor);
    max = 1 << 20,
    open = "# tokio::runtime::Runtime::new()?.block_on(async {",
    close = "# Ok::<(), Box<dyn std::error::Error>>(())\n# })?;\n# Ok::<(), Box<dyn std::error::Error>>(())"
}

/// Unregisters a submitter waiting for room if its wait is dropped.
struct WaitGuard<'a> {
    queue: &'a Queue<FutureJob>,
    ticket: Option<u64>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.queue.cancel_wait(self.ticket);
    }
}

impl AsyncPool {
    /// A builder with the defaults: one worker per available CPU, unbounded
    /// queue, [`Rejection::Reject`](crate::Rejection::Reject), aging every 64
    /// dequeues, the coarse clock, the runtime `build()` runs in.
    pub fn builder() -> AsyncPoolBuilder {
        AsyncPoolBuilder { raw: RawSettings::new(), runtime: None }
    }

    /// Admits one task under the pool's policy, waiting for room under the
    /// block policy. Spends one unit of tokio's cooperative budget, so a
    /// task submitting in a loop to a queue with room yields now and then
    /// and the workers (on a current-thread runtime) get to run.
    async fn admit(&self) -> Result<Admitted<'_, FutureJob>, Refusal> {
        tokio::task::coop::consume_budget().await;
        match self.engine().admit(true)? {
            Admitted::Wait(timeout) => {
                self.wait_for_room(timeout).await.map(|room| Admitted::Queue(Room::Reserved(room)))
            }
            admitted => Ok(admitted),
        }
    }

    async fn wait_for_room(
        &self,
        timeout: Duration,
    ) -> Result<Reservation<'_, FutureJob>, Refusal> {
        let queue = &self.engine().core.queue;
        let mut guard = WaitGuard { queue, ticket: None };
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        poll_fn(|cx| match queue.reserve_or_wait(cx.waker(), &mut guard.ticket) {
            Ok(Some(reservation)) => Poll::Ready(Ok(reservation)),
            Err(()) => Poll::Ready(Err(Refusal::Closed)),
            Ok(None) => match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Refusal::Timeout)),
                Poll::Pending => Poll::Pending,
            },
        })
        .await
    }

    /// The deadline of a task submitted now with `options`, on tokio's clock.
    fn deadline(options: TaskOptions) -> Option<tokio::time::Instant> {
        // A timeout too long to represent (`Duration::MAX`) is no deadline.
        options.timeout.and_then(|t| tokio::time::Instant::now().checked_add(t))
    }

    /// Submits a future; its handle resolves to the output. On a full queue
    /// the pool's [`Rejection`](crate::Rejection) policy applies
    /// (`CallerRuns` awaits the future on the caller's task; `Block` waits
    /// for room).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] with the future handed back: `Full` (reject policy),
    /// `Timeout` (block policy), `Closed` (shut down).
    pub async fn submit<F>(&self, fut: F) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.submit_with(TaskOptions::new(), fut).await
    }

    /// [`submit`](Self::submit) with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub async fn submit_with<F>(
        &self,
        options: TaskOptions,
        fut: F,
    ) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.submit_made(options, fut, |fut| fut).await
    }

    /// Submits `item`, turned into a future by `make` only once it is
    /// admitted, so a refused item comes back as it was given.
    pub(crate) async fn submit_made<I, Fut>(
        &self,
        options: TaskOptions,
        item: I,
        make: impl FnOnce(I) -> Fut,
    ) -> Result<TaskHandle<Fut::Output>, SubmitError<I>>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let engine = self.engine();
        match self.admit().await {
            Ok(Admitted::Queue(room)) => self.place_handle(room, options, item, make),
            Ok(_) => {
                let (job, handle) = future::with_handle(make(item), Self::deadline(options));
                let outcome = job.await;
                engine.core.count_outside(outcome);
                Ok(handle)
            }
            Err(refusal) => Err(engine.refuse(refusal, item)),
        }
    }

    /// Places `item` (turned into a future by `make` only once it is sure to
    /// be queued) with a handle for its output.
    fn place_handle<I, Fut>(
        &self,
        room: Room<'_, FutureJob>,
        options: TaskOptions,
        item: I,
        make: impl FnOnce(I) -> Fut,
    ) -> Result<TaskHandle<Fut::Output>, SubmitError<I>>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let deadline = Self::deadline(options);
        // The task (one allocation: the future and its result slot) is made
        // only once the push is sure to succeed, so a refused item comes
        // back as it was given.
        let mut handle = None;
        let into_job = |item| {
            let (job, task_handle) = future::with_handle(make(item), deadline);
            handle = Some(task_handle);
            job
        };
        match self.engine().place(room, item, options.priority, into_job) {
            Ok(()) => Ok(handle.expect("a placed task was made")),
            Err((refusal, item)) => Err(self.engine().refuse(refusal, item)),
        }
    }

    /// Submits without waiting, evicting or running on the caller: on a full
    /// queue the future comes straight back, with no allocation and no lock.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the future handed back.
    pub fn try_submit<F>(&self, fut: F) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.try_submit_with(TaskOptions::new(), fut)
    }

    /// [`try_submit`](Self::try_submit) with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`try_submit`](Self::try_submit).
    pub fn try_submit_with<F>(
        &self,
        options: TaskOptions,
        fut: F,
    ) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.engine().try_room() {
            Ok(room) => self.place_handle(room, options, fut, |fut| fut),
            Err(refusal) => Err(self.engine().refuse(refusal, fut)),
        }
    }

    /// Submits a fire-and-forget future. A panic is caught, counted and
    /// logged through `tracing`; the worker keeps serving.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub async fn spawn<F>(&self, fut: F) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_with(TaskOptions::new(), fut).await
    }

    /// [`spawn`](Self::spawn) with a priority (the deadline is ignored: a
    /// fire-and-forget task has no handle to report it to).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    pub async fn spawn_with<F>(&self, options: TaskOptions, fut: F) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.admit().await {
            Ok(Admitted::Queue(room)) => self.place_spawn(room, options, fut),
            Ok(_) => {
                let outcome = future::spawn(fut).await;
                self.engine().core.count_outside(outcome);
                Ok(())
            }
            Err(refusal) => Err(self.engine().refuse(refusal, fut)),
        }
    }

    /// [`spawn`](Self::spawn) that never waits, evicts or runs on the caller.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the future handed back.
    pub fn try_spawn<F>(&self, fut: F) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.try_spawn_with(TaskOptions::new(), fut)
    }

    /// [`try_spawn`](Self::try_spawn) with a priority.
    ///
    /// # Errors
    ///
    /// `Full` or `Closed`, with the future handed back.
    pub fn try_spawn_with<F>(&self, options: TaskOptions, fut: F) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.engine().try_room() {
            Ok(room) => self.place_spawn(room, options, fut),
            Err(refusal) => Err(self.engine().refuse(refusal, fut)),
        }
    }

    fn place_spawn<F>(
        &self,
        room: Room<'_, FutureJob>,
        options: TaskOptions,
        fut: F,
    ) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.engine()
            .place(room, fut, options.priority, future::spawn)
            .map_err(|(refusal, fut)| self.engine().refuse(refusal, fut))
    }

    /// Submits every future, in order; the batch resolves to their outputs
    /// **in input order**. Each future goes through `submit` (and its policy).
    ///
    /// # Errors
    ///
    /// On the first refusal, [`BatchError`] with the handles of the futures
    /// already accepted (they keep running) and every future not accepted.
    pub async fn submit_batch<I, F>(
        &self,
        tasks: I,
    ) -> Result<Batch<F::Output>, BatchError<F::Output, F>>
    where
        I: IntoIterator<Item = F>,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        collect_batch_async(tasks, |task| self.submit(task)).await
    }

    /// Submits an operation retried with `backoff` while it fails (sleeping
    /// on tokio's timer between attempts, so a paused clock drives it in
    /// tests): the handle resolves to the first success or the last error.
    /// A panic is not retried.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), with the operation handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::backoff::Backoff;
    /// use conc_pool::AsyncPool;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let pool = AsyncPool::builder().workers(1).build()?;
    /// let backoff = Backoff::exponential(Duration::from_millis(1)).max_retries(2).build()?;
    /// let handle = pool.submit_retry(backoff, || async { Err::<(), _>("still down") }).await.unwrap();
    /// assert_eq!(handle.await?, Err("still down"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn submit_retry<F, Fut, T, E>(
        &self,
        backoff: Backoff,
        operation: F,
    ) -> Result<TaskHandle<Result<T, E>>, SubmitError<F>>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let retrying = move |mut operation: F| async move {
            let mut delays = backoff.delays();
            loop {
                match operation().await {
                    Ok(value) => return Ok(value),
                    Err(error) => match delays.next() {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(error),
                    },
                }
            }
        };
        self.submit_made(TaskOptions::new(), operation, retrying).await
    }

    /// A typed processor around this pool: every input goes through `process`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::AsyncPool;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let pool = AsyncPool::builder().workers(2).build()?;
    /// let double = pool.processor(|n: u32| async move { n * 2 });
    /// assert_eq!(double.submit(21).await.unwrap().await?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn processor<I, P, Fut>(&self, process: P) -> crate::AsyncProcessor<I, Fut::Output>
    where
        P: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
        I: Send + 'static,
    {
        let process: AsyncProcessFn<I, Fut::Output> =
            Arc::new(move |input| Box::pin(process(input)) as BoxFuture<'static, _>);
        crate::AsyncProcessor::new(self.clone(), process)
    }

    /// Graceful shutdown: stops accepting work, lets the workers finish the
    /// queue until `timeout`, then cancels the tasks still running (their
    /// handles resolve to [`JoinError::Cancelled`](crate::JoinError::Cancelled))
    /// and hands back every task that did not start. A timeout too long to
    /// represent (`Duration::MAX`) waits for the queue to run dry.
    pub async fn shutdown(&self, timeout: Duration) -> PoolShutdown<UnstartedFuture> {
        let engine = self.engine();
        engine.core.queue.close();
        let workers = std::mem::take(
            &mut *engine.flavor.handles.lock().unwrap_or_else(PoisonError::into_inner),
        );
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        for mut worker in workers {
            let overran = if let Some(deadline) = deadline {
                tokio::time::timeout_at(deadline, &mut worker).await.is_err()
            } else {
                let _ = (&mut worker).await;
                false
            };
            if overran {
                worker.abort();
                let _ = worker.await;
            }
        }
        let still_running = engine.release_cut_off();
        PoolShutdown { unstarted: engine.drain(), still_running }
    }

    /// Immediate shutdown: stops accepting work, hands back every queued
    /// task and cancels the running ones (their handles resolve to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled)).
    pub async fn shutdown_now(&self) -> PoolShutdown<UnstartedFuture> {
        self.engine().core.queue.close();
        let mut unstarted = self.engine().drain();
        let report = self.shutdown(Duration::ZERO).await;
        // Whatever the second drain finds is handed back too, never dropped.
        unstarted.extend(report.unstarted);
        PoolShutdown { unstarted, still_running: report.still_running }
    }

    /// Shuts down with `deadline` on the pool's runtime (so the registry
    /// calling it needs none of its own).
    fn stop_until(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        let pool = self.clone();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let stopping = self.engine().flavor.runtime.spawn(async move {
            let report = pool.shutdown(timeout).await;
            report.stop_error(&pool.engine().core.name)
        });
        Box::pin(async move {
            match stopping.await {
                Ok(None) => Ok(()),
                Ok(Some(error)) => Err(error),
                Err(error) => Err(Box::new(error) as BoxError),
            }
        })
    }
}
