//! Metrics snapshots and health reports.

use std::time::Duration;

use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot};

/// A snapshot of a pool's counters and gauges.
///
/// Counters count since the pool was built (or since `reset_metrics`). At a
/// quiescent moment, `submitted` equals the sum of `completed`, `panicked`,
/// `cancelled`, `timed_out`, `evicted`, `queued` and `busy`, plus the tasks
/// handed back by a shutdown. A worker counts a task just after its handle
/// resolves, so a count read right after a `join` may lag by that task;
/// after a shutdown the counts are final.
///
/// Queue waits are read on the coarse clock (1 ms resolution) and reported as
/// the upper bound of a power-of-two bucket.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(2).build()?;
/// assert_eq!(pool.metrics().workers, 2);
/// pool.submit(|| ()).unwrap().join()?;
/// pool.shutdown(std::time::Duration::from_secs(5));
/// let m = pool.metrics();
/// assert_eq!((m.workers, m.submitted, m.completed), (0, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
