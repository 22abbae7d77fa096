//! The public face [`SlidingWindow`](crate::SlidingWindow) and
//! [`SlidingLog`](crate::SlidingLog) share, written once.

/// Writes, for a sliding limiter `$ty` whose `inner` field is a
/// `Sliding<_, C>`: its builder `$builder` (the limit and window given to
/// `builder`, the clock set on it), the short constructor `new`, the limiter
/// methods over the core, `MetricsSource` and `Debug`. `$admits` completes
/// "a limiter admitting …" in their docs.
macro_rules! sliding_limiter {
    ($ty:ident, $builder:ident, $admits:literal) => {
        #[doc = concat!("Builds a [`", stringify!($ty), "`]; see [`", stringify!($ty), "::builder`].")]
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// use conc_core::time::ManualClock;
        #[doc = concat!("use conc_ratelimit::", stringify!($ty), ";")]
        ///
        /// let clock = ManualClock::new();
        #[doc = concat!("let limiter = ", stringify!($ty), "::builder(2, Duration::from_secs(1))")]
        ///     .clock(clock.clone())
        ///     .build()?;
        /// limiter.try_acquire(2)?;
        /// assert!(limiter.try_acquire(1).is_err());
        /// clock.advance(Duration::from_secs(2));
        /// assert_eq!(limiter.remaining(), 2);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[derive(Debug, Clone)]
        #[must_use = "a builder does nothing until `build` is called"]
        pub struct $builder<C = conc_core::time::CoarseClock> {
            limit: u32,
            window: std::time::Duration,
            clock: C,
        }

        impl $ty<conc_core::time::CoarseClock> {
            #[doc = concat!("A limiter admitting ", $admits, ", on the process-wide coarse clock.")]
            ///
            /// # Errors
            ///
            /// A [`ConfigError`](conc_core::config::ConfigError) naming
            /// `limit` (zero) or `window` (zero, or past about 584 years).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use conc_ratelimit::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let limiter = ", stringify!($ty), "::new(100, Duration::from_secs(60))?;")]
            /// assert_eq!(limiter.capacity(), 100);
            #[doc = concat!("let refused = ", stringify!($ty), "::new(0, Duration::from_secs(60)).unwrap_err();")]
            /// assert_eq!(refused.field, "limit");
            /// # Ok::<(), conc_core::config::ConfigError>(())
            /// ```
            pub fn new(
                limit: u32,
                window: std::time::Duration,
            ) -> Result<Self, conc_core::config::ConfigError> {
                Self::builder(limit, window).build()
            }

            #[doc = concat!("A builder for a limiter admitting ", $admits, ", on the")]
            /// process-wide coarse clock unless
            #[doc = concat!("[`clock`](", stringify!($builder), "::clock) says otherwise.")]
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use conc_ratelimit::{", stringify!($ty), ", TokioClock};")]
            ///
            /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
            #[doc = concat!("let limiter = ", stringify!($ty), "::builder(1, Duration::from_secs(1))")]
            ///     .clock(TokioClock)
            ///     .build()?;
            /// let started = tokio::time::Instant::now();
            /// limiter.acquire(1).await?;
            /// limiter.acquire(1).await?; // waits on tokio's paused clock
            /// assert!(started.elapsed() > Duration::ZERO);
            /// # Ok(()) }
            /// ```
            pub fn builder(limit: u32, window: std::time::Duration) -> $builder {
                $builder { limit, window, clock: $crate::time::default_clock() }
            }
        }

        impl<C: conc_core::time::Clock> $builder<C> {
            /// The clock the window slides on. Defaults to the process-wide
            /// [`CoarseClock`](conc_core::time::CoarseClock).
            pub fn clock<C2: conc_core::time::Clock>(self, clock: C2) -> $builder<C2> {
                $builder { limit: self.limit, window: self.window, clock }
            }

            /// Validates the settings and builds the limiter.
            ///
            /// # Errors
            ///
            /// A [`ConfigError`](conc_core::config::ConfigError) naming
            /// `limit` (zero) or `window` (zero, or past about 584 years).
            pub fn build(self) -> Result<$ty<C>, conc_core::config::ConfigError> {
                Ok($ty { inner: super::Sliding::new(self.limit, self.window, self.clock)? })
            }
        }

        impl<C: conc_core::time::Clock> $ty<C> {
            /// Takes `n` units now, all or nothing (`n = 0` always succeeds).
            ///
            /// # Errors
            ///
            /// [`RateLimitError::Limited`](crate::RateLimitError::Limited)
            /// with the exact wait until `n` fit (if nothing else is taken
            /// meanwhile); [`RateLimitError::ExceedsCapacity`](crate::RateLimitError::ExceedsCapacity)
            /// when `n > limit`.
            pub fn try_acquire(&self, n: u32) -> Result<(), $crate::RateLimitError> {
                self.inner.try_acquire(n)
            }

            /// Waits until `n` units can be taken, then takes them.
            /// Cancellation-safe: a dropped wait takes nothing.
            ///
            /// # Errors
            ///
            /// [`RateLimitError::ExceedsCapacity`](crate::RateLimitError::ExceedsCapacity)
            /// when `n > limit`; never `Limited`.
            pub async fn acquire(&self, n: u32) -> Result<(), $crate::RateLimitError> {
                self.inner.acquire(n).await
            }

            /// Takes as many units as fit now, up to `max` and at least one;
            /// returns how many (`max = 0` returns `Ok(0)`).
            ///
            /// # Errors
            ///
            /// [`RateLimitError::Limited`](crate::RateLimitError::Limited)
            /// with the wait for one unit.
            pub fn try_acquire_batch(&self, max: u32) -> Result<u32, $crate::RateLimitError> {
                self.inner.try_acquire_batch(max)
            }

            /// Units that fit now.
            pub fn remaining(&self) -> u32 {
                self.inner.remaining()
            }

            /// How long until `n` units fit, if nothing else is taken meanwhile.
            ///
            /// # Errors
            ///
            /// [`RateLimitError::ExceedsCapacity`](crate::RateLimitError::ExceedsCapacity)
            /// when `n > limit`.
            pub fn retry_after(&self, n: u32) -> Result<std::time::Duration, $crate::RateLimitError> {
                self.inner.retry_after(n)
            }

            /// How long until no earlier admission counts any more.
            pub fn reset_after(&self) -> std::time::Duration {
                self.inner.reset_after()
            }

            /// Forgets every admission.
            pub fn reset(&self) {
                self.inner.reset();
            }

            /// The most units one call can take: the limit.
            pub fn capacity(&self) -> u32 {
                self.inner.limit
            }

            /// A snapshot of the calls allowed, rejected and waiting now.
            pub fn metrics(&self) -> $crate::LimiterMetrics {
                self.inner.stats.snapshot()
            }
        }

        $crate::stats::metrics_source!($ty<C> .inner.stats where C: conc_core::time::Clock);

        impl<C: conc_core::time::Clock> std::fmt::Debug for $ty<C> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.debug(stringify!($ty), f)
            }
        }
    };
}

pub(super) use sliding_limiter;
