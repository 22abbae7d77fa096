//! What both pools share besides the queue: per-worker slots (sharded
//! counters, the queue-wait histogram, the running task's start time), the
//! pool-wide cold counters, the instruments it emits through and the clock.

mod slots;

use std::sync::Arc;
use std::time::Duration;

use conc_core::time::{Clock, Timeline, saturating_nanos};

use crate::Rejection;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::metrics::{Health, Instruments, PoolMetrics, StuckWorker};
use crate::queue::Queue;
pub(crate) use slots::{Outcome, SlotTable, WAIT_BUCKETS, WorkerSlot};

/// The clock a pool reads, as one monotonic timeline.
pub(crate) type PoolTimeline = Arc<Timeline<Arc<dyn Clock>>>;

/// Shared state of one pool.
#[derive(Debug)]
pub(crate) struct Core<J> {
    pub(crate) queue: Queue<J>,
    pub(crate) slots: SlotTable,
    pub(crate) rejection: Rejection,
    pub(crate) name: String,
    pub(crate) stuck_after: Option<Duration>,
    rejected: AtomicU64,
    evicted: AtomicU64,
    caller_ran: AtomicU64,
    pub(crate) timeline: PoolTimeline,
    /// When `stuck` last scanned the slots (timeline nanoseconds).
    last_stuck_check: AtomicU64,
    pub(crate) instruments: Instruments,
}

/// What a core is made from (validated builder settings).
#[derive(Debug)]
pub(crate) struct CoreSettings {
    pub(crate) capacity: Option<usize>,
    pub(crate) aging_step: Option<u64>,
    pub(crate) rejection: Rejection,
    pub(crate) name: String,
    pub(crate) stuck_after: Option<Duration>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Worker slots that may exist at once.
    pub(crate) slots: usize,
}

impl<J> Core<J> {
    pub(crate) fn new(settings: CoreSettings) -> Self {
        let queue = Queue::new(settings.capacity, settings.aging_step);
        Self {
            // Eviction takes the oldest task of the lowest priority: the
            // ordered lane knows which that is.
            queue: if matches!(settings.rejection, Rejection::DropOldest) {
                queue.ordered_only()
            } else {
                queue
            },
            slots: SlotTable::new(settings.slots),
            last_stuck_check: AtomicU64::new(0),
            rejection: settings.rejection,
            instruments: Instruments::new(&settings.name),
            name: settings.name,
            stuck_after: settings.stuck_after,
            rejected: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            caller_ran: AtomicU64::new(0),
            timeline: Arc::new(Timeline::new(settings.clock)),
        }
    }

    /// Now, in nanoseconds on the pool's timeline (with the default coarse
    /// clock one atomic load, no system call).
    pub(crate) fn now(&self) -> u64 {
        self.timeline.now()
    }

    pub(crate) fn slot(&self, worker: usize) -> &WorkerSlot {
        self.slots.get(worker)
    }

    /// Records that worker `slot` starts a task queued at `enqueued`, at `now`.
    pub(crate) fn start(&self, slot: &WorkerSlot, enqueued: u64, now: u64) {
        let wait = slot.start(enqueued, now);
        self.instruments.started(wait);
    }

    /// Records that worker `slot` finished the task it started at `started`;
    /// the time it finished.
    pub(crate) fn finish(&self, slot: &WorkerSlot, outcome: Outcome, started: u64) -> u64 {
        let now = self.now();
        slot.finish(outcome);
        self.instruments.finished(outcome, now.saturating_sub(started));
        now
    }

    /// Counts an outcome from outside the workers (shared slot, atomic add).
    pub(crate) fn count_outside(&self, outcome: Outcome) {
        self.slots.shared.counter(outcome).fetch_add(1, Ordering::Relaxed);
        self.instruments.outcome(outcome);
    }

