//! The blocking pool: closures on the pool's own OS threads.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use conc_core::backoff::Backoff;

use crate::builder::{RawSettings, common_setters};
use crate::core::Core;
use crate::handle::{Batch, TaskHandle};
use crate::job::{BlockingBox, BlockingJob, CancelToken, HandleTask, SpawnTask};
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::queue::{Pop, PushError};
use crate::{
    BatchError, Health, PoolMetrics, Rejection, ShutdownReport, SubmitError, TaskError, TaskOptions,
};

type EvictHook = Arc<dyn Fn(Unstarted) + Send + Sync>;

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
/// # Ok::<(), conc_pool::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct BlockingPoolBuilder {
    raw: RawSettings,
    on_evict: Option<EvictHook>,
    stack_size: Option<usize>,
    keep_alive: Duration,
    scaling: crate::scale::Scaling,
}

impl fmt::Debug for BlockingPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPoolBuilder")
            .field("raw", &self.raw)
            .field("on_evict", &self.on_evict.is_some())
            .field("stack_size", &self.stack_size)
            .field("keep_alive", &self.keep_alive)
            .field("scaling", &self.scaling)
            .finish()
    }
}

impl BlockingPoolBuilder {
    common_setters!();

    /// Called with each task the [`Rejection::DropOldest`] policy evicts; it
    /// may run it, re-submit it or drop it (its handle then resolves to
    /// [`TaskError::Evicted`]). Without a callback the evicted task's handle
    /// resolves to [`TaskError::Evicted`] at once. The callback runs on the
    /// submitting thread.
    pub fn on_evict(mut self, callback: impl Fn(Unstarted) + Send + Sync + 'static) -> Self {
        self.on_evict = Some(Arc::new(callback));
        self
    }

    /// Stack size of the worker threads. Defaults to the standard library's.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Makes the pool dynamic: it starts with `workers` threads (its
    /// minimum), adds one whenever a task is queued while no worker is idle
    /// (growth comes before queueing), up to `max`, and retires a worker
    /// idle for the keep-alive while more than the minimum remain. Must be at
    /// least `workers`. Defaults to `workers` (a fixed pool).
    ///
    /// That is the default [`GrowWhenQueued`](crate::GrowWhenQueued) policy;
    /// [`scale_policy`](Self::scale_policy) replaces it.
    pub fn max_workers(mut self, max: usize) -> Self {
        self.raw.max_workers = Some(max);
        self
    }

    /// How long a worker above the minimum may stay idle before it retires.
    /// Must be longer than zero. Defaults to 10 s.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// How a dynamic pool decides to grow and shrink. Defaults to
    /// [`GrowWhenQueued`](crate::GrowWhenQueued);
    /// [`QueueUtilisation`](crate::QueueUtilisation) scales on queue length
    /// and utilisation.
    pub fn scale_policy(mut self, policy: impl crate::ScalePolicy) -> Self {
        self.scaling.policy = Box::new(policy);
        self
    }

    /// Called with the snapshot and the decision each time the scale policy
    /// is consulted (every decision, `Hold` included), on the submitting or
    /// retiring thread. Keep it cheap.
    pub fn on_scale(
        mut self,
        callback: impl Fn(&crate::ScaleSnapshot, crate::ScaleDecision) + Send + Sync + 'static,
    ) -> Self {
        self.scaling.hook = Some(Box::new(callback));
        self
    }

    /// Validates the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// [`BuildError`](crate::BuildError) naming the bad setting, or
    /// [`BuildError::Spawn`](crate::BuildError::Spawn) when a thread cannot start
    /// (the threads already started are stopped again).
    pub fn build(self) -> Result<BlockingPool, crate::BuildError> {
        let settings = self.raw.validate()?;
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
            exits: Mutex::new(0),
            changed: Condvar::new(),
            scaled_up: AtomicU64::new(0),
            scaled_down: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            scaling: self.scaling,
            stack_size: self.stack_size,
        });
        for _ in 0..settings.workers {
            if let Err(error) = spawn_worker(&core, &sizing, false) {
                core.queue.close();
                return Err(error);
            }
        }
        let shared = Arc::new(Shared { core, sizing, on_evict: self.on_evict });
        Ok(BlockingPool { shared })
    }
}

