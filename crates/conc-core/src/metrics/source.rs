//! The [`MetricsSource`] trait: a component's cheap metrics snapshot.

use std::fmt;
use std::time::Duration;

/// A component that reports its own metrics as a cheap snapshot.
///
/// Besides emitting through the `metrics` facade (which needs a recorder the
/// application installs), every component keeps its own counters and hands
/// them out as a typed snapshot: for health checks, dashboards without a
/// recorder, tests and the bench suite. Taking a snapshot must be cheap (a few
/// atomic loads, no locks held across user code).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
///
/// #[derive(Debug, Default)]
/// struct Greeter { greeted: AtomicU64 }
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// struct GreeterMetrics { greeted: u64 }
///
/// impl MetricsSnapshot for GreeterMetrics {
///     fn entries(&self) -> Vec<MetricEntry> {
///         vec![MetricEntry::new("greeted", MetricValue::Count(self.greeted))]
///     }
/// }
///
/// impl MetricsSource for Greeter {
///     type Snapshot = GreeterMetrics;
///     fn metrics(&self) -> GreeterMetrics {
///         GreeterMetrics { greeted: self.greeted.load(Ordering::Relaxed) }
///     }
///     fn reset_metrics(&self) {
///         self.greeted.store(0, Ordering::Relaxed);
///     }
/// }
///
/// let greeter = Greeter::default();
/// greeter.greeted.fetch_add(2, Ordering::Relaxed);
/// assert_eq!(greeter.metrics(), GreeterMetrics { greeted: 2 });
/// greeter.reset_metrics();
/// assert_eq!(greeter.metrics().greeted, 0);
/// ```
pub trait MetricsSource {
    /// The typed snapshot this component reports.
    type Snapshot: MetricsSnapshot;

    /// A snapshot of the component's counters, gauges and latencies now.
    fn metrics(&self) -> Self::Snapshot;

    /// Resets counters and latency statistics to zero. Gauges that describe
    /// the present (queue depth, workers alive) keep their value.
    fn reset_metrics(&self);
}

/// A typed metrics snapshot that can also be read as a flat list of entries,
/// so a [`Registry`](crate::lifecycle::Registry) can aggregate components of
/// different types.
///
/// `()` is the snapshot of a component with nothing to report.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::MetricsSnapshot;
///
/// assert!(().entries().is_empty());
/// ```
pub trait MetricsSnapshot: fmt::Debug + Clone + Send + Sync + 'static {
    /// The snapshot as `(name, value)` entries, in a stable order.
    fn entries(&self) -> Vec<MetricEntry>;
}

impl MetricsSnapshot for () {
    fn entries(&self) -> Vec<MetricEntry> {
        Vec::new()
    }
}

/// One named value of a snapshot.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::{MetricEntry, MetricValue, POOL_QUEUE_DEPTH};
///
/// let entry = MetricEntry::new(POOL_QUEUE_DEPTH, MetricValue::Gauge(3.0));
/// assert_eq!(entry.to_string(), "conc.pool.queue.depth=3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MetricEntry {
    /// The metric name: one of the constants of [`crate::metrics`] or a
    /// snapshot field name.
    pub name: &'static str,
    /// The value.
    pub value: MetricValue,
}

impl MetricEntry {
    /// An entry named `name` holding `value`.
    pub const fn new(name: &'static str, value: MetricValue) -> Self {
        Self { name, value }
    }
}

impl fmt::Display for MetricEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// The value of a [`MetricEntry`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::metrics::MetricValue;
///
/// assert_eq!(MetricValue::Count(4).to_string(), "4");
/// assert_eq!(MetricValue::Duration(Duration::from_millis(3)).to_string(), "3ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A count of events since creation or the last reset.
    Count(u64),
    /// A level that goes up and down.
    Gauge(f64),
    /// A time, such as a latency percentile or an uptime.
    Duration(Duration),
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Count(n) => write!(f, "{n}"),
            MetricValue::Gauge(v) => write!(f, "{v}"),
            MetricValue::Duration(d) => write!(f, "{d:?}"),
        }
    }
}