    pub(crate) fn count_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.instruments.rejected.increment(1);
    }

    pub(crate) fn count_evicted(&self) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_caller_ran(&self) {
        self.caller_ran.fetch_add(1, Ordering::Relaxed);
    }

    /// The pool's metrics now (the scaling counters are the engine's).
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let now = self.now();
        let mut m = PoolMetrics {
            queued: self.queue.len(),
            capacity: self.queue.capacity(),
            submitted: self.queue.pushed(),
            wake_ups: self.queue.wake_ups(),
            rejected: self.rejected.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            caller_ran: self.caller_ran.load(Ordering::Relaxed),
            ..PoolMetrics::default()
        };
        let mut waits = [0_u64; WAIT_BUCKETS];
        let shared = std::iter::once(&self.slots.shared);
        for slot in self.slots.iter().map(|(_, slot)| slot).chain(shared) {
            m.completed += slot.completed.load(Ordering::Relaxed);
            m.panicked += slot.panicked.load(Ordering::Relaxed);
            m.cancelled += slot.cancelled.load(Ordering::Relaxed);
            m.timed_out += slot.timed_out.load(Ordering::Relaxed);
            if slot.is_alive() {
                m.workers += 1;
                let since = slot.running_since();
                if since != 0 {
                    m.busy += 1;
                    if self.is_stuck(since, now) {
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
        let shared = std::iter::once(&self.slots.shared);
        for slot in self.slots.iter().map(|(_, slot)| slot).chain(shared) {
            for counter in [&slot.completed, &slot.panicked, &slot.cancelled, &slot.timed_out] {
                counter.store(0, Ordering::Relaxed);
            }
            for bucket in &slot.waits {
                bucket.store(0, Ordering::Relaxed);
            }
        }
        self.queue.reset_counts();
        self.rejected.store(0, Ordering::Relaxed);
        self.evicted.store(0, Ordering::Relaxed);
        self.caller_ran.store(0, Ordering::Relaxed);
    }

    /// Whether a task running since `since` (plus one) is stuck at `now`.
    fn is_stuck(&self, since: u64, now: u64) -> bool {
        self.stuck_after
            .is_some_and(|limit| now.saturating_sub(since - 1) >= saturating_nanos(limit))
    }

    /// The live workers stuck past the threshold at `now`. Scans at most
    /// every quarter threshold (one compare otherwise) and never without a
    /// threshold, so it is cheap to call between tasks.
    pub(crate) fn stuck(&self, now: u64) -> Vec<usize> {
        let Some(limit) = self.stuck_after else { return Vec::new() };
        let interval = saturating_nanos(limit / 4);
        let last = self.last_stuck_check.load(Ordering::Relaxed);
        if now.saturating_sub(last) < interval
            || self
                .last_stuck_check
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return Vec::new();
        }
        self.slots
            .iter()
            .filter(|(_, slot)| {
                let since = slot.running_since();
                slot.is_alive() && since != 0 && self.is_stuck(since, now)
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// Workers running a task now, replaced stuck ones included.
    pub(crate) fn running(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, slot)| {
                (slot.is_alive() || slot.is_abandoned()) && slot.running_since() != 0
            })
            .count()
    }

    /// Workers running the same task for at least the stuck threshold.
    pub(crate) fn health(&self) -> Health {
        let now = self.now();
        let mut stuck = Vec::new();
        if let Some(limit) = self.stuck_after {
            for (worker, slot) in self.slots.iter() {
                let since = slot.running_since();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use conc_core::time::ManualClock;

    use super::{Core, CoreSettings};
    use crate::Rejection;

    /// A stuck worker is looked for at most every quarter threshold: one
    /// compare between scans, never a walk over the slots.
    #[test]
    fn the_stuck_scan_runs_at_most_every_quarter_threshold() {
        let clock = ManualClock::new();
        let core = Core::<()>::new(CoreSettings {
            capacity: None,
            aging_step: None,
            rejection: Rejection::Reject,
            name: "scan".to_owned(),
            stuck_after: Some(Duration::from_millis(20)),
            clock: Arc::new(clock),
            slots: 2,
        });
        let worker = core.slots.claim().unwrap();
        core.slot(worker).start(0, 0);
        let ms = |n: u64| n * 1_000_000;
        assert_eq!(core.stuck(ms(20)), [worker], "the first scan finds it");
        assert!(core.stuck(ms(24)).is_empty(), "within 5 ms of the last scan: no scan");
        assert_eq!(core.stuck(ms(25)), [worker], "a quarter threshold later: scanned again");
        core.slot(worker).finish(super::Outcome::Completed);
        assert!(core.stuck(ms(30)).is_empty(), "an idle worker is never stuck");
    }
}
