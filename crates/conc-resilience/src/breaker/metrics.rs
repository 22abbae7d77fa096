//! The breaker's metrics snapshot and its `metrics` facade handles.

use conc_core::metrics::{
    BREAKER_CALLS, BREAKER_REJECTED, BREAKER_STATE, BREAKER_TRANSITIONS, MetricEntry, MetricValue,
    MetricsSnapshot,
};

use super::state::BreakerState;

/// A snapshot of a breaker: its state and the window it decides from.
///
/// In half-open the counts are those of the probes so far. Rates are `None`
/// until the minimum number of calls is reached (Resilience4j reports −1).
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder().minimum_calls(2).build()?;
/// breaker.try_acquire()?.failure();
/// assert_eq!(breaker.metrics().failure_rate, None);
/// breaker.try_acquire()?.success();
/// let metrics = breaker.metrics();
/// assert_eq!((metrics.calls, metrics.failed_calls), (2, 1));
/// assert_eq!(metrics.failure_rate, Some(0.5));
/// assert_eq!(metrics.state, BreakerState::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct BreakerMetrics {
    /// The state when the snapshot was taken.
    pub state: BreakerState,
    /// Failed calls over recorded calls, once the minimum is reached.
    pub failure_rate: Option<f64>,
    /// Slow calls over recorded calls, once the minimum is reached.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window (Resilience4j's "buffered calls").
    pub calls: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Calls rejected since the breaker was built or reset.
    pub not_permitted: u64,
}

impl MetricsSnapshot for BreakerMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        let rate = |rate: Option<f64>| MetricValue::Gauge(rate.unwrap_or(-1.0));
        vec![
            MetricEntry::new(BREAKER_STATE, MetricValue::Gauge(self.state.gauge_value())),
            MetricEntry::new("failure_rate", rate(self.failure_rate)),
            MetricEntry::new("slow_call_rate", rate(self.slow_call_rate)),
            MetricEntry::new("calls", MetricValue::Count(self.calls)),
            MetricEntry::new("failed_calls", MetricValue::Count(self.failed_calls)),
            MetricEntry::new("slow_calls", MetricValue::Count(self.slow_calls)),
            MetricEntry::new(BREAKER_REJECTED, MetricValue::Count(self.not_permitted)),
        ]
    }
}

/// Facade handles registered once when the breaker is built, so a call
/// increments a handle (nothing at all without a recorder) instead of looking
/// a metric up.
#[derive(Debug)]
pub(crate) struct Handles {
    pub(crate) success: metrics::Counter,
    pub(crate) failure: metrics::Counter,
    pub(crate) ignored: metrics::Counter,
    pub(crate) rejected: metrics::Counter,
    pub(crate) transitions: metrics::Counter,
    pub(crate) state: metrics::Gauge,
}

impl Handles {
    pub(crate) fn new(name: &str) -> Self {
        let name = name.to_owned();
        Self {
            success: metrics::counter!(BREAKER_CALLS, "breaker" => name.clone(), "outcome" => "success"),
            failure: metrics::counter!(BREAKER_CALLS, "breaker" => name.clone(), "outcome" => "failure"),
            ignored: metrics::counter!(BREAKER_CALLS, "breaker" => name.clone(), "outcome" => "ignored"),
            rejected: metrics::counter!(BREAKER_REJECTED, "breaker" => name.clone()),
            transitions: metrics::counter!(BREAKER_TRANSITIONS, "breaker" => name.clone()),
            state: metrics::gauge!(BREAKER_STATE, "breaker" => name),
        }
    }
}
