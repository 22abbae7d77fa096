//! The async pool: futures run by a fixed set of worker tasks on tokio.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::backoff::Backoff;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::builder::{RawSettings, common_setters};
use crate::core::Core;
use crate::handle::{Batch, TaskHandle};
use crate::job::{AsyncBox, HandleFuture, SpawnFuture};
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::queue::{Entry, Pop, PushError, Queue, Reservation};
use crate::scale::{ScaleHook, Scaling};
use crate::{
    BatchError, Health, PoolMetrics, Rejection, ScaleDecision, ScalePolicy, ScaleSnapshot,
    ScaleTrigger, ShutdownReport, SubmitError, TaskError, TaskOptions,
};

type EvictHook = Arc<dyn Fn(UnstartedFuture) + Send + Sync>;

/// Builds an [`AsyncPool`].
///
/// # Examples
///
/// ```
/// use conc_pool::AsyncPool;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = AsyncPool::builder().name("fetch").workers(16).queue_capacity(1_000).build()?;
/// assert_eq!(pool.metrics().capacity, Some(1_000));
/// # Ok::<(), conc_pool::BuildError>(())
/// # }).unwrap();
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct AsyncPoolBuilder {
    raw: RawSettings,
    on_evict: Option<EvictHook>,
    runtime: Option<Handle>,
    keep_alive: Duration,
    scaling: Scaling,
}

impl fmt::Debug for AsyncPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPoolBuilder")
            .field("raw", &self.raw)
            .field("on_evict", &self.on_evict.is_some())
            .field("scaling", &self.scaling)
            .finish_non_exhaustive()
    }
}

impl AsyncPoolBuilder {
    common_setters!();

    /// Called with each task the [`Rejection::DropOldest`] policy evicts. Without
    /// one, the evicted task's handle resolves to [`TaskError::Evicted`].
    pub fn on_evict(mut self, callback: impl Fn(UnstartedFuture) + Send + Sync + 'static) -> Self {
        self.on_evict = Some(Arc::new(callback));
        self
    }

    /// Makes the pool dynamic: it starts with `workers` worker tasks (its
    /// minimum), adds one whenever a task is queued while no worker is idle,
    /// up to `max`, and retires a worker idle for the keep-alive while more
    /// than the minimum remain. Must be at least `workers`. Defaults to
    /// `workers` (a fixed pool).
    ///
    /// That is the default [`GrowWhenQueued`](crate::GrowWhenQueued) policy;
    /// [`scale_policy`](Self::scale_policy) replaces it.
    pub fn max_workers(mut self, max: usize) -> Self {
        self.raw.max_workers = Some(max);
        self
    }

    /// How long a worker above the minimum may stay idle before it retires
    /// (on tokio's clock, so a paused clock drives it in tests). Must be
    /// longer than zero. Defaults to 10 s.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// How a dynamic pool decides to grow and shrink. Defaults to
    /// [`GrowWhenQueued`](crate::GrowWhenQueued); [`QueueUtilisation`](crate::QueueUtilisation)
    /// scales on queue length and utilisation.
    pub fn scale_policy(mut self, policy: impl ScalePolicy) -> Self {
        self.scaling.policy = Box::new(policy);
        self
    }

    /// Called with the snapshot and the decision each time the scale policy
    /// is consulted (every decision, `Hold` included), on the submitting or
    /// retiring task. Keep it cheap.
    pub fn on_scale(
        mut self,
        callback: impl Fn(&ScaleSnapshot, ScaleDecision) + Send + Sync + 'static,
    ) -> Self {
        self.scaling.hook = Some(Box::new(callback) as ScaleHook);
        self
    }

