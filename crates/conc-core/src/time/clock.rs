//! The [`Clock`] trait and the precise system clock.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

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

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
}
