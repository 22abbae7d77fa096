//! [`Worker`]: takes jobs from a backend's queues and runs their handlers —
//! with leases renewed while they run, timeouts, caught panics, retries with
//! backoff, stop conditions and a graceful stop.

mod attempt;
mod builder;
mod event;
mod heartbeat;
mod metrics;
mod run;
mod stats;

pub use builder::{
    DEFAULT_HEARTBEAT, MAX_CONCURRENCY, MAX_WAIT, MIN_HEARTBEAT, MIN_LEASE, WorkerBuilder,
};
pub use event::{WorkerEvent, WorkerStop};
pub use metrics::{JobStats, WorkerHealth, WorkerMetrics, WorkerState};

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use conc_core::lifecycle::Lifecycle;
use conc_core::metrics::MetricsSource;
use conc_core::{BoxError, BoxFuture};
use tokio::sync::{broadcast, watch};

use self::builder::Config;
use self::stats::{Histogram, MinuteRate};
use crate::job::{Cancellation, JobHandlers};
use crate::queue::QueueBackend;

/// A worker: takes jobs from its queues (in priority order) and runs their
/// handlers, at most `concurrency` at a time.
///
/// - Each job runs under a lease the worker renews every third of its length,
///   so a long job is never taken by another worker while this one is alive,
///   and a dead worker's jobs come back within one lease.
/// - An attempt that exceeds the job's timeout is cancelled and fails as
///   timed out; a panic fails the attempt with its message and the worker
///   keeps serving; a failed attempt is retried after the job's backoff while
///   its attempts (and exceptions) last, then stored as failed saying which
///   limit tripped.
/// - A failing backend is retried with backoff, never a reason to stop.
/// - Stopping stops taking jobs, lets running ones finish for `grace`, then
///   signals their cancellation and releases their leases at once.
///
/// It implements [`Lifecycle`] (so a [`Registry`](conc_core::lifecycle::Registry)
/// starts and stops it) and [`MetricsSource`].
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, Job, JobContext, JobError, MemoryQueue, Queue, Worker};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Add { a: u32, b: u32 }
/// impl Job for Add { const NAME: &'static str = "add"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = MemoryQueue::new();
/// let queue = Queue::new(backend.clone());
/// queue.push(Add { a: 2, b: 3 }).await?;
///
/// let handlers = JobHandlers::new().handle(|job: Add, _ctx: JobContext| async move {
///     assert_eq!(job.a + job.b, 5);
///     Ok::<(), JobError>(())
/// });
/// let worker = Worker::builder(backend, handlers).stop_when_empty(true).build()?;
/// worker.run().await?;
/// assert_eq!(conc_core::metrics::MetricsSource::metrics(&worker).processed, 1);
/// # Ok(()) }
/// ```
pub struct Worker<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for Worker<B> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

/// A worker that was already started.
///
/// # Examples
///
/// ```
/// use conc_bus::AlreadyStarted;
///
/// assert_eq!(AlreadyStarted.to_string(), "the worker was already started");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worker was already started")]
pub struct AlreadyStarted;

/// What the worker's loop and its handle share.
pub(crate) struct Shared<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) handlers: Arc<JobHandlers>,
    pub(crate) config: Config,
    pub(crate) events: broadcast::Sender<WorkerEvent>,
    /// Set by `stop`: the loop stops taking jobs.
    pub(crate) stop: Cancellation,
    /// A shorter grace asked for by `stop`.
    pub(crate) grace: Mutex<Option<Duration>>,
    pub(crate) started: AtomicBool,
    pub(crate) state: watch::Sender<WorkerState>,
    pub(crate) counters: Counters,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) contact: Mutex<Contact>,
    pub(crate) born: tokio::time::Instant,
    /// Its heartbeat id, unique per worker.
    pub(crate) id: String,
}

/// Counts written by the worker's loop only.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) processed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) backend_errors: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) prefetched: AtomicU64,
    pub(crate) finished: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Latencies and rates, written by the loop.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) runtimes: HashMap<String, Histogram>,
    pub(crate) waits: HashMap<String, Histogram>,
    pub(crate) processed: MinuteRate,
    pub(crate) failed: MinuteRate,
}

/// The backend's last answer, for the health report.
#[derive(Default)]
pub(crate) struct Contact {
    pub(crate) last_ok: Option<Instant>,
    pub(crate) error: Option<String>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only the worker's own bookkeeping runs under these locks.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: QueueBackend> Worker<B> {
    /// A builder for a worker taking jobs from `backend` and running them
    /// with `handlers`.
    pub fn builder(backend: B, handlers: JobHandlers) -> WorkerBuilder<B> {
        WorkerBuilder::new(Arc::new(backend), handlers)
    }

    /// A builder for a worker over a shared backend.
    pub fn builder_shared(backend: Arc<B>, handlers: JobHandlers) -> WorkerBuilder<B> {
        WorkerBuilder::new(backend, handlers)
    }

