//! [`RetryMetrics`], the counts of a retry policy's runs.

use conc_core::metrics::{
    MetricEntry, MetricValue, MetricsSnapshot, RETRY_ATTEMPTS, RETRY_EXHAUSTED,
};

/// Counts of a [`Retry`](super::Retry)'s runs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::Retry;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let retry = Retry::builder().backoff(Backoff::fixed(Duration::from_millis(1)).build()?).max_attempts(2).build()?;
/// let _: Result<(), ()> = retry.run(|_| async { Err(()) }).await;
/// let metrics = retry.metrics();
/// assert_eq!((metrics.calls, metrics.retries, metrics.exhausted), (1, 1, 1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RetryMetrics {
    /// Runs started.
    pub calls: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Runs that ended on a retryable failure: limit, deadline or budget reached.
    pub exhausted: u64,
    /// Retries the budget refused.
    pub budget_refused: u64,
}

impl MetricsSnapshot for RetryMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("calls", MetricValue::Count(self.calls)),
            MetricEntry::new(RETRY_ATTEMPTS, MetricValue::Count(self.retries)),
            MetricEntry::new(RETRY_EXHAUSTED, MetricValue::Count(self.exhausted)),
            MetricEntry::new("budget_refused", MetricValue::Count(self.budget_refused)),
        ]
    }
}
