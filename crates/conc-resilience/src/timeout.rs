//! A timeout for one call.

use std::future::Future;
use std::time::Duration;

use conc_core::metrics::TIMEOUT_ELAPSED;

use crate::ConfigError;

/// A call cut off by a [`Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call timed out after {after:?}")]
pub struct Elapsed {
    /// The timeout that passed.
    pub after: Duration,
}

/// Bounds how long a call may take; the call's future is dropped when the
/// time is up (so permits it holds are released).
///
/// The clock starts when the call first waits: a call that completes on its
/// first poll never arms a timer.
///
/// Waits on tokio's timer, so tests run on tokio's paused clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Elapsed, Timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_resilience::ConfigError> {
/// let timeout = Timeout::new(Duration::from_secs(1))?;
/// assert_eq!(timeout.call(async { 7 }).await, Ok(7));
/// let slow = timeout.call(tokio::time::sleep(Duration::from_secs(5))).await;
/// assert_eq!(slow, Err(Elapsed { after: Duration::from_secs(1) }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Timeout {
    after: Duration,
    elapsed: metrics::Counter,
}

impl Timeout {
    /// A timeout of `after`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroDuration`] for a zero duration.
    pub fn new(after: Duration) -> Result<Self, ConfigError> {
        if after.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "timeout" });
        }
        Ok(Self { after, elapsed: metrics::counter!(TIMEOUT_ELAPSED) })
    }

    /// The duration.
    pub fn duration(&self) -> Duration {
        self.after
    }

    /// Counts a call cut off and returns its error.
    #[cfg(feature = "tower")]
    pub(crate) fn expired(&self) -> Elapsed {
        self.elapsed.increment(1);
        Elapsed { after: self.after }
    }

    /// Runs `work` for at most the timeout.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when the time ran out first; `work` has been dropped then.
    pub async fn call<F: Future>(&self, work: F) -> Result<F::Output, Elapsed> {
        // Poll once before arming the timer: work that is ready at once (a
        // cache hit, an error found early) never touches the timer wheel.
        let mut work = std::pin::pin!(work);
        let first = std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await;
        if let Some(output) = first {
            return Ok(output);
        }
        if let Ok(output) = tokio::time::timeout(self.after, work).await {
            Ok(output)
        } else {
            self.elapsed.increment(1);
            Err(Elapsed { after: self.after })
        }
    }
}
