//! Fan-out counters: each run's per-worker loads (for balancing and
//! [`FanOutStream::loads`](crate::FanOutStream::loads)), the fan-out's
//! counters across runs ([`FanOut::metrics`](crate::FanOut::metrics)) and the
//! `metrics` facade's counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use conc_core::metrics::{
    FAN_ITEMS_DEAD_LETTERED, FAN_ITEMS_DISPATCHED, FAN_ITEMS_FAILED, FAN_ITEMS_PROCESSED,
    FAN_ITEMS_RETRIED, MetricEntry, MetricValue, MetricsSnapshot,
};

/// One worker's load within one run, on its own cache lines so workers do
/// not share one.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkerStats {
    /// Items queued for it or running on it (moved once per batch).
    pub(crate) pending: AtomicUsize,
    /// Items it has finished, whatever their result.
    pub(crate) processed: AtomicU64,
}

/// One worker index's counters across every run of a fan-out.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    processed: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
}

/// The counters of a [`FanOut`](crate::FanOut) across its runs: one shard per
/// worker index, written once per batch by that worker, so no counter is
/// shared by every worker.
#[derive(Debug)]
pub(crate) struct FanStats {
    shards: Box<[Shard]>,
    dispatched: AtomicU64,
    skipped: AtomicU64,
}

impl FanStats {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            shards: (0..workers).map(|_| Shard::default()).collect(),
            dispatched: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    pub(crate) fn dispatched(&self, items: usize) {
        self.dispatched.fetch_add(items as u64, Relaxed);
    }

    pub(crate) fn skipped(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FanOutMetrics {
        let sum = |field: fn(&Shard) -> &AtomicU64| {
            self.shards.iter().map(|shard| field(shard).load(Relaxed)).sum()
        };
        FanOutMetrics {
            dispatched: self.dispatched.load(Relaxed),
            processed: sum(|s| &s.processed),
            failed: sum(|s| &s.failed),
            retried: sum(|s| &s.retried),
            dead_lettered: sum(|s| &s.dead_lettered),
            skipped: self.skipped.load(Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        for shard in &self.shards {
            for counter in [&shard.processed, &shard.failed, &shard.retried, &shard.dead_lettered] {
                counter.store(0, Relaxed);
            }
        }
        self.dispatched.store(0, Relaxed);
        self.skipped.store(0, Relaxed);
    }
}

/// The `metrics` facade's counters for one run, registered when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Facade {
    pub(crate) dispatched: metrics::Counter,
    processed: metrics::Counter,
    failed: metrics::Counter,
    retried: metrics::Counter,
    dead_lettered: metrics::Counter,
}

impl Facade {
    pub(crate) fn register() -> Self {
        Self {
            dispatched: metrics::counter!(FAN_ITEMS_DISPATCHED),
            processed: metrics::counter!(FAN_ITEMS_PROCESSED),
            failed: metrics::counter!(FAN_ITEMS_FAILED),
            retried: metrics::counter!(FAN_ITEMS_RETRIED),
            dead_lettered: metrics::counter!(FAN_ITEMS_DEAD_LETTERED),
        }
    }
}

/// Where one worker of one run records what it did.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) worker: usize,
    run: Arc<[WorkerStats]>,
    stats: Arc<FanStats>,
    facade: Facade,
}

impl Recorder {
    pub(crate) fn new(
        worker: usize,
        run: Arc<[WorkerStats]>,
        stats: Arc<FanStats>,
        facade: Facade,
    ) -> Self {
        Self { worker, run, stats, facade }
    }

    fn shard(&self) -> &Shard {
        &self.stats.shards[self.worker]
    }

    /// `done` items left the worker, `ok` of them with an output. Loads move
    /// once per batch, not once per item.
    pub(crate) fn finished(&self, done: usize, ok: usize) {
        let run = &self.run[self.worker];
        run.pending.fetch_sub(done, Relaxed);
        run.processed.fetch_add(done as u64, Relaxed);
        if ok > 0 {
            self.shard().processed.fetch_add(ok as u64, Relaxed);
            self.facade.processed.increment(ok as u64);
        }
    }

