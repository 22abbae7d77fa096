//! Waiting for a lock or a funnel slot: retry with backoff until a deadline.

use std::future::Future;
use std::time::Duration;

use conc_core::backoff::Backoff;
use tokio::time::Instant;

use crate::LockError;

/// One attempt's result as the waiting loop sees it.
pub(crate) enum Try<T> {
    /// Got it.
    Acquired(T),
    /// Busy; the current hold expires in this long, when known.
    Busy(Option<Duration>),
}

/// Calls `attempt` until it acquires or `wait` has passed, sleeping between
/// attempts by `backoff`, never past the deadline and never longer than the
/// current hold has left.
pub(crate) async fn block<T, F, Fut>(
    name: &str,
    wait: Duration,
    backoff: &Backoff,
    mut attempt: F,
) -> Result<T, LockError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Try<T>, LockError>>,
{
    let started = Instant::now();
    let deadline = started.checked_add(wait);
    let mut delays = backoff.delays();
    loop {
        let retry_after = match attempt().await? {
            Try::Acquired(value) => return Ok(value),
            Try::Busy(retry_after) => retry_after,
        };
        let now = Instant::now();
        let left =
            deadline.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(now));
        if left.is_zero() {
            return Err(LockError::Timeout { name: name.to_owned(), waited: now - started });
        }
        let mut pause = delays.next().unwrap_or(Duration::from_millis(250)).min(left);
        if let Some(expires_in) = retry_after {
            // Try again just as the current hold expires.
            pause = pause.min(expires_in.max(Duration::from_millis(1)));
        }
        tokio::time::sleep(pause).await;
    }
}
