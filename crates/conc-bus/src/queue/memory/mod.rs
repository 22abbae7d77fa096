//! [`MemoryQueue`]: queues in this process's memory. Fast, and not durable:
//! a process that stops loses every job it holds. Use it for jobs that may be
//! lost, for tests, and — on a [`ManualClock`](conc_core::time::ManualClock)
//! — for deterministic simulations of workers and faults.

mod admit;
mod flow;
mod state;
mod workers;
mod workflow;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::Clock;
use tokio::sync::Notify;

use self::state::State;
use super::backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled,
};
use super::beat::WorkerBeat;
use super::error::{LeaseLost, PushError, QueueError};
use super::lease::Lease;
use super::settle::Transition;
use crate::clock::{WallClock, millis};
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;

/// The failed store's default bound: 10,000 jobs (Sidekiq's dead set keeps
/// as many).
pub const DEFAULT_FAILED_MAX_JOBS: usize = 10_000;

/// The failed store's default age bound: 30 days.
pub const DEFAULT_FAILED_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Queues held in this process's memory: every contract of
/// [`QueueBackend`] kept, nothing kept past the process.
///
/// Clones share the queues. Every operation takes one short lock; no user
/// code runs under it.
///
/// # Examples
///
/// ```
/// use conc_bus::{MemoryQueue, Queue};
///
/// let queue = Queue::new(MemoryQueue::new());
/// # let _ = queue;
/// ```
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

struct Inner {
    clock: WallClock,
    state: Mutex<State>,
    /// Woken when a job may have become available.
    pushed: Notify,
    failed_max_jobs: usize,
    failed_max_age: Duration,
    /// Worker heartbeats, under their own lock.
    workers: workers::Beats,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryQueue {
    /// A backend on the coarse clock with the default failed-store bounds.
    pub fn new() -> Self {
        Self::from_builder(Self::builder())
    }

    /// A builder to set the clock and the failed store's bounds.
    pub fn builder() -> MemoryQueueBuilder {
        MemoryQueueBuilder {
            clock: None,
            failed_max_jobs: DEFAULT_FAILED_MAX_JOBS,
            failed_max_age: DEFAULT_FAILED_MAX_AGE,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock and every update is applied
        // before anything can panic, so a poisoned lock holds consistent state.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `dead` jobs in the failed store and applies its bounds.
    fn bury(&self, state: &mut State, dead: Vec<FailedJob>, now: u64) {
        if dead.is_empty() {
            return;
        }
        for job in dead {
            state.failed.insert(job);
        }
        let min_failed_at = now.saturating_sub(millis(self.inner.failed_max_age));
        state.failed.retain(self.inner.failed_max_jobs, min_failed_at);
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryQueue")
            .field("jobs", &state.jobs.len())
            .field("queues", &state.queues.len())
            .field("failed", &state.failed.by_id.len())
            .finish()
    }
}

/// Configures a [`MemoryQueue`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::MemoryQueue;
/// use conc_core::time::ManualClock;
///
/// let clock = ManualClock::new();
/// let backend = MemoryQueue::builder()
///     .clock(clock.clone())
///     .failed_retention(1_000, Duration::from_secs(7 * 24 * 3600))
///     .build()?;
/// # let _ = backend;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MemoryQueueBuilder {
    clock: Option<Arc<dyn Clock>>,
    failed_max_jobs: usize,
    failed_max_age: Duration,
}

impl MemoryQueueBuilder {
    /// The clock every time is read from (availability, leases, failures).
    /// Defaults to the process-wide coarse clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How many failed jobs are kept, and for how long: past either bound the
    /// oldest failures are dropped. Defaults to [`DEFAULT_FAILED_MAX_JOBS`]
    /// and [`DEFAULT_FAILED_MAX_AGE`]; at least one job and one millisecond.
    pub fn failed_retention(mut self, max_jobs: usize, max_age: Duration) -> Self {
        self.failed_max_jobs = max_jobs;
        self.failed_max_age = max_age;
        self
    }

    /// The backend.
    pub fn build(self) -> Result<MemoryQueue, ConfigError> {
        config::at_least("failed_max_jobs", self.failed_max_jobs, 1)?;
        config::at_least("failed_max_age", self.failed_max_age, Duration::from_millis(1))?;
        Ok(MemoryQueue::from_builder(self))
    }
}

impl MemoryQueue {
    /// The backend of a builder whose settings are valid.
    fn from_builder(builder: MemoryQueueBuilder) -> Self {
        let MemoryQueueBuilder { clock, failed_max_jobs, failed_max_age } = builder;
        let clock = clock.map_or_else(WallClock::default, WallClock::new);
        let inner = Inner {
            clock,
            state: Mutex::new(State::default()),
            pushed: Notify::new(),
            failed_max_jobs,
            failed_max_age,
            workers: workers::Beats::default(),
        };
        MemoryQueue { inner: Arc::new(inner) }
    }
}

impl QueueBackend for MemoryQueue {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        let now = self.now();
        {
            let mut state = self.lock();
            // All or nothing: check every job before storing any.
            if let Err(refusal) = check_push(&state, &jobs) {
                return Err(refusal.into_error(jobs));
            }
            if let Err((key, held_by)) = state.check_admission(&jobs, now) {
                return Err(PushError::Locked { key, held_by, jobs });
            }
            for job in jobs {
                let available_at = state.admit(&job, now);
                state.insert(job.envelope, available_at, now);
            }
        }
        self.inner.pushed.notify_waiters();
        self.inner.pushed.notify_one();
        Ok(())
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        let now = self.now();
        let lease_ms = millis(request.lease);
        let mut dead = Vec::new();
        let (jobs, pushed) = {
            let mut state = self.lock();
            let jobs = state.reserve(request.queues, request.max, lease_ms, now, &mut dead);
            self.bury(&mut state, dead.clone(), now);
            (jobs, std::mem::take(&mut state.follow_pushed))
        };
        if pushed {
            // Callbacks of jobs found dead (their batch or chain carries on).
            self.inner.pushed.notify_waiters();
        }
        Ok(Reservation { jobs, dead })
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        let now = self.now();
        let mut dead = Vec::new();
        let mut requeued = false;
        let out = {
            let mut state = self.lock();
            let out = batch
                .into_iter()
                .map(|(lease, transition)| {
                    requeued |=
                        matches!(transition, Transition::Retry { .. } | Transition::Release { .. });
                    state
                        .settle(&lease, transition, now, &mut dead)
                        .map_err(|()| LeaseLost { job: lease.job })
                })
                .collect();
            self.bury(&mut state, dead, now);
            // A chain's next link or a batch callback pushed on the way.
            requeued |= std::mem::take(&mut state.follow_pushed);
            out
        };
        if requeued {
            self.inner.pushed.notify_waiters();
        }
        Ok(out)
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        let now = self.now();
        Ok(self.lock().size(queue, now))
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        Ok(self.lock().peek(queue, limit))
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        let now = self.now();
        let cleared = self.lock().clear(queue, now);
        // Callbacks of the batches it finished may be waiting now.
        self.inner.pushed.notify_waiters();
        Ok(cleared)
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        crate::job::check_queue_name(queue)?;
        self.lock().queue(queue).paused = paused;
        if !paused {
            self.inner.pushed.notify_waiters();
        }
        Ok(())
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        crate::job::check_queue_name(queue)?;
        if let Some(capacity) = capacity {
            config::at_least("capacity", capacity, 1)?;
        }
        self.lock().queue(queue).capacity = capacity;
        Ok(())
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        Ok(self.lock().queues.keys().cloned().collect())
    }

    async fn wait(&self, _queues: &[String], timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.pushed.notified()).await;
    }

    fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    async fn paused_queues(&self, queues: &[String]) -> Result<Vec<bool>, QueueError> {
        let state = self.lock();
        Ok(queues.iter().map(|q| state.queues.get(q).is_some_and(|q| q.paused)).collect())
    }

    async fn record_worker(&self, beat: &WorkerBeat) -> Result<(), QueueError> {
        self.inner.workers.record(beat, self.now());
        Ok(())
    }

    async fn remove_worker(&self, id: &str) -> Result<bool, QueueError> {
        Ok(self.inner.workers.remove(id))
    }

    async fn workers(&self) -> Result<Vec<WorkerBeat>, QueueError> {
        Ok(self.inner.workers.list(self.now()))
    }
}

/// Why a push is refused.
enum Refusal {
    Duplicate(JobId),
    Full(String, u64),
}

impl Refusal {
    fn into_error(self, jobs: Vec<Pushed>) -> PushError {
        match self {
            Self::Duplicate(id) => PushError::Duplicate { id, jobs },
            Self::Full(queue, capacity) => PushError::Full { queue, capacity, jobs },
        }
    }
}

/// Whether `state` takes `jobs`: no id stored already or twice, no bounded
/// queue past its bound.
fn check_push(state: &State, jobs: &[Pushed]) -> Result<(), Refusal> {
    let mut added: HashMap<&str, u64> = HashMap::new();
    let mut ids = HashSet::with_capacity(jobs.len());
    for job in jobs {
        let id = job.envelope.id;
        if !ids.insert(id) || state.jobs.contains_key(&id) || state.failed.by_id.contains_key(&id) {
            return Err(Refusal::Duplicate(id));
        }
        *added.entry(job.envelope.queue.as_str()).or_default() += 1;
    }
    for (name, count) in &added {
        if let Some(queue) = state.queues.get(*name)
            && let Some(capacity) = queue.capacity
            && queue.depth() + count > capacity
        {
            return Err(Refusal::Full((*name).to_owned(), capacity));
        }
    }
    Ok(())
}

impl FailedStore for MemoryQueue {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        let state = self.lock();
        Ok(state
            .failed
            .by_id
            .values()
            .filter(|job| query.matches(job))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        Ok(self.lock().failed.by_id.get(&id).cloned())
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        let state = self.lock();
        Ok(match queue {
            None => state.failed.by_id.len() as u64,
            Some(queue) => {
                state.failed.by_id.values().filter(|job| job.envelope.queue == queue).count() as u64
            }
        })
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        let now = self.now();
        let retried = {
            let mut state = self.lock();
            let ids: Vec<JobId> = state
                .failed
                .by_id
                .values()
                .filter(|job| selection.selects(job))
                .map(|job| job.envelope.id)
                .collect();
            for id in &ids {
                if let Some(job) = state.failed.remove(*id) {
                    state.revive(job, now);
                }
            }
            ids
        };
        if !retried.is_empty() {
            self.inner.pushed.notify_waiters();
        }
        Ok(retried)
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        let mut state = self.lock();
        let ids: Vec<JobId> = state
            .failed
            .by_id
            .values()
            .filter(|job| selection.selects(job))
            .map(|job| job.envelope.id)
            .collect();
        for id in &ids {
            state.failed.remove(*id);
        }
        Ok(ids.len() as u64)
    }
}
