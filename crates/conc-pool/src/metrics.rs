//! Metrics snapshots, health reports, and the instruments a pool emits
//! through the `metrics` facade.

use std::fmt;
use std::time::Duration;

use conc_core::metrics::{self as names, MetricEntry, MetricValue, MetricsSnapshot};
use metrics::{Counter, Gauge, Histogram};

use crate::core::Outcome;

/// A snapshot of a pool's counters and gauges.
///
/// Counters count since the pool was built (or since `reset_metrics`). At a
/// quiescent moment, `submitted` equals the sum of `completed`, `panicked`,
/// `cancelled`, `timed_out`, `evicted`, `queued` and `busy`, plus the tasks
/// handed back by a shutdown. A worker counts a task just after its handle
/// resolves, so a count read right after a `join` may lag by that task;
/// after a shutdown the counts are final.
///
/// Queue waits are read on the pool's clock (by default the coarse clock, 1 ms
/// resolution) and reported as the upper bound of a power-of-two bucket.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(2).build()?;
/// assert_eq!(pool.metrics().workers, 2);
/// pool.submit(|| ()).unwrap().join()?;
/// assert!(pool.shutdown(std::time::Duration::from_secs(5)).is_clean());
/// let m = pool.metrics();
/// assert_eq!((m.workers, m.submitted, m.completed), (0, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a metrics snapshot does nothing unless read"]
pub struct PoolMetrics {
    /// Workers alive.
    pub workers: usize,
    /// Workers running a task.
    pub busy: usize,
    /// Workers alive and not running a task.
    pub idle: usize,
    /// Workers running the same task for longer than the stuck threshold.
    pub stuck: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// The queue's capacity, `None` when unbounded.
    pub capacity: Option<usize>,
    /// Tasks accepted into the queue.
    pub submitted: u64,
    /// Idle workers woken by a submission. A pool whose workers are all busy
    /// takes new work without waking anyone, so this stays flat under load.
    pub wake_ups: u64,
    /// Tasks that finished with an output.
    pub completed: u64,
    /// Tasks that panicked (the panic became an error in their handle).
    pub panicked: u64,
    /// Tasks cancelled before they finished.
    pub cancelled: u64,
    /// Tasks whose deadline passed.
    pub timed_out: u64,
    /// Tasks refused and handed back (full queue, shut down, blocking timeout).
    pub rejected: u64,
    /// Tasks evicted from a full queue by the drop-oldest policy.
    pub evicted: u64,
    /// Tasks the caller-runs policy ran on the submitter.
    pub caller_ran: u64,
    /// Workers added by scaling (automatic or manual).
    pub scaled_up: u64,
    /// Workers retired by scaling (idle past the keep-alive, or manual).
    pub scaled_down: u64,
    /// Stuck workers (past `stuck_after`) replaced by fresh ones; the stuck
    /// one leaves when its task ends.
    pub replaced: u64,
    /// Median time from submission to start.
    pub wait_p50: Duration,
    /// 99th percentile of the time from submission to start.
    pub wait_p99: Duration,
}

impl PoolMetrics {
    /// Tasks that finished without an output: panicked, cancelled or timed out.
    pub fn failed(&self) -> u64 {
        self.panicked + self.cancelled + self.timed_out
    }
}

impl MetricsSnapshot for PoolMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        use conc_core::metrics as m;
        let gauge = |v: usize| MetricValue::Gauge(v as f64);
        vec![
            MetricEntry::new(m::POOL_WORKERS_TOTAL, gauge(self.workers)),
            MetricEntry::new(m::POOL_WORKERS_BUSY, gauge(self.busy)),
            MetricEntry::new(m::POOL_QUEUE_DEPTH, gauge(self.queued)),
            MetricEntry::new(m::POOL_TASKS_SUBMITTED, MetricValue::Count(self.submitted)),
            MetricEntry::new(m::POOL_TASKS_COMPLETED, MetricValue::Count(self.completed)),
            MetricEntry::new(m::POOL_TASKS_FAILED, MetricValue::Count(self.failed())),
            MetricEntry::new(m::POOL_TASKS_PANICKED, MetricValue::Count(self.panicked)),
            MetricEntry::new(m::POOL_TASKS_CANCELLED, MetricValue::Count(self.cancelled)),
            MetricEntry::new(m::POOL_TASKS_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new("wait_p50", MetricValue::Duration(self.wait_p50)),
            MetricEntry::new("wait_p99", MetricValue::Duration(self.wait_p99)),
        ]
    }
}