    /// The runtime the workers run on. Defaults to the runtime `build()` is
    /// called in.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Validates the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// [`BuildError`](crate::BuildError) naming the bad setting;
    /// [`BuildError::NoRuntime`](crate::BuildError::NoRuntime) outside a tokio
    /// runtime without [`runtime`](Self::runtime).
    pub fn build(self) -> Result<AsyncPool, crate::BuildError> {
        let settings = self.raw.validate()?;
        let runtime = match self.runtime {
            Some(handle) => handle,
            None => Handle::try_current().map_err(|_| crate::BuildError::NoRuntime)?,
        };
        if self.keep_alive.is_zero() {
            return Err(crate::BuildError::KeepAlive { value: self.keep_alive });
        }
        let core = Arc::new(Core::new(&settings));
        let sizing = Arc::new(Sizing {
            min: settings.workers,
            max: settings.max_workers,
            keep_alive: self.keep_alive,
            live: AtomicUsize::new(0),
            retire: AtomicUsize::new(0),
            scaled_up: AtomicU64::new(0),
            scaled_down: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            scaling: self.scaling,
            runtime,
            handles: Mutex::new(Vec::new()),
        });
        for _ in 0..settings.workers {
            spawn_worker(&core, &sizing, false);
        }
        Ok(AsyncPool { shared: Arc::new(Shared { core, on_evict: self.on_evict, sizing }) })
    }
}

/// The async pool's size and what changes it.
#[derive(Debug)]
struct Sizing {
    min: usize,
    max: usize,
    keep_alive: Duration,
    live: AtomicUsize,
    retire: AtomicUsize,
    scaled_up: AtomicU64,
    scaled_down: AtomicU64,
    replaced: AtomicU64,
    scaling: Scaling,
    runtime: Handle,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Sizing {
    fn dynamic(&self) -> bool {
        self.max > self.min
    }

    /// Asks the policy, reports the decision, and returns it.
    fn decide(&self, core: &Core<AsyncBox>, trigger: ScaleTrigger) -> ScaleDecision {
        self.scaling.decide(core, trigger, self.live.load(Ordering::Acquire), self.min, self.max)
    }

    fn try_leave(&self, floor: usize) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live > floor).then(|| live - 1)
            })
            .is_ok()
    }
}

/// Starts one worker task on a free slot if fewer than `max` are alive.
fn spawn_worker(core: &Arc<Core<AsyncBox>>, sizing: &Arc<Sizing>, scaling: bool) -> bool {
    let Ok(live) = sizing.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
        (live < sizing.max).then_some(live + 1)
    }) else {
        return false;
    };
    let Some(index) = (0..core.worker_slots()).find(|&i| core.slot(i).try_claim()) else {
        sizing.live.fetch_sub(1, Ordering::AcqRel);
        return false;
    };
    let span = tracing::debug_span!("conc_pool.worker", pool = %core.name, worker = index);
    let handle =
        sizing.runtime.spawn(worker(Arc::clone(core), index, Arc::clone(sizing)).instrument(span));
    sizing.handles.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
    if scaling {
        sizing.scaled_up.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(conc_core::metrics::POOL_SCALE_EVENTS, "direction" => "up").increment(1);
        tracing::debug!(target: "conc_pool", pool = %core.name, workers = live + 1, "scaled up");
    }
    true
}

/// Replaces workers stuck past the threshold (checked at most every quarter
/// threshold): each stuck one stops counting as a worker and leaves when its
/// task ends, and a fresh worker takes its place, so capacity is kept.
fn replace_stuck(core: &Arc<Core<AsyncBox>>, sizing: &Arc<Sizing>) {
    for _ in 0..core.abandon_stuck() {
        sizing.live.fetch_sub(1, Ordering::AcqRel);
        sizing.replaced.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "conc_pool", pool = %core.name, "replacing a stuck worker");
        spawn_worker(core, sizing, false);
    }
}

struct Shared {
    core: Arc<Core<AsyncBox>>,
    on_evict: Option<EvictHook>,
    sizing: Arc<Sizing>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: workers finish what is queued, then exit.
        self.core.queue.close();
    }
}

/// A pool of worker tasks running futures on tokio, at most `workers` at a
/// time: bounded or unbounded queue, priorities with aging, rejection that
/// hands work back, panics caught into the task's handle, deadlines,
/// cancellation, graceful and immediate shutdown.
///
/// Each worker runs one future at a time, so `workers` is the pool's
/// concurrency limit. Cloning gives another handle to the same pool.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_pool::{AsyncPool, TaskError, TaskOptions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
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
/// assert_eq!(slow.await, Err(TaskError::DeadlineExceeded));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct AsyncPool {
    shared: Arc<Shared>,
}

