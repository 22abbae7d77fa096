//! A worker's metrics snapshot and health report.

use std::time::Duration;

use conc_core::metrics::{self as names, MetricEntry, MetricValue, MetricsSnapshot};

use super::event::WorkerStop;

/// Runtime of one job type: how many attempts ran and their p50 and p99.
///
/// # Examples
///
/// ```
/// use conc_bus::JobStats;
///
/// let stats = JobStats::default();
/// assert_eq!(stats.count, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobStats {
    /// The job name, or the queue name for waits.
    pub key: String,
    /// How many were measured since the start or the last reset.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

/// What a worker has done since it was built (or its metrics were reset), and
/// what it holds now.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, MemoryQueue, Worker};
/// use conc_core::metrics::MetricsSource;
///
/// let worker = Worker::builder(MemoryQueue::new(), JobHandlers::new()).build()?;
/// let metrics = worker.metrics();
/// assert_eq!(metrics.processed, 0);
/// assert!(metrics.runtimes.is_empty());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Jobs that succeeded and were acknowledged.
    pub processed: u64,
    /// Attempts that failed (errors, panics, timeouts, undecodable payloads).
    pub failed: u64,
    /// Failed attempts whose job went back for another attempt.
    pub retried: u64,
    /// Jobs this worker moved to the failed store (after an attempt, or found
    /// out of attempts at reservation).
    pub dead: u64,
    /// Jobs put back by their handler (not failures).
    pub released: u64,
    /// Attempts abandoned because their lease was lost.
    pub lease_lost: u64,
    /// Backend calls that failed.
    pub backend_errors: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs reserved and waiting for a free slot now.
    pub prefetched: u64,
    /// Jobs processed in the last minute.
    pub processed_last_minute: u64,
    /// Attempts failed in the last minute.
    pub failed_last_minute: u64,
    /// Runtime of successful and failed attempts, per job name, sorted.
    pub runtimes: Vec<JobStats>,
    /// Time from available to started, per queue, sorted.
    pub waits: Vec<JobStats>,
}

impl MetricsSnapshot for WorkerMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(names::BUS_JOBS_PROCESSED, MetricValue::Count(self.processed)),
            MetricEntry::new(names::BUS_JOBS_FAILED, MetricValue::Count(self.failed)),
            MetricEntry::new(names::BUS_JOBS_RETRIED, MetricValue::Count(self.retried)),
            MetricEntry::new(names::BUS_JOBS_DEAD, MetricValue::Count(self.dead)),
            MetricEntry::new("released", MetricValue::Count(self.released)),
            MetricEntry::new("lease_lost", MetricValue::Count(self.lease_lost)),
            MetricEntry::new("backend_errors", MetricValue::Count(self.backend_errors)),
            MetricEntry::new("running", MetricValue::Gauge(self.running as f64)),
            MetricEntry::new("prefetched", MetricValue::Gauge(self.prefetched as f64)),
            MetricEntry::new(
                "processed_last_minute",
                MetricValue::Count(self.processed_last_minute),
            ),
            MetricEntry::new("failed_last_minute", MetricValue::Count(self.failed_last_minute)),
        ]
    }
}

/// Where a worker is in its life.
///
/// # Examples
///
/// ```
/// use conc_bus::WorkerState;
///
/// assert_ne!(WorkerState::Running, WorkerState::Idle);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// Built, not started.
    Idle,
    /// Taking and running jobs.
    Running,
    /// Finishing its jobs; takes no new ones.
    Stopping,
    /// Stopped, for this reason.
    Stopped(WorkerStop),
}

/// A worker's health, for a readiness probe: is it running, can it reach its
/// backend, when did it last, and how many leases does it hold.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, MemoryQueue, Worker};
///
/// let worker = Worker::builder(MemoryQueue::new(), JobHandlers::new()).build()?;
/// let health = worker.health();
/// assert!(!health.is_ready(), "not started yet");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerHealth {
    /// Where it is in its life.
    pub state: WorkerState,
    /// Whether its last backend call succeeded.
    pub backend_reachable: bool,
    /// Time since its last successful backend call (its heartbeat).
    pub since_last_contact: Option<Duration>,
    /// Leases it holds (running and prefetched jobs).
    pub leases_held: usize,
    /// The last backend error, while the backend is unreachable.
    pub last_error: Option<String>,
}

impl WorkerHealth {
    /// Whether it is running and reaching its backend: what a readiness probe
    /// should answer.
    pub fn is_ready(&self) -> bool {
        self.state == WorkerState::Running && self.backend_reachable
    }
}
