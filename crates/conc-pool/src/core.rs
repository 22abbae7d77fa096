//! What both pools share besides the queue: per-worker slots (sharded
//! counters, the queue-wait histogram, the running task's start time), the
//! pool-wide cold counters and the clock.

use std::time::{Duration, Instant};

use conc_core::time::{Clock, CoarseClock};

use crate::Rejection;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::metrics::{Health, PoolMetrics, StuckWorker};
use crate::queue::Queue;

/// Queue-wait histogram buckets: bucket `i` counts waits in `[2^i, 2^(i+1))` ns
/// (bucket 0 also holds zero waits); the last bucket holds everything longer.
pub(crate) const WAIT_BUCKETS: usize = 40;

/// How a task ended, as a worker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Panicked,
    Cancelled,
    TimedOut,
}

/// One worker's counters, on its own cache lines. Only the worker writes
/// them (plain load + store, no locked instruction); readers sum the slots.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct WorkerSlot {
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    timed_out: AtomicU64,
    /// Nanoseconds (on the pool clock, plus one) at which the running task
    /// started; 0 when the worker is idle.
    running_since: AtomicU64,
    /// 1 while a worker owns the slot; 2 once that worker, stuck, was
    /// replaced (it leaves when its task ends); 0 when free.
    alive: AtomicU64,
    waits: [AtomicU64; WAIT_BUCKETS],
}

fn bump(counter: &AtomicU64) {
    // Single writer: no read-modify-write instruction needed.
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl WorkerSlot {
    pub(crate) fn new() -> Self {
        Self {
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
            alive: AtomicU64::new(0),
            waits: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn set_alive(&self, alive: bool) {
        self.alive.store(u64::from(alive), Ordering::Release);
    }

    /// Claims a free slot for a new worker; whether it was free.
    pub(crate) fn try_claim(&self) -> bool {
        self.alive.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) == 1
    }

    /// Whether this slot's worker was replaced as stuck and must leave once
    /// its task ends.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.alive.load(Ordering::Acquire) == 2
    }

    /// Marks a live, stuck worker as replaced; whether this call did.
    fn abandon(&self) -> bool {
        self.alive.compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Tasks this worker completed.
    #[cfg(all(test, conc_loom))]
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether the worker is running a task now.
    #[cfg(all(test, conc_loom))]
    pub(crate) fn is_busy(&self) -> bool {
        self.running_since.load(Ordering::Relaxed) != 0
    }

    /// Records the start of a task queued at `enqueued`, at `now`.
    pub(crate) fn start(&self, enqueued: u64, now: u64) {
        let wait = now.saturating_sub(enqueued);
        let bucket = if wait == 0 { 0 } else { wait.ilog2() as usize };
        bump(&self.waits[bucket.min(WAIT_BUCKETS - 1)]);
        self.running_since.store(now + 1, Ordering::Relaxed);
    }

    /// Records the end of the running task.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.running_since.store(0, Ordering::Relaxed);
        self.count(outcome);
    }

    /// Counts an outcome of a task that did not run on this worker's loop
    /// (handed back and abandoned, run by the caller).
    pub(crate) fn count(&self, outcome: Outcome) {
        bump(match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Panicked => &self.panicked,
            Outcome::Cancelled => &self.cancelled,
            Outcome::TimedOut => &self.timed_out,
        });
    }
}

/// Shared state of one pool.
#[derive(Debug)]
pub(crate) struct Core<J> {
    pub(crate) queue: Queue<J>,
    /// One slot per worker that can exist, plus one (the last) for outcomes
    /// counted outside the workers; written there with atomic adds.
    slots: Box<[WorkerSlot]>,
    pub(crate) rejection: Rejection,
    pub(crate) name: String,
    pub(crate) stuck_after: Option<Duration>,
    rejected: AtomicU64,
    evicted: AtomicU64,
    caller_ran: AtomicU64,
    clock: &'static CoarseClock,
    origin: Instant,
    /// When `abandon_stuck` last scanned the slots (pool clock nanoseconds).
    last_stuck_check: AtomicU64,
}

/// Builder settings shared by both pools.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    /// The most workers that can exist at once (equal to `workers` for a
    /// fixed pool).
    pub(crate) max_workers: usize,
    pub(crate) capacity: Option<usize>,
    pub(crate) aging_step: Option<u64>,
    pub(crate) rejection: Rejection,
    pub(crate) name: String,
    pub(crate) stuck_after: Option<Duration>,
}

impl<J> Core<J> {
    pub(crate) fn new(settings: &Settings) -> Self {
        let clock = CoarseClock::global();
        Self {
            queue: Queue::new(settings.capacity, settings.aging_step),
            // `max_workers` live workers, as many replaced stuck ones still
            // finishing, and the shared slot.
            slots: (0..=2 * settings.max_workers).map(|_| WorkerSlot::new()).collect(),
            last_stuck_check: AtomicU64::new(0),
            rejection: settings.rejection,
            name: settings.name.clone(),
            stuck_after: settings.stuck_after,
            rejected: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            caller_ran: AtomicU64::new(0),
            clock,
            origin: clock.origin(),
        }
    }

