//! Per-stage counters, queue depth and sampled latency, read as a snapshot
//! with [`Pipeline::metrics`](crate::Pipeline::metrics) and emitted through
//! the `metrics` facade under the names in [`conc_core::metrics`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use conc_core::metrics::{
    MetricEntry, MetricValue, MetricsSnapshot, PIPELINE_ITEMS_DEAD_LETTERED, PIPELINE_ITEMS_FAILED,
    PIPELINE_ITEMS_PROCESSED, PIPELINE_ITEMS_RETRIED, PIPELINE_STAGE_DURATION,
    PIPELINE_STAGE_QUEUE_DEPTH,
};

/// One item in this many has its processing time measured (two clock reads),
/// so the latency figures cost nothing measurable on the hot path.
const SAMPLE_EVERY: u64 = 128;

/// Latency buckets: bucket `b` holds times in `[2^(b-1), 2^b)` nanoseconds.
const BUCKETS: usize = 48;

/// The shared counters of one stage. Each is written by the task running the
/// stage; relaxed ordering, since readers only need eventually exact counts.
#[derive(Debug)]
pub(crate) struct StageStats {
    name: Arc<str>,
    processed: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    in_flight: AtomicUsize,
    latency: [AtomicU64; BUCKETS],
    sampled: AtomicU64,
    processed_counter: metrics::Counter,
    failed_counter: metrics::Counter,
    retried_counter: metrics::Counter,
    dead_letter_counter: metrics::Counter,
    depth_gauge: metrics::Gauge,
    duration: metrics::Histogram,
}

impl StageStats {
    pub(crate) fn new(name: Arc<str>) -> Self {
        let label = name.to_string();
        Self {
            processed_counter: metrics::counter!(PIPELINE_ITEMS_PROCESSED, "stage" => label.clone()),
            failed_counter: metrics::counter!(PIPELINE_ITEMS_FAILED, "stage" => label.clone()),
            retried_counter: metrics::counter!(PIPELINE_ITEMS_RETRIED, "stage" => label.clone()),
            dead_letter_counter: metrics::counter!(PIPELINE_ITEMS_DEAD_LETTERED, "stage" => label.clone()),
            depth_gauge: metrics::gauge!(PIPELINE_STAGE_QUEUE_DEPTH, "stage" => label.clone()),
            duration: metrics::histogram!(PIPELINE_STAGE_DURATION, "stage" => label),
            name,
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            sampled: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Starts timing item `index` if it is one of the sampled ones.
    pub(crate) fn start(index: u64) -> Option<Instant> {
        index.is_multiple_of(SAMPLE_EVERY).then(Instant::now)
    }

    fn finish(&self, started: Option<Instant>) {
        if let Some(started) = started {
            let elapsed = started.elapsed();
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            let bucket = (u64::BITS - nanos.leading_zeros()) as usize;
            self.latency[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
            self.sampled.fetch_add(1, Relaxed);
            self.duration.record(elapsed.as_secs_f64());
        }
    }

    pub(crate) fn processed(&self, started: Option<Instant>) {
        self.processed_many(1);
        self.finish(started);
    }

    /// Adds items counted locally by a stage's fast path.
    pub(crate) fn processed_many(&self, items: u64) {
        self.processed.fetch_add(items, Relaxed);
        self.processed_counter.increment(items);
    }

    /// Records a sampled item's time; counting it is the caller's business.
    pub(crate) fn sampled(&self, started: Option<Instant>) {
        self.finish(started);
    }

    pub(crate) fn failed(&self, started: Option<Instant>) {
        self.failed.fetch_add(1, Relaxed);
        self.failed_counter.increment(1);
        self.finish(started);
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Relaxed);
        self.retried_counter.increment(1);
    }

    pub(crate) fn skipped(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Relaxed);
        self.dead_letter_counter.increment(1);
    }

    pub(crate) fn set_in_flight(&self, items: usize) {
        // A plain load first: the depth rarely changes between polls.
        if self.in_flight.load(Relaxed) != items {
            self.in_flight.store(items, Relaxed);
            self.depth_gauge.set(items as f64);
        }
    }

    fn percentile(counts: &[u64; BUCKETS], total: u64, quantile: f64) -> Duration {
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                // The bucket's upper bound: a conservative estimate.
                return Duration::from_nanos(if bucket == 0 { 0 } else { 1_u64 << bucket.min(63) });
            }
        }
        Duration::MAX
    }

    pub(crate) fn snapshot(&self) -> StageMetrics {
        let counts: [u64; BUCKETS] = std::array::from_fn(|b| self.latency[b].load(Relaxed));
        let total = counts.iter().sum();
        StageMetrics {
            name: Arc::clone(&self.name),
            processed: self.processed.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            latency_p50: Self::percentile(&counts, total, 0.50),
            latency_p99: Self::percentile(&counts, total, 0.99),
            latency_max: Self::percentile(&counts, total, 1.0),
        }
    }

    pub(crate) fn reset(&self) {
        for counter in
            [&self.processed, &self.failed, &self.retried, &self.skipped, &self.dead_lettered]
        {
            counter.store(0, Relaxed);
        }
        for bucket in &self.latency {
            bucket.store(0, Relaxed);
        }
        self.sampled.store(0, Relaxed);
    }
}