    pub(crate) fn from_parts(backend: Arc<B>, handlers: JobHandlers, config: Config) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity);
        let (state, _) = watch::channel(WorkerState::Idle);
        let shared = Shared {
            backend,
            handlers: Arc::new(handlers),
            config,
            events,
            stop: Cancellation::default(),
            grace: Mutex::new(None),
            started: AtomicBool::new(false),
            state,
            counters: Counters::default(),
            stats: Mutex::new(Stats::default()),
            contact: Mutex::new(Contact::default()),
            born: tokio::time::Instant::now(),
            id: crate::id::JobId::new().to_string(),
        };
        Self { shared: Arc::new(shared) }
    }

    /// Its id in the heartbeats it records ([`WorkerBeat::id`](crate::WorkerBeat::id)),
    /// unique per worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobHandlers, MemoryQueue, Worker};
    ///
    /// let a = Worker::builder(MemoryQueue::new(), JobHandlers::new()).build()?;
    /// let b = Worker::builder(MemoryQueue::new(), JobHandlers::new()).build()?;
    /// assert_ne!(a.id(), b.id());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The queues it takes jobs from, in priority order.
    pub fn queues(&self) -> &[String] {
        &self.shared.config.queues
    }

    /// Runs the worker on this task until it stops (a stop condition, or
    /// [`stop`](Self::stop) from another task); why it stopped.
    ///
    /// # Errors
    ///
    /// [`AlreadyStarted`] when it runs already (or ran).
    pub async fn run(&self) -> Result<WorkerStop, AlreadyStarted> {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return Err(AlreadyStarted);
        }
        Ok(run::run(Arc::clone(&self.shared)).await)
    }

    /// Starts the worker on the current tokio runtime and returns at once.
    ///
    /// # Errors
    ///
    /// [`AlreadyStarted`] when it runs already (or ran).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(&self) -> Result<(), AlreadyStarted> {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return Err(AlreadyStarted);
        }
        self.shared.state.send_replace(WorkerState::Running);
        tokio::spawn(run::run(Arc::clone(&self.shared)));
        Ok(())
    }

    /// Asks the worker to stop: it takes no more jobs, gives running ones
    /// `grace` (at most its configured grace) to finish, then cancels them and
    /// releases their leases. Returns at once; [`stopped`](Self::stopped)
    /// waits for the end.
    pub fn stop(&self, grace: Duration) {
        *lock(&self.shared.grace) = Some(grace);
        self.shared.stop.cancel();
    }

    /// Waits until the worker has stopped; why it stopped. Resolves at once
    /// for a worker that stopped already, and never for one never started.
    pub async fn stopped(&self) -> WorkerStop {
        let mut state = self.shared.state.subscribe();
        loop {
            if let WorkerState::Stopped(reason) = *state.borrow_and_update() {
                return reason;
            }
            if state.changed().await.is_err() {
                return WorkerStop::Requested;
            }
        }
    }

    /// Where the worker is in its life.
    pub fn state(&self) -> WorkerState {
        *self.shared.state.borrow()
    }

    /// A receiver of the worker's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.shared.events.subscribe()
    }

    /// The worker's health, for a readiness probe.
    pub fn health(&self) -> WorkerHealth {
        let contact = lock(&self.shared.contact);
        let counters = &self.shared.counters;
        let held =
            counters.running.load(Ordering::Relaxed) + counters.prefetched.load(Ordering::Relaxed);
        WorkerHealth {
            state: self.state(),
            backend_reachable: contact.last_ok.is_some() && contact.error.is_none(),
            since_last_contact: contact.last_ok.map(|at| at.elapsed()),
            leases_held: usize::try_from(held).unwrap_or(usize::MAX),
            last_error: contact.error.clone(),
        }
    }
}

impl<B> fmt::Debug for Worker<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.shared.config.name)
            .field("queues", &self.shared.config.queues)
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl<B: QueueBackend> MetricsSource for Worker<B> {
    type Snapshot = WorkerMetrics;

    fn metrics(&self) -> WorkerMetrics {
        let counters = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let second = self.shared.born.elapsed().as_secs();
        let stats = lock(&self.shared.stats);
        let summarize = |map: &HashMap<String, Histogram>| {
            let mut out: Vec<JobStats> = map
                .iter()
                .map(|(key, histogram)| JobStats {
                    key: key.clone(),
                    count: histogram.count(),
                    p50: histogram.quantile(0.5),
                    p99: histogram.quantile(0.99),
                })
                .collect();
            out.sort_by(|a, b| a.key.cmp(&b.key));
            out
        };
        WorkerMetrics {
            processed: load(&counters.processed),
            failed: load(&counters.failed),
            retried: load(&counters.retried),
            dead: load(&counters.dead),
            released: load(&counters.released),
            lease_lost: load(&counters.lease_lost),
            backend_errors: load(&counters.backend_errors),
            running: load(&counters.running),
            prefetched: load(&counters.prefetched),
            processed_last_minute: stats.processed.last_minute(second),
            failed_last_minute: stats.failed.last_minute(second),
            runtimes: summarize(&stats.runtimes),
            waits: summarize(&stats.waits),
        }
    }

    fn reset_metrics(&self) {
        let counters = &self.shared.counters;
        for counter in [
            &counters.processed,
            &counters.failed,
            &counters.retried,
            &counters.dead,
            &counters.released,
            &counters.lease_lost,
            &counters.backend_errors,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        *lock(&self.shared.stats) = Stats::default();
    }
}

impl<B: QueueBackend> Lifecycle for Worker<B> {
    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            match Worker::start(self) {
                Ok(()) | Err(AlreadyStarted) => Ok(()),
            }
        })
    }

    fn stop(&self, deadline: std::time::Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            if self.state() == WorkerState::Idle {
                return Ok(());
            }
            // Keep a tenth of the time left (at most a second) to release the
            // leases and return before the deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            let margin = (left / 10).min(Duration::from_secs(1));
            Worker::stop(self, left.saturating_sub(margin));
            self.stopped().await;
            Ok(())
        })
    }

    fn is_running(&self) -> bool {
        matches!(self.state(), WorkerState::Running | WorkerState::Stopping)
    }
}
