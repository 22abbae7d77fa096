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
    loop {
        match attempt() {
            Err(RateLimitError::Limited { retry_after }) => {
                // A coarse clock can lag its retry-after by up to its
                // resolution; never spin on a zero sleep.
                tokio::time::sleep(retry_after.max(Duration::from_nanos(1))).await;
            }
            other => return other,
        }
    }
}