    /// An item failed its last attempt.
    pub(crate) fn failed(&self) {
        self.shard().failed.fetch_add(1, Relaxed);
        self.facade.failed.increment(1);
    }

    /// An item's attempt failed and it waits for another.
    pub(crate) fn retried(&self) {
        self.shard().retried.fetch_add(1, Relaxed);
        self.facade.retried.increment(1);
    }

    /// An item went to the dead letter sink.
    pub(crate) fn dead_lettered(&self) {
        self.shard().dead_lettered.fetch_add(1, Relaxed);
        self.facade.dead_lettered.increment(1);
    }
}

/// One worker's load, from [`FanOutStream::loads`](crate::FanOutStream::loads).
///
/// # Examples
///
/// ```
/// use conc_fan::FanOut;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let fan_out = FanOut::builder().workers(2).build(|n: u32| async move { Ok::<_, std::io::Error>(n) })?;
/// let mut out = fan_out.process_stream(futures::stream::iter(0..10));
/// while out.next().await.is_some() {}
/// let loads = out.loads();
/// assert_eq!(loads.iter().map(|load| load.processed).sum::<u64>(), 10);
/// assert!(loads.iter().all(|load| load.pending == 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct WorkerLoad {
    /// Items queued for it or running on it now (updated once per batch).
    pub pending: usize,
    /// Items it has finished, whatever their result.
    pub processed: u64,
}

impl WorkerLoad {
    pub(crate) fn read(stats: &WorkerStats) -> Self {
        Self { pending: stats.pending.load(Relaxed), processed: stats.processed.load(Relaxed) }
    }
}

/// A snapshot of a [`FanOut`](crate::FanOut)'s counters over every run since
/// it was built (or last reset); see [`FanOut::metrics`](crate::FanOut::metrics).
///
/// Workers publish once per batch, so while a run is busy the counts trail
/// by at most one batch per worker; they are exact once its stream has ended.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::MetricsSnapshot;
/// use conc_fan::{ErrorPolicy, FanOut};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let fan_out = FanOut::builder()
///     .on_error(ErrorPolicy::Skip)
///     .build(|n: u32| async move { if n == 3 { Err("three") } else { Ok(n) } })?;
/// let _ = fan_out.process_batch((0..5).collect()).await;
/// let metrics = fan_out.metrics();
/// assert_eq!((metrics.dispatched, metrics.processed, metrics.failed), (5, 4, 1));
/// assert_eq!(metrics.entries()[0].to_string(), "conc.fan.items.dispatched=5");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct FanOutMetrics {
    /// Items handed to the workers.
    pub dispatched: u64,
    /// Items the workers finished with an output.
    pub processed: u64,
    /// Items the workers gave up on (after any retries), whatever happened
    /// next: dead-lettered, skipped or the end of the run.
    pub failed: u64,
    /// Retries made.
    pub retried: u64,
    /// Failed items handed to the dead letter sink.
    pub dead_lettered: u64,
    /// Failed items dropped by [`ErrorPolicy::Skip`](crate::ErrorPolicy::Skip).
    pub skipped: u64,
}

impl MetricsSnapshot for FanOutMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(FAN_ITEMS_DISPATCHED, MetricValue::Count(self.dispatched)),
            MetricEntry::new(FAN_ITEMS_PROCESSED, MetricValue::Count(self.processed)),
            MetricEntry::new(FAN_ITEMS_FAILED, MetricValue::Count(self.failed)),
            MetricEntry::new(FAN_ITEMS_RETRIED, MetricValue::Count(self.retried)),
            MetricEntry::new(FAN_ITEMS_DEAD_LETTERED, MetricValue::Count(self.dead_lettered)),
            MetricEntry::new("skipped", MetricValue::Count(self.skipped)),
        ]
    }
}
