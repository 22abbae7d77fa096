//! [`GcraBuilder`]: the clock of a [`Gcra`].

use conc_core::time::{Clock, CoarseClock, Timeline};

use super::{Gcra, GcraCell, Params};
use crate::Quota;
use crate::stats::Stats;
use crate::time::default_clock;

/// Builds a [`Gcra`]; see [`Gcra::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Gcra, Quota};
///
/// let clock = ManualClock::new();
/// let limiter = Gcra::builder(Quota::per_second(1)?).clock(clock.clone()).build();
/// limiter.try_acquire(1)?;
/// assert!(limiter.try_acquire(1).is_err());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.try_acquire(1).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct GcraBuilder<C = CoarseClock> {
    quota: Quota,
    clock: C,
}

impl Gcra<CoarseClock> {
    /// A builder for a limiter enforcing `quota`, on the process-wide coarse
    /// clock unless [`clock`](GcraBuilder::clock) says otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_ratelimit::{Gcra, Quota, TokioClock};
    ///
    /// let limiter = Gcra::builder(Quota::per_second(10)?).clock(TokioClock).build();
    /// assert_eq!(limiter.capacity(), 10);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder(quota: Quota) -> GcraBuilder<CoarseClock> {
        GcraBuilder { quota, clock: default_clock() }
    }
}

impl<C: Clock> GcraBuilder<C> {
    /// The clock decisions read. Defaults to the process-wide [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> GcraBuilder<C2> {
        GcraBuilder { quota: self.quota, clock }
    }

    /// Builds the limiter. Nothing can be refused here: the [`Quota`] was
    /// checked when it was made.
    pub fn build(self) -> Gcra<C> {
        Gcra {
            cell: GcraCell::new(),
            params: Params::of(self.quota),
            quota: self.quota,
            time: Timeline::new(self.clock),
            stats: Stats::new(),
        }
    }
}
