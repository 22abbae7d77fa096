//! The limiters' view of time: nanoseconds since the limiter was built, never
//! going backwards, and a [`Clock`] that follows tokio's (pausable) time.

use std::time::{Duration, Instant};

use conc_core::time::{Clock, CoarseClock};

use crate::loom::sync::atomic::{AtomicU64, Ordering};

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
/// let limiter = Gcra::with_clock(Quota::per_second(2)?, TokioClock);
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

/// A clock reading as nanoseconds since an origin, clamped so that it never
/// goes backwards: a clock that steps back makes no decision stricter than the
/// highest reading seen.
#[derive(Debug)]
pub(crate) struct Timeline<C> {
    clock: C,
    origin: Instant,
    high_water: AtomicU64,
}

impl<C: Clock> Timeline<C> {
    pub(crate) fn new(clock: C) -> Self {
        let origin = clock.now();
        Self { clock, origin, high_water: AtomicU64::new(0) }
    }

    /// Nanoseconds since the origin, saturating at `u64::MAX`, never below an
    /// earlier reading.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        let read = self.clock.now().saturating_duration_since(self.origin);
        let read = u64::try_from(read.as_nanos()).unwrap_or(u64::MAX);
        // A plain load on the common path; the RMW happens once per clock tick
        // per thread with a coarse clock.
        let high = self.high_water.load(Ordering::Relaxed);
        if read > high {
            self.high_water.fetch_max(read, Ordering::Relaxed);
            read
        } else {
            high
        }
    }

    pub(crate) fn clock(&self) -> &C {
        &self.clock
    }
}

/// `nanos` as a [`Duration`].
#[inline]
pub(crate) fn ns(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

/// `duration` in whole nanoseconds, saturating.
#[inline]
pub(crate) fn to_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