/// The pool's size and what changes it.
#[derive(Debug)]
struct Sizing {
    min: usize,
    max: usize,
    keep_alive: Duration,
    /// Workers alive (mirrors the slots; the fast check before growing).
    live: AtomicUsize,
    /// Workers asked to retire by `scale_down`.
    retire: AtomicUsize,
    /// Workers alive, under the lock shutdown waits on.
    exits: Mutex<usize>,
    changed: Condvar,
    scaled_up: AtomicU64,
    scaled_down: AtomicU64,
    replaced: AtomicU64,
    scaling: crate::scale::Scaling,
    stack_size: Option<usize>,
}

impl Sizing {
    fn dynamic(&self) -> bool {
        self.max > self.min
    }

    /// Asks the policy, reports the decision, and returns it.
    fn decide(
        &self,
        core: &Core<BlockingBox>,
        trigger: crate::ScaleTrigger,
    ) -> crate::ScaleDecision {
        self.scaling.decide(core, trigger, self.live.load(Ordering::Acquire), self.min, self.max)
    }

    /// Takes one worker off `live` if more than `floor` remain.
    fn try_leave(&self, floor: usize) -> bool {
        let mut live = self.live.load(Ordering::Acquire);
        loop {
            if live <= floor {
                return false;
            }
            match self.live.compare_exchange_weak(
                live,
                live - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => live = actual,
            }
        }
    }
}

/// Starts one worker on a free slot if fewer than `max` are alive; whether
/// it started. `scaling` counts and reports it as a scaling decision.
fn spawn_worker(
    core: &Arc<Core<BlockingBox>>,
    sizing: &Arc<Sizing>,
    scaling: bool,
) -> Result<bool, crate::BuildError> {
    let mut live = sizing.live.load(Ordering::Acquire);
    loop {
        if live >= sizing.max {
            return Ok(false);
        }
        match sizing.live.compare_exchange_weak(live, live + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(actual) => live = actual,
        }
    }
    let Some(index) = (0..core.worker_slots()).find(|&i| core.slot(i).try_claim()) else {
        sizing.live.fetch_sub(1, Ordering::AcqRel);
        return Ok(false);
    };
    *sizing.exits.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    let mut thread = thread::Builder::new().name(format!("{}-{index}", core.name));
    if let Some(bytes) = sizing.stack_size {
        thread = thread.stack_size(bytes);
    }
    let (worker_core, worker_sizing) = (Arc::clone(core), Arc::clone(sizing));
    match thread.spawn(move || worker(&worker_core, index, &worker_sizing)) {
        Ok(_) => {
            if scaling {
                sizing.scaled_up.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(conc_core::metrics::POOL_SCALE_EVENTS, "direction" => "up")
                    .increment(1);
                tracing::debug!(target: "conc_pool", pool = %core.name, workers = live + 1, "scaled up");
            }
            Ok(true)
        }
        Err(err) => {
            core.slot(index).set_alive(false);
            sizing.live.fetch_sub(1, Ordering::AcqRel);
            worker_exited(sizing);
            Err(crate::BuildError::Spawn { index, message: err.to_string() })
        }
    }
}

/// Replaces workers stuck past the threshold (checked at most every quarter
/// threshold): each stuck one stops counting as a worker and leaves when its
/// task ends, and a fresh worker takes its place, so capacity is kept.
fn replace_stuck(core: &Arc<Core<BlockingBox>>, sizing: &Arc<Sizing>) {
    for _ in 0..core.abandon_stuck() {
        sizing.live.fetch_sub(1, Ordering::AcqRel);
        sizing.replaced.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "conc_pool", pool = %core.name, "replacing a stuck worker");
        if let Err(error) = spawn_worker(core, sizing, false) {
            tracing::error!(target: "conc_pool", pool = %core.name, %error, "could not start a replacement worker");
        }
    }
}

fn worker_exited(sizing: &Sizing) {
    let mut alive = sizing.exits.lock().unwrap_or_else(PoisonError::into_inner);
    *alive -= 1;
    sizing.changed.notify_all();
}