/// A pool's health: the workers stuck on one task for longer than the
/// builder's `stuck_after` threshold.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(1).build()?;
/// assert!(pool.health().is_healthy());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a health report does nothing unless read"]
pub struct Health {
    /// The stuck workers, by worker index.
    pub stuck: Vec<StuckWorker>,
}

impl Health {
    /// Whether no worker is stuck.
    pub fn is_healthy(&self) -> bool {
        self.stuck.is_empty()
    }
}

/// A worker running one task for longer than the stuck threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StuckWorker {
    /// The worker's index.
    pub worker: usize,
    /// How long its current task has been running.
    pub running_for: Duration,
}

/// The handles a pool emits through, registered once when the pool is built
/// (labelled `pool` = its name), so emitting allocates nothing. Install the
/// recorder before building the pool.
pub(crate) struct Instruments {
    pub(crate) submitted: Counter,
    completed: Counter,
    failed: Counter,
    panicked: Counter,
    cancelled: Counter,
    pub(crate) rejected: Counter,
    /// Tasks waiting: up on a push, down on a start or a drain.
    pub(crate) depth: Gauge,
    busy: Gauge,
    /// Workers counted live: up when one starts, down when one leaves or is
    /// replaced as stuck.
    pub(crate) workers: Gauge,
    pub(crate) scaled_up: Counter,
    pub(crate) scaled_down: Counter,
    wait: Histogram,
    duration: Histogram,
}

fn seconds(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64()
}

impl Instruments {
    pub(crate) fn new(pool: &str) -> Self {
        Self {
            submitted: metrics::counter!(names::POOL_TASKS_SUBMITTED, "pool" => pool.to_owned()),
            completed: metrics::counter!(names::POOL_TASKS_COMPLETED, "pool" => pool.to_owned()),
            failed: metrics::counter!(names::POOL_TASKS_FAILED, "pool" => pool.to_owned()),
            panicked: metrics::counter!(names::POOL_TASKS_PANICKED, "pool" => pool.to_owned()),
            cancelled: metrics::counter!(names::POOL_TASKS_CANCELLED, "pool" => pool.to_owned()),
            rejected: metrics::counter!(names::POOL_TASKS_REJECTED, "pool" => pool.to_owned()),
            depth: metrics::gauge!(names::POOL_QUEUE_DEPTH, "pool" => pool.to_owned()),
            busy: metrics::gauge!(names::POOL_WORKERS_BUSY, "pool" => pool.to_owned()),
            workers: metrics::gauge!(names::POOL_WORKERS_TOTAL, "pool" => pool.to_owned()),
            scaled_up: metrics::counter!(
                names::POOL_SCALE_EVENTS,
                "pool" => pool.to_owned(),
                "direction" => "up"
            ),
            scaled_down: metrics::counter!(
                names::POOL_SCALE_EVENTS,
                "pool" => pool.to_owned(),
                "direction" => "down"
            ),
            wait: metrics::histogram!(names::POOL_TASK_WAIT, "pool" => pool.to_owned()),
            duration: metrics::histogram!(names::POOL_TASK_DURATION, "pool" => pool.to_owned()),
        }
    }

    /// A worker took a task that waited `wait` nanoseconds.
    pub(crate) fn started(&self, wait: u64) {
        self.depth.decrement(1.0);
        self.busy.increment(1.0);
        self.wait.record(seconds(wait));
    }

    /// A worker finished a task that ran `ran` nanoseconds.
    pub(crate) fn finished(&self, outcome: Outcome, ran: u64) {
        self.busy.decrement(1.0);
        self.duration.record(seconds(ran));
        self.outcome(outcome);
    }

    /// A task ended this way (on a worker or outside).
    pub(crate) fn outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Completed => self.completed.increment(1),
            Outcome::Panicked => {
                self.panicked.increment(1);
                self.failed.increment(1);
            }
            Outcome::Cancelled => {
                self.cancelled.increment(1);
                self.failed.increment(1);
            }
            Outcome::TimedOut => self.failed.increment(1),
        }
    }

    /// A worker that was running a task stopped counting as busy without
    /// finishing it (cut off by a shutdown).
    pub(crate) fn abandoned_busy(&self) {
        self.busy.decrement(1.0);
    }
}

impl fmt::Debug for Instruments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instruments").finish_non_exhaustive()
    }
}
