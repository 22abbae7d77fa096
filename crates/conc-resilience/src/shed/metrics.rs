//! [`ShedMetrics`], a load shedder's load and refusals.

use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, SHED_LOAD, SHED_REJECTED};

/// A [`LoadShedder`](super::LoadShedder)'s load and refusal statistics.
///
/// # Examples
///
/// ```
/// use conc_resilience::LoadShedder;
///
/// let shedder = LoadShedder::builder(1).build()?;
/// let _held = shedder.try_admit(1)?;
/// let _ = shedder.try_admit(1);
/// let metrics = shedder.metrics();
/// assert_eq!((metrics.load, metrics.admitted, metrics.rejected()), (1, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct ShedMetrics {
    /// Units in use now.
    pub load: u64,
    /// The maximum.
    pub max_load: u64,
    /// Work admitted so far.
    pub admitted: u64,
    /// Refused because the load would exceed the maximum.
    pub rejected_overloaded: u64,
    /// Refused during a cooldown.
    pub rejected_cooling_down: u64,
    /// Refused for waiting too long in a queue.
    pub rejected_queue_wait: u64,
    /// Whether a cooldown is in force now.
    pub cooling_down: bool,
}

impl ShedMetrics {
    /// All refusals.
    pub fn rejected(&self) -> u64 {
        self.rejected_overloaded + self.rejected_cooling_down + self.rejected_queue_wait
    }
}

impl MetricsSnapshot for ShedMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(SHED_LOAD, MetricValue::Gauge(self.load as f64)),
            MetricEntry::new(SHED_REJECTED, MetricValue::Count(self.rejected())),
            MetricEntry::new("admitted", MetricValue::Count(self.admitted)),
        ]
    }
}
