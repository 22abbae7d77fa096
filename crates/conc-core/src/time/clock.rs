//! The [`Clock`] trait and the precise system clock.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time.
///
/// Components that make decisions from time (rate limiters, circuit breakers,
/// schedulers) take a `Clock` so that production code reads a cheap clock and
/// tests drive a [`ManualClock`](super::ManualClock) by hand.
///
/// Implementations must never go backwards when read from one thread; a
/// [`ManualClock`](super::ManualClock) may be moved backwards on purpose, and
/// components must tolerate that without panicking.
///
/// # Examples
///
/// ```
/// use conc_core::time::{Clock, SystemClock};
///
/// fn stamp(clock: &impl Clock) -> std::time::Instant {
///     clock.now()
/// }
/// let a = stamp(&SystemClock);
/// let b = stamp(&SystemClock);
/// assert!(b >= a);
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Instant;

    /// A fixed instant, at or before the first reading, from which
    /// [`nanos_since`](Clock::nanos_since) is cheapest to read. A
    /// [`Timeline`](super::Timeline) counts from it.
    ///
    /// Defaults to [`now`](Clock::now): clocks that keep their reading as an
    /// offset from an origin of their own ([`CoarseClock`](super::CoarseClock),
    /// [`ManualClock`](super::ManualClock)) return that origin instead.
    fn origin(&self) -> Instant {
        self.now()
    }

    /// Whole nanoseconds from `origin` to now: zero when now is before
    /// `origin`, `u64::MAX` past about 584 years.
    ///
    /// The default subtracts `origin` from [`now`](Clock::now); clocks that
    /// keep an offset from their own [`origin`](Clock::origin) answer for it
    /// with one atomic load, without `Instant` arithmetic.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_micros(3));
    /// assert_eq!(clock.nanos_since(clock.origin()), 3_000);
    /// assert_eq!(clock.nanos_since(clock.now() + Duration::from_secs(1)), 0);
    /// ```
    #[inline]
    fn nanos_since(&self, origin: Instant) -> u64 {
        saturating_nanos(self.now().saturating_duration_since(origin))
    }
}

/// `duration` in whole nanoseconds, saturating at `u64::MAX` (about 584 years).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::saturating_nanos;
///
/// assert_eq!(saturating_nanos(Duration::from_micros(2)), 2_000);
/// assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
/// ```
#[inline]
pub fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The precise monotonic clock: every read is [`Instant::now()`].
///
/// Use it where each reading must be exact (measuring latency). On hot
/// decision paths prefer [`CoarseClock`](super::CoarseClock).
///
/// # Examples
///
/// ```
/// use conc_core::time::{Clock, SystemClock};
///
/// let start = SystemClock.now();
/// assert!(SystemClock.now() >= start);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock behind a reference or a smart pointer reads as the clock itself.
macro_rules! forward_clock {
    ($($pointer:ty),*) => {$(
        impl<C: Clock + ?Sized> Clock for $pointer {
            #[inline]
            fn now(&self) -> Instant {
                (**self).now()
            }

            #[inline]
            fn origin(&self) -> Instant {
                (**self).origin()
            }

            #[inline]
            fn nanos_since(&self, origin: Instant) -> u64 {
                (**self).nanos_since(origin)
            }
        }
    )*};
}

forward_clock!(&C, Arc<C>, Box<C>);
