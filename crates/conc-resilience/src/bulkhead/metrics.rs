//! [`BulkheadMetrics`], a bulkhead's state at one moment.

use conc_core::metrics::{
    BULKHEAD_IN_FLIGHT, BULKHEAD_QUEUED, BULKHEAD_REJECTED, MetricEntry, MetricValue,
    MetricsSnapshot,
};

/// A bulkhead's state at one moment.
///
/// # Examples
///
/// ```
/// use conc_resilience::Bulkhead;
///
/// let bulkhead = Bulkhead::builder().max_concurrent(2).build()?;
/// let _held = bulkhead.try_acquire()?;
/// let metrics = bulkhead.metrics();
/// assert_eq!((metrics.available, metrics.in_flight, metrics.queued), (1, 1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct BulkheadMetrics {
    /// The limit.
    pub max_concurrent: u32,
    /// Slots free now.
    pub available: u32,
    /// Calls holding a slot now.
    pub in_flight: u32,
    /// Callers waiting for a slot now.
    pub queued: u32,
    /// Calls refused (full or timed out) since the bulkhead was built or its
    /// metrics reset.
    pub rejected: u64,
}

impl MetricsSnapshot for BulkheadMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(BULKHEAD_IN_FLIGHT, MetricValue::Gauge(f64::from(self.in_flight))),
            MetricEntry::new(BULKHEAD_QUEUED, MetricValue::Gauge(f64::from(self.queued))),
            MetricEntry::new(BULKHEAD_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new("available", MetricValue::Gauge(f64::from(self.available))),
        ]
    }
}