struct Shared {
    core: Arc<Core<BlockingBox>>,
    sizing: Arc<Sizing>,
    on_evict: Option<EvictHook>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: workers finish what is queued, then exit.
        self.core.queue.close();
    }
}

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
#[derive(Clone)]
pub struct BlockingPool {
    shared: Arc<Shared>,
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("name", &self.shared.core.name)
            .field("workers", &self.shared.sizing.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A blocking task that was accepted and never started, handed back by a
/// shutdown or an eviction. [`run`](Self::run) it to resolve its handle as if
/// the pool had run it; drop it and the handle resolves to
/// [`TaskError::NotRun`] (or [`TaskError::Evicted`] for an evicted task).
#[must_use = "dropping an unstarted task abandons it"]
pub struct Unstarted {
    job: Option<BlockingBox>,
    reason: TaskError,
}

impl Unstarted {
    fn new(job: BlockingBox, reason: TaskError) -> Self {
        Self { job: Some(job), reason }
    }

    /// Runs the task on the current thread; its handle gets the output (or
    /// the caught panic).
    pub fn run(mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.run();
        }
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            job.abandon(self.reason.clone());
        }
    }
}

impl fmt::Debug for Unstarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unstarted").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Wakes a parked worker or submitter thread.
struct ThreadNotify {
    thread: Thread,
    notified: AtomicBool,
}

