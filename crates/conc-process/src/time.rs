//! Reading a lifecycle deadline on tokio's clock.

use std::time::Duration;

/// How long before a lifecycle deadline the processes still running are
/// killed, so that they are reaped, and the stop returns, by the deadline.
pub(crate) const REAP_MARGIN: Duration = Duration::from_millis(50);

/// When to kill what still runs for a stop due at `deadline` (a std instant,
/// as [`Lifecycle::stop`](conc_core::lifecycle::Lifecycle::stop) gives it):
/// [`REAP_MARGIN`] before it, counted on tokio's clock from the time left, so
/// that on a paused test clock the distance is kept. `None` when it lies
/// beyond what tokio's clock can represent.
pub(crate) fn kill_time(deadline: std::time::Instant) -> Option<tokio::time::Instant> {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    tokio::time::Instant::now().checked_add(left.saturating_sub(REAP_MARGIN))
}

/// The earlier of two kill times, where `None` is never.
pub(crate) fn earlier(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