/// A snapshot of one stage's counters since the pipeline was built (or last reset).
///
/// Latencies are measured on one item in 128 and rounded up to a power of two
/// nanoseconds; they are zero until a sampled item has finished.
///
/// # Examples
///
/// ```
/// use conc_pipeline::Pipeline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let pipeline = Pipeline::builder().map("id", 1, 0, |n: u32| async move { n }).build()?;
/// let _ = pipeline.process_batch((0..200).collect()).await;
/// let id = pipeline.metrics().stages.remove(0);
/// assert_eq!((&*id.name, id.processed, id.in_flight), ("id", 200, 0));
/// assert!(id.latency_max >= id.latency_p50);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct StageMetrics {
    /// The stage's name.
    pub name: Arc<str>,
    /// Items the stage finished with an output. While a run is busy this can
    /// trail by up to 64 items per run (the stage counts locally and
    /// publishes when it waits, ends or has counted 64); it is exact once
    /// the run's output stream is finished or dropped.
    pub processed: u64,
    /// Items the stage gave up on (after retries), whatever the policy did next.
    pub failed: u64,
    /// Retries made.
    pub retried: u64,
    /// Failed items dropped by [`ErrorPolicy::Skip`](crate::ErrorPolicy::Skip).
    pub skipped: u64,
    /// Failed items handed to the dead letter sink.
    pub dead_lettered: u64,
    /// Items inside the stage now: running, or finished and waiting for the
    /// next stage (its queue depth).
    pub in_flight: usize,
    /// Median time per item, the retries included.
    pub latency_p50: Duration,
    /// 99th percentile time per item.
    pub latency_p99: Duration,
    /// Longest time per item.
    pub latency_max: Duration,
}

/// A snapshot of every stage of a pipeline, in order; see
/// [`Pipeline::metrics`](crate::Pipeline::metrics).
///
/// As a [`MetricsSnapshot`] its entries are totals over the stages.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::MetricsSnapshot;
/// use conc_pipeline::Pipeline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let pipeline = Pipeline::builder()
///     .map("a", 1, 0, |n: u32| async move { n })
///     .map("b", 1, 0, |n: u32| async move { n })
///     .build()?;
/// let _ = pipeline.process_batch(vec![1, 2]).await;
/// let metrics = pipeline.metrics();
/// assert_eq!(metrics.stages.len(), 2);
/// assert_eq!(metrics.entries()[0].to_string(), "conc.pipeline.items.processed=4");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct PipelineMetrics {
    /// One entry per stage, first stage first.
    pub stages: Vec<StageMetrics>,
}

impl PipelineMetrics {
    /// The stage with this name.
    pub fn stage(&self, name: &str) -> Option<&StageMetrics> {
        self.stages.iter().find(|stage| &*stage.name == name)
    }

    /// The stage with the most items in flight: the likely bottleneck.
    pub fn busiest(&self) -> Option<&StageMetrics> {
        self.stages.iter().max_by_key(|stage| stage.in_flight)
    }
}

impl MetricsSnapshot for PipelineMetrics {
    /// Totals over the stages: items processed, failed, retried,
    /// dead-lettered and skipped by any stage, and items inside the stages now.
    fn entries(&self) -> Vec<MetricEntry> {
        let total = |field: fn(&StageMetrics) -> u64| self.stages.iter().map(field).sum();
        let in_flight: usize = self.stages.iter().map(|stage| stage.in_flight).sum();
        vec![
            MetricEntry::new(PIPELINE_ITEMS_PROCESSED, MetricValue::Count(total(|s| s.processed))),
            MetricEntry::new(PIPELINE_ITEMS_FAILED, MetricValue::Count(total(|s| s.failed))),
            MetricEntry::new(PIPELINE_ITEMS_RETRIED, MetricValue::Count(total(|s| s.retried))),
            MetricEntry::new(
                PIPELINE_ITEMS_DEAD_LETTERED,
                MetricValue::Count(total(|s| s.dead_lettered)),
            ),
            MetricEntry::new("skipped", MetricValue::Count(total(|s| s.skipped))),
            MetricEntry::new(PIPELINE_STAGE_QUEUE_DEPTH, MetricValue::Gauge(in_flight as f64)),
        ]
    }
}