impl ThreadNotify {
    /// Parks until woken and consumes the wake-up; one that came before the
    /// call returns at once (the flag keeps it), so none is lost.
    fn wait(&self) {
        while !self.notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Wake for ThreadNotify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

fn thread_waker() -> (Arc<ThreadNotify>, Waker) {
    let notify =
        Arc::new(ThreadNotify { thread: thread::current(), notified: AtomicBool::new(false) });
    (Arc::clone(&notify), Waker::from(notify))
}

/// Spins, then yields, a bounded number of times waiting for the queue to
/// fill; whether work appeared. Bounded: an idle pool goes to sleep within
/// microseconds, so it burns no CPU.
fn spin_for_work(queue: &crate::queue::Queue<BlockingBox>) -> bool {
    for round in 0..SPIN_ROUNDS {
        if queue.len() > 0 {
            return true;
        }
        if round < SPIN_ROUNDS / 2 {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        } else {
            thread::yield_now();
        }
    }
    false
}

/// Rounds of [`spin_for_work`]: half busy-spins of 32 pauses, half yields.
const SPIN_ROUNDS: u32 = 16;

fn worker(core: &Arc<Core<BlockingBox>>, index: usize, sizing: &Arc<Sizing>) {
    let span = tracing::debug_span!("conc_pool.worker", pool = %core.name, worker = index);
    let _entered = span.enter();
    let (notify, waker) = thread_waker();
    let slot = core.slot(index);
    loop {
        // Replaced while stuck: the task has ended, leave (no longer counted
        // in `live`).
        if slot.is_abandoned() {
            break;
        }
        replace_stuck(core, sizing);
        // A manual scale-down asked some worker to retire: this one, if it
        // takes the request (never below one worker).
        if sizing.retire.load(Ordering::Acquire) > 0 {
            let took = sizing
                .retire
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if took && sizing.try_leave(1) {
                sizing.scaled_down.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        if let Some(entry) = core.queue.pop() {
            slot.start(entry.enqueued_nanos, core.now_nanos());
            let outcome = entry.job.run();
            slot.finish(outcome);
            continue;
        }
        // Empty: spin briefly before sleeping, so a steady stream of work
        // costs no wake-ups (a park/unpark round trip costs microseconds).
        if spin_for_work(&core.queue) {
            continue;
        }
        match core.queue.pop_or_register(index, &waker) {
            Pop::Job(entry) => {
                slot.start(entry.enqueued_nanos, core.now_nanos());
                let outcome = entry.job.run();
                slot.finish(outcome);
            }
            Pop::Idle => {
                if sizing.dynamic() {
                    if idle_until_keep_alive(core, index, sizing, &notify) {
                        sizing.scaled_down.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(conc_core::metrics::POOL_SCALE_EVENTS, "direction" => "down")
                            .increment(1);
                        tracing::debug!(target: "conc_pool", pool = %core.name, worker = index, "scaled down after keep-alive");
                        break;
                    }
                } else {
                    notify.wait();
                }
            }
            Pop::Closed => {
                sizing.live.fetch_sub(1, Ordering::AcqRel);
                break;
            }
        }
    }
    slot.set_alive(false);
    worker_exited(sizing);
}

/// Sleeps until woken or until the keep-alive passes; whether the worker
/// should retire (idle past the keep-alive with more than the minimum alive).
fn idle_until_keep_alive(
    core: &Core<BlockingBox>,
    index: usize,
    sizing: &Sizing,
    notify: &ThreadNotify,
) -> bool {
    // A keep-alive too long to represent never expires.
    let deadline = Instant::now().checked_add(sizing.keep_alive);
    loop {
        if notify.notified.swap(false, Ordering::Acquire) {
            return false;
        }
        let Some(deadline) = deadline else {
            notify.wait();
            return false;
        };
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        thread::park_timeout(deadline - now);
    }
    // Leave the idle list under the queue lock: after that no push can pick
    // this worker, and a push that picked it just before has set the flag.
    core.queue.unregister(index);
    if notify.notified.swap(false, Ordering::Acquire) {
        return false;
    }
    if sizing.live.load(Ordering::Acquire) <= sizing.min {
        return false;
    }
    match sizing.decide(core, crate::ScaleTrigger::IdleTimeout) {
        crate::ScaleDecision::Shrink(0)
        | crate::ScaleDecision::Grow(_)
        | crate::ScaleDecision::Hold => return false,
        crate::ScaleDecision::Shrink(n) => {
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
        }
    }
    sizing.try_leave(sizing.min)
}

impl BlockingPool {
    /// A builder with the defaults: one worker per available CPU, unbounded
    /// queue, [`Rejection::Reject`], aging every 64 dequeues.
    pub fn builder() -> BlockingPoolBuilder {
        BlockingPoolBuilder {
            raw: RawSettings::new(),
            on_evict: None,
            stack_size: None,
            keep_alive: Duration::from_secs(10),
            scaling: crate::scale::Scaling::new(),
        }
    }

    fn core(&self) -> &Core<BlockingBox> {
        &self.shared.core
    }

    /// Gets room for one task under the pool's policy (or refuses: a `Full`
    /// refusal under [`Rejection::CallerRuns`] means "run it yourself").
    fn acquire(&self, honour_policy: bool) -> Result<Room<'_>, Refusal> {
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
            Rejection::Block(timeout) => self.wait_for_room(timeout).map(Room::Reserved),
        }
    }

    /// Puts `item` into the room, turning it into a job only once the push
    /// is sure to succeed.
    fn place<I>(
        &self,
        room: Room<'_>,
        item: I,
        priority: i32,
        into_job: impl FnOnce(I) -> BlockingBox,
    ) -> Result<(), (Refusal, I)> {
        let core = self.core();
        let pushed = match room {
            Room::Reserved(reservation) => {
                match core.queue.push(reservation, item, into_job, priority, core.now_nanos()) {
                    Ok(woke) => {
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
                            match sizing.decide(core, crate::ScaleTrigger::Queued) {
                                crate::ScaleDecision::Grow(n) => {
                                    self.scale_up(n);
                                }
                                crate::ScaleDecision::Shrink(n) => {
                                    self.scale_down(n);
                                }
                                crate::ScaleDecision::Hold => {}
                            }
                        }
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
            Room::Evict => {
                match core.queue.push_evicting(item, into_job, priority, core.now_nanos()) {
                    Ok(evicted) => {
                        core.count_evicted();
                        let unstarted = Unstarted::new(evicted.job, TaskError::Evicted);
                        match &self.shared.on_evict {
                            Some(hook) => hook(unstarted),
                            None => drop(unstarted),
                        }
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
        };
        pushed.map_err(|error| match error {
            PushError::Full(item) => (Refusal::Full, item),
            PushError::Closed(item) => (Refusal::Closed, item),
        })
    }

    /// Turns a refusal into the error handed to the caller, counting it.
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

    /// Waits for room until `timeout`.
    fn wait_for_room(
        &self,
        timeout: Duration,
    ) -> Result<crate::queue::Reservation<'_, BlockingBox>, Refusal> {
        let queue = &self.core().queue;
        // A timeout too long to represent (`Duration::MAX`) waits forever.
        let deadline = Instant::now().checked_add(timeout);
        let (notify, waker) = thread_waker();
        let mut ticket = None;
        loop {
            match queue.reserve_or_wait(&waker, &mut ticket) {
                Ok(Some(reservation)) => {
                    queue.cancel_wait(ticket);
                    return Ok(reservation);
                }
                Ok(None) => {}
                Err(()) => return Err(Refusal::Closed),
            }
            loop {
                if notify.notified.swap(false, Ordering::Acquire) {
                    break;
                }
                let Some(deadline) = deadline else {
                    notify.wait();
                    break;
                };
                let now = Instant::now();
                if now >= deadline {
                    queue.cancel_wait(ticket);
                    return Err(Refusal::Timeout);
                }
                thread::park_timeout(deadline - now);
            }
        }
    }

    /// Submits a closure; its handle resolves to the output. On a full queue
    /// the pool's [`Rejection`] policy applies.
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

    /// [`submit`](Self::submit) with a priority and a deadline.
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

    fn submit_inner<F, T, C>(
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
        // A timeout too long to represent (`Duration::MAX`) is no deadline.
        let deadline = || options.get_timeout().and_then(|t| Instant::now().checked_add(t));
        let room = match self.acquire(honour_policy) {
            Ok(room) => room,
            Err(refusal) if self.caller_runs(honour_policy, refusal) => {
                let (tx, handle) = TaskHandle::channel();
                let task = HandleTask {
                    f,
                    call,
                    tx,
                    deadline: deadline(),
                    span: crate::job::CarriedSpan::current(),
                };
                self.core().count_caller_ran();
                self.core().count_outside(task.run_here());
                return Ok(handle);
            }
            // Refused before anything was allocated.
            Err(refusal) => return Err(self.refuse(refusal, f)),
        };
        let (tx, handle) = TaskHandle::channel();
        let task = HandleTask {
            f,
            call,
            tx,
            deadline: deadline(),
            span: crate::job::CarriedSpan::current(),
        };
        match self.place(room, task, options.get_priority(), |t| Box::new(t) as BlockingBox) {
            Ok(()) => Ok(handle),
            Err((refusal, task)) => Err(self.refuse(refusal, task.f)),
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

    fn spawn_inner<F>(
        &self,
        f: F,
        options: TaskOptions,
        honour_policy: bool,
    ) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let room = match self.acquire(honour_policy) {
            Ok(room) => room,
            Err(refusal) if self.caller_runs(honour_policy, refusal) => {
                self.core().count_caller_ran();
                self.core().count_outside(
                    Box::new(SpawnTask { f, span: crate::job::CarriedSpan::none() }).run(),
                );
                return Ok(());
            }
            Err(refusal) => return Err(self.refuse(refusal, f)),
        };
        self.place(
            room,
            SpawnTask { f, span: crate::job::CarriedSpan::current() },
            options.get_priority(),
            |t| Box::new(t) as BlockingBox,
        )
        .map_err(|(refusal, task)| self.refuse(refusal, task.f))
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
        let mut tasks = tasks.into_iter();
        let mut handles = Vec::with_capacity(tasks.size_hint().0);
        while let Some(task) = tasks.next() {
            match self.submit(task) {
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

    /// Submits an operation retried with `backoff` while it fails: the
    /// handle resolves to its first success, or to its last error once the
    /// backoff's retries run out. The worker sleeps between attempts (use
    /// the async pool for long backoffs). A panic is not retried.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
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
    pub fn processor<I, O, P>(&self, process: P) -> Processor<I, O>
    where
        P: Fn(I) -> O + Send + Sync + 'static,
        I: Send + 'static,
        O: Send + 'static,
    {
        Processor { pool: self.clone(), process: Arc::new(process) }
    }

    /// A snapshot of the pool's counters and gauges.
    pub fn metrics(&self) -> PoolMetrics {
        let mut metrics = self.core().metrics();
        metrics.scaled_up = self.shared.sizing.scaled_up.load(Ordering::Relaxed);
        metrics.scaled_down = self.shared.sizing.scaled_down.load(Ordering::Relaxed);
        metrics.replaced = self.shared.sizing.replaced.load(Ordering::Relaxed);
        metrics
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
    /// queue until `timeout`, then hands back every task that did not start.
    /// Closures still running at the timeout cannot be preempted; they are
    /// counted in the report and finish on their own.
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport<Unstarted> {
        self.core().queue.close();
        let alive = self.wait_exits(Instant::now().checked_add(timeout));
        let unstarted = self.drain();
        ShutdownReport { unstarted, still_running: alive.min(self.core().metrics().busy) }
    }

    /// Immediate shutdown: stops accepting work and hands back every queued
    /// task at once; running closures finish on their own.
    pub fn shutdown_now(&self) -> ShutdownReport<Unstarted> {
        self.core().queue.close();
        let unstarted = self.drain();
        let still_running = self.core().metrics().busy;
        ShutdownReport { unstarted, still_running }
    }

    /// Blocks until every worker has exited (after a shutdown), or until
    /// `timeout`; whether they all had.
    pub fn join(&self, timeout: Duration) -> bool {
        self.wait_exits(Instant::now().checked_add(timeout)) == 0
    }

    fn drain(&self) -> Vec<Unstarted> {
        self.core()
            .queue
            .drain()
            .into_iter()
            .map(|entry| Unstarted::new(entry.job, TaskError::NotRun))
            .collect()
    }

    /// Waits until no worker is alive or until `deadline` (`None`: no
    /// deadline, for a timeout too long to represent); the workers still
    /// alive.
    fn wait_exits(&self, deadline: Option<Instant>) -> usize {
        let sizing = &self.shared.sizing;
        let mut alive = sizing.exits.lock().unwrap_or_else(PoisonError::into_inner);
        while *alive > 0 {
            let Some(deadline) = deadline else {
                alive = sizing.changed.wait(alive).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            alive = sizing
                .changed
                .wait_timeout(alive, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *alive
    }

    /// Adds up to `n` workers, never above `max_workers`; how many started.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::BlockingPool;
    ///
    /// let pool = BlockingPool::builder().workers(1).max_workers(4).build()?;
    /// assert_eq!(pool.scale_up(5), 3);
    /// assert_eq!(pool.workers(), 4);
    /// # Ok::<(), conc_pool::BuildError>(())
    /// ```
    pub fn scale_up(&self, n: usize) -> usize {
        let mut started = 0;
        while started < n
            && matches!(spawn_worker(&self.shared.core, &self.shared.sizing, true), Ok(true))
        {
            started += 1;
        }
        started
    }

    /// Asks up to `n` workers to retire, never below one worker. Idle
    /// workers leave at once; busy ones after their current task (running
    /// tasks are never interrupted). Returns how many were asked.
    pub fn scale_down(&self, n: usize) -> usize {
        let sizing = &self.shared.sizing;
        let pending = sizing.retire.load(Ordering::Acquire);
        let available = sizing.live.load(Ordering::Acquire).saturating_sub(1 + pending);
        let asked = n.min(available);
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
}

#[derive(Debug)]
enum Room<'a> {
    Reserved(crate::queue::Reservation<'a, BlockingBox>),
    Evict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    Closed,
    Timeout,
}

/// A typed processor over a [`BlockingPool`]: one function, many inputs.
/// Made by [`BlockingPool::processor`].
pub struct Processor<I, O> {
    pool: BlockingPool,
    process: Arc<dyn Fn(I) -> O + Send + Sync>,
}

impl<I, O> Clone for Processor<I, O> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), process: Arc::clone(&self.process) }
    }
}

impl<I, O> fmt::Debug for Processor<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Processor<I, O> {
    /// Processes `input` on the pool.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit`], with the input handed back.
    pub fn submit(&self, input: I) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(TaskOptions::new(), input)
    }

    /// Processes `input` with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit`], with the input handed back.
    pub fn submit_with(
        &self,
        options: TaskOptions,
        input: I,
    ) -> Result<TaskHandle<O>, SubmitError<I>> {
        let process = Arc::clone(&self.process);
        self.pool
            .submit_inner(options, (input, process), true, |(input, process), _| process(input))
            .map_err(|error| error.map(|(input, _)| input))
    }

    /// Processes every input; outputs in input order.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit_batch`], with the inputs handed back.
    pub fn submit_batch(
        &self,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Batch<O>, BatchError<O, I>> {
        let mut inputs = inputs.into_iter();
        let mut handles = Vec::with_capacity(inputs.size_hint().0);
        while let Some(input) = inputs.next() {
            match self.submit(input) {
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
    pub fn pool(&self) -> &BlockingPool {
        &self.pool
    }
}