impl fmt::Debug for AsyncPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPool")
            .field("name", &self.shared.core.name)
            .field("workers", &self.shared.sizing.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An async task that was accepted and never started, handed back by a
/// shutdown or an eviction. Await [`run`](Self::run) to resolve its handle
/// as if the pool had run it; drop it and the handle resolves to
/// [`TaskError::NotRun`] (or [`TaskError::Evicted`]).
#[must_use = "dropping an unstarted task abandons it"]
pub struct UnstartedFuture {
    job: Option<AsyncBox>,
    reason: TaskError,
}

impl UnstartedFuture {
    fn new(job: AsyncBox, reason: TaskError) -> Self {
        Self { job: Some(job), reason }
    }

    /// Runs the task on the caller's task; its handle gets the output.
    pub async fn run(mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.await;
        }
    }
}

impl Drop for UnstartedFuture {
    fn drop(&mut self) {
        if let Some(mut job) = self.job.take() {
            job.as_mut().abandon(self.reason.clone());
        }
    }
}

impl fmt::Debug for UnstartedFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnstartedFuture").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Waits for the next job: resolves to `None` when the pool closed and the
/// queue is empty.
struct Next<'a> {
    queue: &'a Queue<AsyncBox>,
    index: usize,
    registered: bool,
    /// Retirement requests: a pending one ends the wait (with `Err`).
    retire: &'a AtomicUsize,
}

impl Future for Next<'_> {
    type Output = Result<Option<Entry<AsyncBox>>, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.registered && self.retire.load(Ordering::Acquire) > 0 {
            self.queue.unregister(self.index);
            return Poll::Ready(Err(()));
        }
        Poll::Ready(Ok(match self.queue.pop_or_register(self.index, cx.waker()) {
            Pop::Job(entry) => {
                if self.registered {
                    // Woken by something other than a push (a waker a past
                    // task kept): make sure no stale registration stays.
                    self.queue.unregister(self.index);
                }
                Some(entry)
            }
            Pop::Idle => {
                self.registered = true;
                return Poll::Pending;
            }
            Pop::Closed => None,
        }))
    }
}

async fn worker(core: Arc<Core<AsyncBox>>, index: usize, sizing: Arc<Sizing>) {
    let slot = core.slot(index);
    loop {
        // Replaced while stuck: the task has ended, leave (no longer counted
        // in `live`).
        if slot.is_abandoned() {
            break;
        }
        replace_stuck(&core, &sizing);
        if sizing.retire.load(Ordering::Acquire) > 0
            && sizing
                .retire
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            && sizing.try_leave(1)
        {
            sizing.scaled_down.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let next = Next { queue: &core.queue, index, registered: false, retire: &sizing.retire };
        let entry = if sizing.dynamic() {
            if let Ok(next) = tokio::time::timeout(sizing.keep_alive, next).await {
                let Ok(next) = next else { continue };
                next
            } else {
                // Idle past the keep-alive. Leave the idle list under the
                // queue lock, then take any job a push raced in.
                core.queue.unregister(index);
                match core.queue.pop() {
                    Some(entry) => Some(entry),
                    None if sizing.live.load(Ordering::Acquire) > sizing.min
                        && leave_after_idle(&core, &sizing)
                        && sizing.try_leave(sizing.min) =>
                    {
                        sizing.scaled_down.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(conc_core::metrics::POOL_SCALE_EVENTS, "direction" => "down")
                            .increment(1);
                        tracing::debug!(target: "conc_pool", pool = %core.name, worker = index, "scaled down after keep-alive");
                        break;
                    }
                    None => continue,
                }
            }
        } else {
            let Ok(next) = next.await else { continue };
            next
        };
        let Some(entry) = entry else {
            sizing.live.fetch_sub(1, Ordering::AcqRel);
            break;
        };
        slot.start(entry.enqueued_nanos, core.now_nanos());
        let outcome = entry.job.await;
        slot.finish(outcome);
    }
    slot.set_alive(false);
}

/// Asks the policy whether a worker idle past the keep-alive leaves; a
/// `Shrink(n)` above one also asks `n - 1` others to retire.
fn leave_after_idle(core: &Core<AsyncBox>, sizing: &Sizing) -> bool {
    match sizing.decide(core, ScaleTrigger::IdleTimeout) {
        ScaleDecision::Shrink(0) | ScaleDecision::Grow(_) | ScaleDecision::Hold => false,
        ScaleDecision::Shrink(n) => {
            let others = (n - 1).min(
                sizing
                    .live
                    .load(Ordering::Acquire)
                    .saturating_sub(sizing.min + 1 + sizing.retire.load(Ordering::Acquire)),
            );
            if others > 0 {
                sizing.retire.fetch_add(others, Ordering::AcqRel);
                core.queue.wake_idle();
            }
            true
        }
    }
}

/// Unregisters a submitter waiting for room if its wait is dropped.
struct WaitGuard<'a> {
    queue: &'a Queue<AsyncBox>,
    ticket: Option<u64>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.queue.cancel_wait(self.ticket);
    }
}

