//! Waiting for capacity: try, sleep for the exact wait the refusal named, try again.
//!
//! Nothing is reserved while sleeping, so dropping the future at any point
//! consumes nothing.

use std::time::Duration;

use crate::RateLimitError;
use crate::stats::Stats;

/// Calls `attempt` until it stops answering [`RateLimitError::Limited`],
/// sleeping on tokio's clock for the wait each refusal names. While it
/// sleeps the caller counts as waiting in `stats` (until this future ends
/// or is dropped); the outcome is counted as allowed or rejected.
pub(crate) async fn until_ready<T>(
    stats: Option<&Stats>,
    mut attempt: impl FnMut() -> Result<T, RateLimitError>,
) -> Result<T, RateLimitError> {
    let mut started = None;
    let mut waiting = None;
    loop {
        match attempt() {
            Err(RateLimitError::Limited { retry_after }) => {
                started.get_or_insert_with(tokio::time::Instant::now);
                if waiting.is_none() {
                    waiting = stats.map(Stats::waiting);
                }
                // A coarse clock can lag its retry-after by up to its
                // resolution; never spin on a zero sleep.
                tokio::time::sleep(retry_after.max(Duration::from_nanos(1))).await;
            }
            other => {
                drop(waiting);
                if let Some(started) = started {
                    metrics::histogram!(conc_core::metrics::RATELIMIT_WAIT)
                        .record(started.elapsed().as_secs_f64());
                }
                return match stats {
                    Some(stats) => stats.record(other),
                    None => other,
                };
            }
        }
    }
}
