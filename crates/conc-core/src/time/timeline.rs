//! [`Timeline`]: a clock read as nanoseconds since an origin, never going back.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Clock, CoarseClock};
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// A [`Clock`] read as whole nanoseconds since the clock's
/// [`origin`](Clock::origin), never below an earlier reading.
///
/// This is how every component of the workspace reads the clock it was given
/// (`.clock(c)` on its builder): decisions keep times as `u64` nanoseconds,
/// which fit in one atomic word and compare without `Instant` arithmetic. For
/// the [`CoarseClock`] (the default) and the [`ManualClock`](super::ManualClock)
/// a reading is one atomic load; any other clock is read through
/// [`Clock::nanos_since`].
///
/// A clock that steps back (a [`ManualClock`](super::ManualClock) rewound, an
/// odd platform) makes no reading go back: the timeline holds at the highest
/// reading it has handed out until the clock passes it again, so no decision
/// becomes stricter than one already made.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::{ManualClock, Timeline};
///
/// let clock = ManualClock::new();
/// let timeline = Timeline::new(clock.clone());
/// assert_eq!(timeline.now(), 0);
///
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(timeline.now(), 5_000_000);
///
/// clock.rewind(Duration::from_millis(2))?;
/// assert_eq!(timeline.now(), 5_000_000, "never goes back");
/// assert_eq!(timeline.instant(5_000_000), timeline.origin() + Duration::from_millis(5));
/// # Ok::<(), conc_core::time::ClockError>(())
/// ```
pub struct Timeline<C = CoarseClock> {
    clock: C,
    origin: Instant,
    high_water: AtomicU64,
}

impl<C: Clock> Timeline<C> {
    /// A timeline over `clock`, counting from the clock's [`origin`](Clock::origin).
    pub fn new(clock: C) -> Self {
        let origin = clock.origin();
        Self { clock, origin, high_water: AtomicU64::new(0) }
    }

    /// Nanoseconds since [`origin`](Self::origin), saturating at `u64::MAX`,
    /// never below an earlier reading.
    #[inline]
    pub fn now(&self) -> u64 {
        let read = self.clock.nanos_since(self.origin);
        // A plain load on the common path; with a coarse clock the
        // read-modify-write happens about once per tick per thread.
        let high = self.high_water.load(Ordering::Relaxed);
        if read > high {
            self.high_water.fetch_max(read, Ordering::Relaxed);
            read
        } else {
            high
        }
    }

    /// The instant a reading counts from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The instant `nanos` after the origin (saturating far in the future).
    pub fn instant(&self, nanos: u64) -> Instant {
        let after = Duration::from_nanos(nanos);
        self.origin.checked_add(after).unwrap_or_else(|| far_future(self.origin, after))
    }

    /// The clock it reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

/// The latest instant at most `after` past `origin` that the platform can
/// represent: take the largest steps that still fit, halving them.
fn far_future(origin: Instant, after: Duration) -> Instant {
    let (mut latest, mut left, mut step) = (origin, after, after);
    while !step.is_zero() {
        match latest.checked_add(step) {
            Some(later) if step <= left => {
                latest = later;
                left -= step;
            }
            _ => step /= 2,
        }
    }
    latest
}

impl Default for Timeline<CoarseClock> {
    /// A timeline over the process-wide [`CoarseClock::global`].
    fn default() -> Self {
        Self::new(CoarseClock::global().clone())
    }
}

impl<C: Clock + Clone> Clone for Timeline<C> {
    fn clone(&self) -> Self {
        Self {
            clock: self.clock.clone(),
            origin: self.origin,
            high_water: AtomicU64::new(self.high_water.load(Ordering::Relaxed)),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for Timeline<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeline")
            .field("clock", &self.clock)
            .field("origin", &self.origin)
            .field("high_water", &self.high_water.load(Ordering::Relaxed))
            .finish()
    }
}