enum Room<'a> {
    Reserved(Reservation<'a, AsyncBox>),
    Evict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    Closed,
    Timeout,
}

impl AsyncPool {
    /// A builder with the defaults: one worker per available CPU, unbounded
    /// queue, [`Rejection::Reject`], aging every 64 dequeues.
    pub fn builder() -> AsyncPoolBuilder {
        AsyncPoolBuilder {
            raw: RawSettings::new(),
            on_evict: None,
            runtime: None,
            keep_alive: Duration::from_secs(10),
            scaling: Scaling::new(),
        }
    }

    fn core(&self) -> &Core<AsyncBox> {
        &self.shared.core
    }

    async fn acquire(&self, honour_policy: bool) -> Result<Room<'_>, Refusal> {
        let core = self.core();
        if let Some(reservation) = core.queue.try_reserve() {
            return Ok(Room::Reserved(reservation));
        }
        if !honour_policy {
            return Err(Refusal::Full);
        }
        match core.rejection {
            Rejection::Reject | Rejection::CallerRuns => Err(Refusal::Full),
            Rejection::DropOldest => Ok(Room::Evict),
            Rejection::Block(timeout) => self.wait_for_room(timeout).await.map(Room::Reserved),
        }
    }

    fn try_acquire(&self) -> Result<Room<'_>, Refusal> {
        self.core().queue.try_reserve().map(Room::Reserved).ok_or(Refusal::Full)
    }

    async fn wait_for_room(&self, timeout: Duration) -> Result<Reservation<'_, AsyncBox>, Refusal> {
        let queue = &self.core().queue;
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

    fn place<I>(
        &self,
        room: Room<'_>,
        item: I,
        priority: i32,
        into_job: impl FnOnce(I) -> AsyncBox,
    ) -> Result<(), (Refusal, I)> {
        let core = self.core();
        let pushed = match room {
            Room::Reserved(reservation) => {
                core.queue.push(reservation, item, into_job, priority, core.now_nanos()).map(
                    |woke| {
                        // Grow before work waits: no idle worker took it.
                        // A stuck worker is replaced first, so capacity is kept.
                        let sizing = &self.shared.sizing;
                        if !woke {
                            replace_stuck(&self.shared.core, sizing);
                        }
                        if !woke
                            && sizing.dynamic()
                            && sizing.live.load(Ordering::Relaxed) < sizing.max
                        {
                            match sizing.decide(core, ScaleTrigger::Queued) {
                                ScaleDecision::Grow(n) => {
                                    self.scale_up(n);
                                }
                                ScaleDecision::Shrink(n) => {
                                    self.scale_down(n);
                                }
                                ScaleDecision::Hold => {}
                            }
                        }
                    },
                )
            }
            Room::Evict => core
                .queue
                .push_evicting(item, into_job, priority, core.now_nanos())
                .map(|evicted| {
                    core.count_evicted();
                    let unstarted = UnstartedFuture::new(evicted.job, TaskError::Evicted);
                    match &self.shared.on_evict {
                        Some(hook) => hook(unstarted),
                        None => drop(unstarted),
                    }
                }),
        };
        pushed.map_err(|error| match error {
            PushError::Full(item) => (Refusal::Full, item),
            PushError::Closed(item) => (Refusal::Closed, item),
        })
    }

    fn refuse<I>(&self, refusal: Refusal, item: I) -> SubmitError<I> {
        self.core().count_rejected();
        match refusal {
            Refusal::Full => SubmitError::Full(item),
            Refusal::Closed => SubmitError::Closed(item),
            Refusal::Timeout => SubmitError::Timeout(item),
        }
    }

    fn caller_runs(&self, honour_policy: bool, refusal: Refusal) -> bool {
        honour_policy
            && matches!(refusal, Refusal::Full)
            && matches!(self.core().rejection, Rejection::CallerRuns)
    }

    fn deadline(options: TaskOptions) -> Option<tokio::time::Instant> {
        // A timeout too long to represent (`Duration::MAX`) is no deadline.
        options.get_timeout().and_then(|t| tokio::time::Instant::now().checked_add(t))
    }

    /// Submits a future; its handle resolves to the output. On a full queue
    /// the pool's [`Rejection`] policy applies (`CallerRuns` awaits the
    /// future on the caller's task; `Block` waits for room).
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
        let room = match self.acquire(true).await {
            Ok(room) => room,
            Err(refusal) if self.caller_runs(true, refusal) => {
                let (tx, handle) = TaskHandle::channel();
                self.core().count_caller_ran();
                let outcome = HandleFuture::new(fut, tx, Self::deadline(options)).await;
                self.core().count_outside(outcome);
                return Ok(handle);
            }
            Err(refusal) => return Err(self.refuse(refusal, fut)),
        };
        self.place_handle(room, options, fut)
    }

    fn place_handle<F>(
        &self,
        room: Room<'_>,
        options: TaskOptions,
        fut: F,
    ) -> Result<TaskHandle<F::Output>, SubmitError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.place_handle_with(room, options, fut, |fut| fut)
    }

    /// Places `item`, turned into a future by `make` only once it is sure
    /// to be queued, so a refused item comes back as it was given.
    fn place_handle_with<I, Fut>(
        &self,
        room: Room<'_>,
        options: TaskOptions,
        item: I,
        make: impl FnOnce(I) -> Fut,
    ) -> Result<TaskHandle<Fut::Output>, SubmitError<I>>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let (tx, handle) = TaskHandle::channel();
        let deadline = Self::deadline(options);
        let into_job =
            move |(item, tx)| Box::pin(HandleFuture::new(make(item), tx, deadline)) as AsyncBox;
        match self.place(room, (item, tx), options.get_priority(), into_job) {
            Ok(()) => Ok(handle),
            Err((refusal, (item, _))) => Err(self.refuse(refusal, item)),
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
        match self.try_acquire() {
            Ok(room) => self.place_handle(room, options, fut),
            Err(refusal) => Err(self.refuse(refusal, fut)),
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
        let room = match self.acquire(true).await {
            Ok(room) => room,
            Err(refusal) if self.caller_runs(true, refusal) => {
                self.core().count_caller_ran();
                let outcome =
                    SpawnFuture { fut, done: false, span: crate::job::CarriedSpan::current() }
                        .await;
                self.core().count_outside(outcome);
                return Ok(());
            }
            Err(refusal) => return Err(self.refuse(refusal, fut)),
        };
        self.place_spawn(room, fut)
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
        match self.try_acquire() {
            Ok(room) => self.place_spawn(room, fut),
            Err(refusal) => Err(self.refuse(refusal, fut)),
        }
    }

    fn place_spawn<F>(&self, room: Room<'_>, fut: F) -> Result<(), SubmitError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.place(
            room,
            SpawnFuture { fut, done: false, span: crate::job::CarriedSpan::current() },
            0,
            |job| Box::pin(job) as AsyncBox,
        )
        .map_err(|(refusal, job)| self.refuse(refusal, job.fut))
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
        let mut tasks = tasks.into_iter();
        let mut handles = Vec::with_capacity(tasks.size_hint().0);
        while let Some(task) = tasks.next() {
            match self.submit(task).await {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    let mut rejected = Vec::new();
                    let reason = error.map(|task| rejected.push(task));
                    rejected.extend(tasks);
                    return Err(BatchError { accepted: Batch::new(handles), rejected, reason });
                }
            }
        }
        Ok(Batch::new(handles))
    }

    /// Submits an operation retried with `backoff` while it fails (sleeping
    /// on tokio's timer between attempts, so a paused clock drives it in
    /// tests): the handle resolves to the first success or the last error.
    /// A panic is not retried.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::backoff::Backoff;
    /// use conc_pool::AsyncPool;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = AsyncPool::builder().workers(1).build()?;
    /// let backoff = Backoff::exponential(Duration::from_millis(1)).max_retries(2).build()?;
    /// let handle = pool.submit_retry(backoff, || async { Err::<(), _>("still down") }).await.unwrap();
    /// assert_eq!(handle.await?, Err("still down"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
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
        // Acquire first, so a refusal can hand the operation back untouched.
        let room = match self.acquire(true).await {
            Ok(room) => Some(room),
            Err(refusal) if self.caller_runs(true, refusal) => None,
            Err(refusal) => return Err(self.refuse(refusal, operation)),
        };
        let retrying = |mut operation: F| async move {
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
        if let Some(room) = room {
            return self.place_handle_with(room, TaskOptions::new(), operation, retrying);
        }
        let (tx, handle) = TaskHandle::channel();
        self.core().count_caller_ran();
        let outcome = HandleFuture::new(retrying(operation), tx, None).await;
        self.core().count_outside(outcome);
        Ok(handle)
    }

    /// A typed processor around this pool: every input goes through `process`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::AsyncPool;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = AsyncPool::builder().workers(2).build()?;
    /// let double = pool.processor(|n: u32| async move { n * 2 });
    /// assert_eq!(double.submit(21).await.unwrap().await?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn processor<I, P, Fut>(&self, process: P) -> AsyncProcessor<I, Fut::Output>
    where
        P: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
        I: Send + 'static,
    {
        let process: ProcessFn<I, Fut::Output> =
            Arc::new(move |input| Box::pin(process(input)) as conc_core::BoxFuture<'static, _>);
        AsyncProcessor { pool: self.clone(), process }
    }

    /// A snapshot of the pool's counters and gauges.
    pub fn metrics(&self) -> PoolMetrics {
        let mut metrics = self.core().metrics();
        metrics.scaled_up = self.shared.sizing.scaled_up.load(Ordering::Relaxed);
        metrics.scaled_down = self.shared.sizing.scaled_down.load(Ordering::Relaxed);
        metrics.replaced = self.shared.sizing.replaced.load(Ordering::Relaxed);
        metrics
    }

    /// Adds up to `n` worker tasks, never above `max_workers`; how many started.
    pub fn scale_up(&self, n: usize) -> usize {
        let mut started = 0;
        while started < n && spawn_worker(&self.shared.core, &self.shared.sizing, true) {
            started += 1;
        }
        started
    }

    /// Asks up to `n` workers to retire, never below one. Idle workers leave
    /// at once; busy ones after their current task. Returns how many were asked.
    pub fn scale_down(&self, n: usize) -> usize {
        let sizing = &self.shared.sizing;
        let pending = sizing.retire.load(Ordering::Acquire);
        let asked = n.min(sizing.live.load(Ordering::Acquire).saturating_sub(1 + pending));
        sizing.retire.fetch_add(asked, Ordering::AcqRel);
        self.core().queue.wake_idle();
        asked
    }

    /// Scales towards `workers` workers (within one and `max_workers`).
    pub fn resize(&self, workers: usize) {
        let live = self.workers();
        if workers > live {
            self.scale_up(workers - live);
        } else {
            self.scale_down(live - workers);
        }
    }

    /// Workers alive now.
    pub fn workers(&self) -> usize {
        self.shared.sizing.live.load(Ordering::Acquire)
    }

    /// Resets the counters and the queue-wait histogram.
    pub fn reset_metrics(&self) {
        self.core().reset_metrics();
    }

    /// Workers stuck on one task longer than the `stuck_after` threshold.
    pub fn health(&self) -> Health {
        self.core().health()
    }

    /// Whether the pool stopped accepting work.
    pub fn is_shut_down(&self) -> bool {
        self.core().queue.is_closed()
    }

    /// Graceful shutdown: stops accepting work, lets the workers finish the
    /// queue until `timeout`, then cancels the tasks still running (their
    /// handles resolve to [`TaskError::Cancelled`]) and hands back every
    /// task that did not start.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport<UnstartedFuture> {
        self.core().queue.close();
        let workers = std::mem::take(
            &mut *self.shared.sizing.handles.lock().unwrap_or_else(PoisonError::into_inner),
        );
        // A timeout too long to represent (`Duration::MAX`) waits forever.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut still_running = 0;
        for mut worker in workers {
            let timed_out = if let Some(deadline) = deadline {
                tokio::time::timeout_at(deadline, &mut worker).await.is_err()
            } else {
                let _ = (&mut worker).await;
                false
            };
            if timed_out {
                worker.abort();
                let _ = worker.await;
            }
        }
        // Workers that were aborted mid-task left their slot marked busy.
        for index in 0..self.core().worker_slots() {
            let slot = self.core().slot(index);
            if slot.is_alive() {
                slot.set_alive(false);
                still_running += 1;
            }
        }
        self.shared.sizing.live.store(0, Ordering::Release);
        ShutdownReport { unstarted: self.drain(), still_running }
    }

    /// Immediate shutdown: stops accepting work, hands back every queued
    /// task and cancels the running ones (their handles resolve to
    /// [`TaskError::Cancelled`]).
    pub async fn shutdown_now(&self) -> ShutdownReport<UnstartedFuture> {
        self.core().queue.close();
        let unstarted = self.drain();
        let report = self.shutdown(Duration::ZERO).await;
        ShutdownReport { unstarted, still_running: report.still_running }
    }

    fn drain(&self) -> Vec<UnstartedFuture> {
        self.core()
            .queue
            .drain()
            .into_iter()
            .map(|entry| UnstartedFuture::new(entry.job, TaskError::NotRun))
            .collect()
    }
}

