//! [`Timeout`]: the timeout, and the tower service it becomes around an
//! inner service.

use std::future::Future;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::metrics::TIMEOUT_ELAPSED;

use super::call::TimeoutCall;
use super::error::Elapsed;

/// Bounds how long a call may take; the call's future is dropped when the
/// time is up (so permits it holds are released).
///
/// The clock starts when the call first waits: a call that completes on its
/// first poll never arms a timer. Waits on tokio's timer, so tests run on
/// tokio's paused clock.
///
/// `Timeout` (that is, `Timeout<()>`) is the timeout on its own:
/// [`call`](Timeout::call) a future. With the `tower` feature a
/// `TimeoutLayer` turns an inner service `S` into a
/// `Timeout<S>`, a tower `Service` bounding each response.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Elapsed, Timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let timeout = Timeout::new(Duration::from_secs(1))?;
/// assert_eq!(timeout.call(async { 7 }).await, Ok(7));
/// let slow = timeout.call(tokio::time::sleep(Duration::from_secs(5))).await;
/// assert_eq!(slow, Err(Elapsed { after: Duration::from_secs(1) }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Timeout<S = ()> {
    after: Duration,
    elapsed: metrics::Counter,
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(super) inner: S,
}

impl Timeout {
    /// A timeout of `after`, longer than zero. A duration too long for the
    /// timer (such as `Duration::MAX`) never fires.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a zero duration.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::Timeout;
    ///
    /// assert_eq!(Timeout::new(Duration::from_secs(3))?.duration(), Duration::from_secs(3));
    /// assert!(Timeout::new(Duration::ZERO).is_err());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn new(after: Duration) -> Result<Self, ConfigError> {
        let after = config::positive("timeout", after)?;
        Ok(Self { after, elapsed: metrics::counter!(TIMEOUT_ELAPSED), inner: () })
    }

    /// Runs `work` for at most the timeout. Work that is ready at its first
    /// poll never arms a timer.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when the time ran out first; `work` has been dropped then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::Timeout;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let timeout = Timeout::new(Duration::from_millis(100))?;
    /// assert!(timeout.call(std::future::pending::<()>()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn call<F: Future>(&self, work: F) -> TimeoutCall<'_, F> {
        TimeoutCall::new(work, self)
    }
}

impl<S> Timeout<S> {
    /// The same timeout around `inner`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<T>(&self, inner: T) -> Timeout<T> {
        Timeout { after: self.after, elapsed: self.elapsed.clone(), inner }
    }

    /// The duration.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::Timeout;
    ///
    /// assert_eq!(Timeout::new(Duration::from_secs(2))?.duration(), Duration::from_secs(2));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn duration(&self) -> Duration {
        self.after
    }

    /// Counts a call cut off and returns its error.
    pub(crate) fn expired(&self) -> Elapsed {
        self.elapsed.increment(1);
        Elapsed { after: self.after }
    }
}
