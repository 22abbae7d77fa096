//! [`RateLimiterBuilder`]: the clock of a named [`RateLimiter`].

use conc_core::hash::FoldHash;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock};

use conc_core::time::{Clock, CoarseClock, Timeline};

use super::{RateLimiter, STRIPES, Stripe};
use crate::time::default_clock;

/// Builds a [`RateLimiter`]; see [`RateLimiter::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::RateLimiter;
///
/// let clock = ManualClock::new();
/// let limiter: RateLimiter<(), _> = RateLimiter::builder().clock(clock.clone()).build();
/// limiter.hit("export:7", Duration::from_secs(60));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(limiter.attempts("export:7"), 0, "the window closed");
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RateLimiterBuilder<R = (), C = CoarseClock> {
    clock: C,
    request: PhantomData<fn(&R)>,
}

impl<R> RateLimiter<R, CoarseClock> {
    /// A builder for a limiter on the process-wide coarse clock unless
    /// [`clock`](RateLimiterBuilder::clock) says otherwise. `R` is the
    /// request type its named limiters look at.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::{Limit, RateLimiter};
    ///
    /// struct Request { user: u64 }
    ///
    /// let limiter = RateLimiter::<Request>::builder().clock(ManualClock::new()).build();
    /// limiter.for_name("api", |req: &Request| Limit::per_minute(1).by(req.user.to_string()));
    /// assert!(limiter.check("api", &Request { user: 7 })?.allowed());
    /// assert!(!limiter.check("api", &Request { user: 7 })?.allowed());
    /// # Ok::<(), conc_ratelimit::NamedError>(())
    /// ```
    pub fn builder() -> RateLimiterBuilder<R, CoarseClock> {
        RateLimiterBuilder { clock: default_clock(), request: PhantomData }
    }
}

impl<R, C: Clock> RateLimiterBuilder<R, C> {
    /// The clock windows open and close on. Defaults to the process-wide
    /// [`CoarseClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> RateLimiterBuilder<R, C2> {
        RateLimiterBuilder { clock, request: PhantomData }
    }

    /// Builds the limiter, with no named limiter defined yet. Nothing can be
    /// refused here: limits come with each check.
    pub fn build(self) -> RateLimiter<R, C> {
        RateLimiter {
            permitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| Mutex::new(Stripe::default())).collect(),
            hasher: FoldHash::new(),
            named: RwLock::new(HashMap::new()),
            time: Timeline::new(self.clock),
        }
    }
}

impl<R, C: Clone> Clone for RateLimiterBuilder<R, C> {
    fn clone(&self) -> Self {
        Self { clock: self.clock.clone(), request: PhantomData }
    }
}

impl<R, C: fmt::Debug> fmt::Debug for RateLimiterBuilder<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterBuilder").field("clock", &self.clock).finish()
    }
}
