//! The pool's own counters and their [`MetricsSource`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};

use super::ProcessPool;

/// Counters of a pool, shared by its clones.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) started: AtomicU64,
    pub(super) succeeded: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) running: AtomicU64,
}

/// Takes a job off the running gauge when its run ends or is dropped.
pub(super) struct RunningGuard<'a>(pub(super) &'a Counters);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of a [`ProcessPool`]'s counters, over every run of the pool
/// and its clones.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::MetricsSource;
/// use conc_process::{Process, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = ProcessPool::builder().build()?;
/// let _results = pool.run([("ok", Process::new("true")), ("bad", Process::new("false"))]).await?;
/// let metrics = pool.metrics();
/// assert_eq!((metrics.started, metrics.succeeded, metrics.failed, metrics.running), (2, 1, 1, 0));
/// pool.reset_metrics();
/// assert_eq!(pool.metrics().started, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct ProcessPoolMetrics {
    /// Jobs started.
    pub started: u64,
    /// Jobs that exited with code 0.
    pub succeeded: u64,
    /// Jobs that failed: non-zero exit, signal, timeout, or a spawn error.
    pub failed: u64,
    /// Jobs cancelled by fail-fast or a stop, before or while running.
    pub cancelled: u64,
    /// Jobs running now.
    pub running: u64,
}

impl MetricsSnapshot for ProcessPoolMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("started", MetricValue::Count(self.started)),
            MetricEntry::new("succeeded", MetricValue::Count(self.succeeded)),
            MetricEntry::new("failed", MetricValue::Count(self.failed)),
            MetricEntry::new("cancelled", MetricValue::Count(self.cancelled)),
            MetricEntry::new("running", MetricValue::Gauge(self.running as f64)),
        ]
    }
}

impl MetricsSource for ProcessPool {
    type Snapshot = ProcessPoolMetrics;

    fn metrics(&self) -> ProcessPoolMetrics {
        let counters = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProcessPoolMetrics {
            started: load(&counters.started),
            succeeded: load(&counters.succeeded),
            failed: load(&counters.failed),
            cancelled: load(&counters.cancelled),
            running: load(&counters.running),
        }
    }

    /// Zeroes the counts; `running` describes the present and keeps its value.
    fn reset_metrics(&self) {
        let counters = &self.shared.counters;
        for counter in
            [&counters.started, &counters.succeeded, &counters.failed, &counters.cancelled]
        {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
