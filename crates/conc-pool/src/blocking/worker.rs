//! The blocking pool's flavor of the engine: worker threads of its own.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::JoinError;
use crate::core::PoolTimeline;
use crate::engine::{Engine, Flavor};
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::queue::{Entry, Local, Pop};
use crate::task::Job;

/// Worker threads of the pool's own.
#[derive(Debug)]
pub(crate) struct BlockingFlavor {
    /// Worker threads alive (replaced stuck ones included), under the lock
    /// a shutdown waits on.
    exits: Mutex<usize>,
    changed: Condvar,
    stack_size: Option<usize>,
}

impl BlockingFlavor {
    pub(super) fn new(stack_size: Option<usize>) -> Self {
        Self { exits: Mutex::new(0), changed: Condvar::new(), stack_size }
    }

    /// Waits until no worker thread is alive or until `deadline` (`None`: no
    /// deadline); the threads still alive.
    pub(super) fn wait_exits(&self, deadline: Option<Instant>) -> usize {
        let mut alive = self.exits.lock().unwrap_or_else(PoisonError::into_inner);
        while *alive > 0 {
            let Some(deadline) = deadline else {
                alive = self.changed.wait(alive).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            alive = self
                .changed
                .wait_timeout(alive, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *alive
    }
}

impl Flavor for BlockingFlavor {
    type Job = Job;
    type Unstarted = Unstarted;
    type StartError = std::io::Error;

    fn start_worker(engine: &Arc<Engine<Self>>, index: usize) -> std::io::Result<()> {
        let flavor = &engine.flavor;
        *flavor.exits.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let mut thread = thread::Builder::new().name(format!("{}-{index}", engine.core.name));
        if let Some(bytes) = flavor.stack_size {
            thread = thread.stack_size(bytes);
        }
        let worker_engine = Arc::clone(engine);
        thread
            .spawn(move || worker(&worker_engine, index))
            .map(drop)
            .inspect_err(|_| flavor.worker_left())
    }

    fn hand_back(engine: &Engine<Self>, job: Job, reason: JoinError) -> Unstarted {
        Unstarted { job: Some(job), reason, timeline: Arc::clone(&engine.core.timeline) }
    }

    fn worker_left(&self) {
        let mut alive = self.exits.lock().unwrap_or_else(PoisonError::into_inner);
        *alive -= 1;
        self.changed.notify_all();
    }
}

/// A blocking task that was accepted and never started, handed back by a
/// shutdown or an eviction. [`run`](Self::run) it to resolve its handle as if
/// the pool had run it; drop it and the handle resolves to
/// [`JoinError::NotRun`] (or [`JoinError::Evicted`] for an evicted task).
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(1).build()?;
/// let (release, hold) = std::sync::mpsc::channel::<()>();
/// pool.spawn(move || { hold.recv().ok(); }).unwrap(); // occupies the worker
/// # while pool.metrics().busy == 0 { std::thread::yield_now(); }
/// let queued = pool.submit(|| "late").unwrap();
/// let report = pool.shutdown_now();
/// for task in report.unstarted {
///     task.run(); // run it here instead
/// }
/// assert_eq!(queued.join()?, "late");
/// drop(release);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping an unstarted task abandons it"]
pub struct Unstarted {
    job: Option<Job>,
    reason: JoinError,
    /// The pool's clock, for the task's deadline.
    timeline: PoolTimeline,
}

impl Unstarted {
    /// Runs the task on the current thread; its handle gets the output (or
    /// the caught panic, or [`JoinError::DeadlineExceeded`] when its deadline
    /// has passed).
    pub fn run(mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.run(self.timeline.now());
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
pub(crate) struct ThreadNotify {
    thread: Thread,
    notified: AtomicBool,
}

impl ThreadNotify {
    /// A waker for the current thread, and the flag it sets.
    pub(crate) fn current() -> (Arc<Self>, Waker) {
        let notify = Arc::new(Self { thread: thread::current(), notified: AtomicBool::new(false) });
        (Arc::clone(&notify), Waker::from(notify))
    }

    /// Consumes a wake-up that came; whether one had.
    fn take(&self) -> bool {
        self.notified.swap(false, Ordering::Acquire)
    }

    /// Parks until woken or until `deadline` (`None`: no deadline) and
    /// consumes the wake-up; whether it was woken. A wake-up that came before
    /// the call returns at once (the flag keeps it), so none is lost.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.take() {
                return true;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
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

/// Spins, then yields, a bounded number of times waiting for the queue to
/// fill; whether work appeared. Bounded: an idle pool goes to sleep within
/// microseconds, so it burns no CPU.
fn spin_for_work(local: &Local<'_, Job>) -> bool {
    for round in 0..SPIN_ROUNDS {
        if local.work_visible() {
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

/// What a worker that found the queue empty does next.
enum Waited {
    Job(Entry<Job>),
    LookAgain,
    Leave,
}

/// The queue was empty: spin briefly (so a steady stream of work costs no
/// wake-ups, a park/unpark round trip costing microseconds), then register
/// idle and sleep until woken (or, in a dynamic pool, until the keep-alive
/// passes and the worker may retire).
fn wait_for_work(
    engine: &Engine<BlockingFlavor>,
    index: usize,
    notify: &ThreadNotify,
    waker: &Waker,
    local: &Local<'_, Job>,
) -> Waited {
    if spin_for_work(local) {
        return Waited::LookAgain;
    }
    match engine.core.queue.pop_or_register_local(index, waker, Some(local)) {
        Pop::Job(entry) => Waited::Job(entry),
        Pop::Idle if engine.dynamic() => {
            // A keep-alive too long to represent never expires.
            if notify.wait_until(Instant::now().checked_add(engine.keep_alive)) {
                return Waited::LookAgain;
            }
            // Leave the idle list under the queue lock: after that no push
            // can pick this worker, and a push that picked it just before has
            // set the flag.
            engine.core.queue.unregister(index);
            if notify.take() || !engine.retire_idle(index) {
                Waited::LookAgain
            } else {
                Waited::Leave
            }
        }
        Pop::Idle => {
            notify.wait_until(None);
            Waited::LookAgain
        }
        Pop::Closed => {
            engine.closed_leave();
            Waited::Leave
        }
    }
}

fn worker(engine: &Arc<Engine<BlockingFlavor>>, index: usize) {
    let core = &engine.core;
    let span = tracing::debug_span!("conc_pool.worker", pool = %core.name, worker = index);
    let _entered = span.enter();
    let (notify, waker) = ThreadNotify::current();
    let slot = core.slot(index);
    // The worker's own deque: batches from the injector land here, and the
    // other workers steal from it. Dropped (handed back) before the worker
    // counts as gone.
    let local = core.queue.local(index);
    let mut now = core.now();
    while !engine.between_tasks(index, now) {
        let entry = if let Some(entry) = core.queue.pop_local(Some(&local)) {
            entry
        } else {
            let waited = wait_for_work(engine, index, &notify, &waker, &local);
            now = core.now();
            match waited {
                Waited::Job(entry) => entry,
                Waited::LookAgain => continue,
                Waited::Leave => break,
            }
        };
        core.start(slot, entry.enqueued_nanos, now);
        let outcome = entry.job.run(now);
        now = core.finish(slot, outcome, now);
    }
    drop(local);
    engine.worker_left(index);
}