    /// Now, in nanoseconds since the pool clock's origin (coarse: one read of
    /// a cached value, no system call).
    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.clock.now().saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX)
    }

    /// Worker slots (the last, shared one excluded).
    pub(crate) fn worker_slots(&self) -> usize {
        self.slots.len() - 1
    }

    pub(crate) fn slot(&self, worker: usize) -> &WorkerSlot {
        &self.slots[worker]
    }

    /// Counts an outcome from outside the workers (shared slot, atomic add).
    pub(crate) fn count_outside(&self, outcome: Outcome) {
        let shared = &self.slots[self.slots.len() - 1];
        let counter = match outcome {
            Outcome::Completed => &shared.completed,
            Outcome::Panicked => &shared.panicked,
            Outcome::Cancelled => &shared.cancelled,
            Outcome::TimedOut => &shared.timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        // A static key without labels: a refusal allocates nothing.
        metrics::counter!(conc_core::metrics::POOL_TASKS_REJECTED).increment(1);
    }

    pub(crate) fn count_evicted(&self) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_caller_ran(&self) {
        self.caller_ran.fetch_add(1, Ordering::Relaxed);
    }

    /// The pool's metrics now.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let now = self.now_nanos();
        let mut m = PoolMetrics {
            queued: self.queue.len(),
            capacity: self.queue.capacity(),
            submitted: self.queue.pushed(),
            rejected: self.rejected.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            caller_ran: self.caller_ran.load(Ordering::Relaxed),
            ..PoolMetrics::default()
        };
        let mut waits = [0_u64; WAIT_BUCKETS];
        for slot in &*self.slots {
            m.completed += slot.completed.load(Ordering::Relaxed);
            m.panicked += slot.panicked.load(Ordering::Relaxed);
            m.cancelled += slot.cancelled.load(Ordering::Relaxed);
            m.timed_out += slot.timed_out.load(Ordering::Relaxed);
            if slot.is_alive() {
                m.workers += 1;
                let since = slot.running_since.load(Ordering::Relaxed);
                if since != 0 {
                    m.busy += 1;
                    if self.stuck_after.is_some_and(|limit| {
                        Duration::from_nanos(now.saturating_sub(since - 1)) >= limit
                    }) {
                        m.stuck += 1;
                    }
                }
            }
            for (total, bucket) in waits.iter_mut().zip(&slot.waits) {
                *total += bucket.load(Ordering::Relaxed);
            }
        }
        m.idle = m.workers - m.busy;
        m.wait_p50 = percentile(&waits, 0.50);
        m.wait_p99 = percentile(&waits, 0.99);
        m
    }

    /// Resets counters and the wait histogram; gauges keep their values.
    pub(crate) fn reset_metrics(&self) {
        for slot in &*self.slots {
            for counter in [&slot.completed, &slot.panicked, &slot.cancelled, &slot.timed_out] {
                counter.store(0, Ordering::Relaxed);
            }
            for bucket in &slot.waits {
                bucket.store(0, Ordering::Relaxed);
            }
        }
        self.rejected.store(0, Ordering::Relaxed);
        self.evicted.store(0, Ordering::Relaxed);
        self.caller_ran.store(0, Ordering::Relaxed);
    }

    /// Marks workers stuck past the threshold as replaced and returns how
    /// many; the caller starts that many fresh workers. Scans at most every
    /// quarter threshold (one clock read and a compare otherwise); does
    /// nothing without a threshold.
    pub(crate) fn abandon_stuck(&self) -> usize {
        let Some(limit) = self.stuck_after else { return 0 };
        let now = self.now_nanos();
        let interval = u64::try_from((limit / 4).as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_stuck_check.load(Ordering::Relaxed);
        if now.saturating_sub(last) < interval
            || self
                .last_stuck_check
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return 0;
        }
        let mut abandoned = 0;
        for slot in &self.slots[..self.slots.len() - 1] {
            let since = slot.running_since.load(Ordering::Relaxed);
            if since != 0
                && Duration::from_nanos(now.saturating_sub(since - 1)) >= limit
                && slot.abandon()
            {
                abandoned += 1;
            }
        }
        abandoned
    }

    /// Workers running the same task for at least the stuck threshold.
    pub(crate) fn health(&self) -> Health {
        let now = self.now_nanos();
        let mut stuck = Vec::new();
        if let Some(limit) = self.stuck_after {
            for (worker, slot) in self.slots[..self.slots.len() - 1].iter().enumerate() {
                let since = slot.running_since.load(Ordering::Relaxed);
                if (slot.is_alive() || slot.is_abandoned()) && since != 0 {
                    let running_for = Duration::from_nanos(now.saturating_sub(since - 1));
                    if running_for >= limit {
                        stuck.push(StuckWorker { worker, running_for });
                    }
                }
            }
        }
        Health { stuck }
    }
}

/// The upper bound of the bucket holding the `q` quantile.
fn percentile(buckets: &[u64; WAIT_BUCKETS], q: f64) -> Duration {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return if i == 0 { Duration::ZERO } else { Duration::from_nanos(1_u64 << (i + 1)) };
        }
    }
    Duration::from_nanos(1_u64 << WAIT_BUCKETS)
}
