//! The limiters' view of time: conc-core's [`Timeline`](conc_core::time::Timeline)
//! over any [`Clock`], and a [`Clock`] that follows tokio's (pausable) time.

use std::time::{Duration, Instant};

use conc_core::time::{Clock, CoarseClock};

/// A [`Clock`] that reads `tokio::time::Instant::now()`.
///
/// Under `tokio::time::pause()` it stands still until tokio's paused clock
/// auto-advances or a test calls `tokio::time::advance`, so a limiter built on
/// it and awaited with `acquire` runs deterministically in tests. Outside a
/// paused runtime it is the precise system clock.
///
/// # Examples
///
/// ```
/// use conc_ratelimit::{Gcra, Quota, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = Gcra::builder(Quota::per_second(2)?).clock(TokioClock).build();
/// for _ in 0..4 {
///     limiter.acquire(1).await?; // the last two wait 500 ms each, on paused time
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokioClock;

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The default clock of every limiter: the process-wide [`CoarseClock`]
/// (one atomic load per read, 1 ms resolution).
pub(crate) fn default_clock() -> CoarseClock {
    CoarseClock::global().clone()
}

/// `nanos` as a [`Duration`].
#[inline]
pub(crate) fn ns(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}