type ProcessFn<I, O> = Arc<dyn Fn(I) -> conc_core::BoxFuture<'static, O> + Send + Sync>;

/// A typed processor over an [`AsyncPool`]: one async function, many inputs.
/// Made by [`AsyncPool::processor`].
pub struct AsyncProcessor<I, O> {
    pool: AsyncPool,
    process: ProcessFn<I, O>,
}

impl<I, O> Clone for AsyncProcessor<I, O> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), process: Arc::clone(&self.process) }
    }
}

impl<I, O> fmt::Debug for AsyncProcessor<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncProcessor").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> AsyncProcessor<I, O> {
    /// Processes `input` on the pool.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit`], with the input handed back.
    pub async fn submit(&self, input: I) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(TaskOptions::new(), input).await
    }

    /// Processes `input` with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit`], with the input handed back.
    pub async fn submit_with(
        &self,
        options: TaskOptions,
        input: I,
    ) -> Result<TaskHandle<O>, SubmitError<I>> {
        let pool = &self.pool;
        let room = match pool.acquire(true).await {
            Ok(room) => room,
            Err(refusal) if pool.caller_runs(true, refusal) => {
                let (tx, handle) = TaskHandle::channel();
                pool.core().count_caller_ran();
                let fut = (self.process)(input);
                let outcome = HandleFuture::new(fut, tx, AsyncPool::deadline(options)).await;
                pool.core().count_outside(outcome);
                return Ok(handle);
            }
            Err(refusal) => return Err(pool.refuse(refusal, input)),
        };
        let process = Arc::clone(&self.process);
        pool.place_handle_with(room, options, input, move |input| process(input))
    }

    /// Processes every input; outputs in input order.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit_batch`], with the inputs handed back.
    pub async fn submit_batch(
        &self,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Batch<O>, BatchError<O, I>> {
        let mut inputs = inputs.into_iter();
        let mut handles = Vec::with_capacity(inputs.size_hint().0);
        while let Some(input) = inputs.next() {
            match self.submit(input).await {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    let mut rejected = Vec::new();
                    let reason = error.map(|input| rejected.push(input));
                    rejected.extend(inputs);
                    return Err(BatchError { accepted: Batch::new(handles), rejected, reason });
                }
            }
        }
        Ok(Batch::new(handles))
    }

    /// The pool underneath.
    pub fn pool(&self) -> &AsyncPool {
        &self.pool
    }
}
