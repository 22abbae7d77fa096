//! Waiting for capacity: try, sleep for the exact wait the refusal named, try again.
//!
//! Nothing is reserved while sleeping, so dropping the future at any point
//! consumes nothing.

use std::time::Duration;

use crate::RateLimitError;

/// Calls `attempt` until it stops answering [`RateLimitError::Limited`],
/// sleeping on tokio's clock for the wait each refusal names.
pub(crate) async fn until_ready<T>(
    mut attempt: impl FnMut() -> Result<T, RateLimitError>,
) -> Result<T, RateLimitError> {
    let mut started = None;
    loop {
        match attempt() {
            Err(RateLimitError::Limited { retry_after }) => {
                started.get_or_insert_with(tokio::time::Instant::now);
                // A coarse clock can lag its retry-after by up to its
                // resolution; never spin on a zero sleep.
                tokio::time::sleep(retry_after.max(Duration::from_nanos(1))).await;
            }
            other => {
                if let Some(started) = started {
                    metrics::histogram!(conc_core::metrics::RATELIMIT_WAIT)
                        .record(started.elapsed().as_secs_f64());
                }
                return other;
            }
        }
    }
}
