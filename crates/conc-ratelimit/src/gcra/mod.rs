//! [`Gcra`]: the generic cell rate algorithm on one atomic word.

mod builder;
mod cell;
mod rate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use conc_core::time::{Clock, CoarseClock, Timeline};

pub use builder::GcraBuilder;
pub(crate) use cell::{CellRef, GcraCell, Params, wait_for};
pub(crate) use rate::reset_after;

use crate::stats::{Stats, metrics_source};
use crate::{Decision, LimiterMetrics, Quota, RateLimitError, wait};

/// A rate limiter using the generic cell rate algorithm (GCRA): the default.
///
/// Its whole state is one `AtomicU64` holding the *theoretical arrival time*
/// (TAT) of the next request. A check reads the clock, computes the new TAT
/// and publishes it with one compare-and-swap; a refusal writes nothing. It
/// behaves like a token bucket with continuous refill: up to
/// [`burst`](Quota::burst) at once, then one per
/// [`emission interval`](Quota::emission_interval).
///
/// Time comes from a [`Clock`]: the process-wide [`CoarseClock`] by default
/// (one atomic load, 1 ms resolution), a
/// [`ManualClock`](conc_core::time::ManualClock) in tests, or
/// [`TokioClock`](crate::TokioClock) to follow tokio's paused time, given to
/// [`GcraBuilder::clock`]. A clock that steps backwards is clamped to the highest reading seen, so it never
/// panics and never refuses a request that an earlier reading would admit.
///
/// # Burst semantics
///
/// With `burst = B` and emission interval `T`, a request for `n` units at
/// `now` is admitted when `max(tat, now) + n·T − B·T ≤ now`. This admits B at
/// once from rest (governor's `check_n` and `redis_rate` agree; redis-cell's
/// `max_burst = M` is `B = M + 1`, see [`Quota::redis_cell`]). Over any window
/// `w`, at most `B + ⌊w / T⌋` units pass.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Gcra, Quota, RateLimitError};
///
/// let clock = ManualClock::new();
/// let limiter = Gcra::builder(Quota::per_second(2)?).clock(clock.clone()).build();
///
/// assert!(limiter.try_acquire(2).is_ok()); // the whole burst
/// assert_eq!(
///     limiter.try_acquire(1),
///     Err(RateLimitError::Limited { retry_after: Duration::from_millis(500) })
/// );
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.try_acquire(1).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Gcra<C = CoarseClock> {
    cell: GcraCell,
    params: Params,
    quota: Quota,
    time: Timeline<C>,
    stats: Stats,
}

impl Gcra<CoarseClock> {
    /// A limiter for `quota` on the process-wide coarse clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_ratelimit::{Gcra, Quota};
    ///
    /// let limiter = Gcra::new(Quota::per_second(100)?);
    /// assert!(limiter.try_acquire(1).is_ok());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::builder(quota).build()
    }
}

impl<C: Clock> Gcra<C> {
    /// Takes `n` units now, all or nothing.
    ///
    /// `n = 0` always succeeds and changes nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the exact wait after which the same
    /// call would succeed (if nothing else takes the capacity first);
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    #[inline]
    pub fn try_acquire(&self, n: u32) -> Result<(), RateLimitError> {
        self.stats.record(self.charge(n))
    }

    /// [`try_acquire`](Self::try_acquire) without counting.
    // Always inlined, so that the caller builds the `Result` where it uses
    // it. Returned from an out-of-line call, the 16-byte value was read back
    // whole before the narrower stores that wrote it had landed: a
    // store-forwarding stall that took half of `ratelimit/direct_1t`'s time
    // (perf). The cell's refused path stays out of line
    // (`CellRef::charge_again`), so what is inlined is small.
    #[allow(clippy::inline_always, reason = "measured: the hint alone leaves it out of line")]
    #[inline(always)]
    fn charge(&self, n: u32) -> Result<(), RateLimitError> {
        let cost = self.params.cost(n)?;
        self.params.charge(CellRef::Shared(&self.cell), self.time.now(), || self.time.now(), cost)
    }

    /// A snapshot of the calls allowed, rejected and waiting now.
    pub fn metrics(&self) -> LimiterMetrics {
        self.stats.snapshot()
    }

    /// Takes `n` units like [`try_acquire`](Self::try_acquire) and reports
    /// the outcome as a [`Decision`] named `policy`, ready to render as
    /// response headers: limit = burst, window = the time a full burst takes
    /// to replenish.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::{Gcra, Quota};
    ///
    /// let limiter = Gcra::builder(Quota::per_minute(60)?).clock(ManualClock::new()).build();
    /// let decision = limiter.decide("api", 1)?;
    /// assert!(decision.allowed());
    /// assert_eq!(decision.ietf_limit(), "\"api\";r=59;t=1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decide(&self, policy: &str, n: u32) -> Result<Decision, RateLimitError> {
        let cost = self.params.cost(n)?;
        let now = self.time.now();
        let outcome = self.params.charge_for_decision(CellRef::Shared(&self.cell), now, cost);
        Ok(self.params.decision(policy, now, outcome, &self.stats))
    }

    /// Waits until `n` units can be taken, then takes them.
    ///
    /// Cancellation-safe: nothing is reserved while waiting, so dropping the
    /// future consumes nothing. Waiters are not queued: when capacity returns,
    /// whichever waiter checks first gets it.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst
    /// (it would wait forever); never `Limited`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_ratelimit::{Gcra, Quota, TokioClock};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = Gcra::builder(Quota::per_second(10)?).clock(TokioClock).build();
    /// let started = tokio::time::Instant::now();
    /// limiter.acquire(10).await?;
    /// limiter.acquire(5).await?;
    /// assert_eq!(started.elapsed(), std::time::Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, n: u32) -> Result<(), RateLimitError> {
        wait::until_ready(Some(&self.stats), || self.charge(n)).await
    }

    /// Takes as many units as are available now, up to `max`, and at least
    /// one; returns how many were taken. For draining work in batches sized
    /// to what the limit allows.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] when not even one unit is available, with
    /// the wait for one. `max = 0` returns `Ok(0)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::{Gcra, Quota};
    ///
    /// let limiter = Gcra::builder(Quota::per_second(5)?).clock(ManualClock::new()).build();
    /// assert_eq!(limiter.try_acquire_batch(3)?, 3);
    /// assert_eq!(limiter.try_acquire_batch(100)?, 2);
    /// assert!(limiter.try_acquire_batch(1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire_batch(&self, max: u32) -> Result<u32, RateLimitError> {
        if max == 0 {
            return Ok(0);
        }
        self.stats.record(self.params.charge_up_to(
            CellRef::Shared(&self.cell),
            self.time.now(),
            max,
        ))
    }

    /// Units that could be taken at once now.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::{Gcra, Quota};
    ///
    /// let limiter = Gcra::builder(Quota::per_minute(60)?).clock(ManualClock::new()).build();
    /// limiter.try_acquire(45)?;
    /// assert_eq!(limiter.remaining(), 15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining(&self) -> u32 {
        self.params.remaining(self.cell.tat(), self.time.now())
    }

    /// How long until `n` units could be taken, without taking them
    /// (`Duration::ZERO` when they could be taken now).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    pub fn retry_after(&self, n: u32) -> Result<Duration, RateLimitError> {
        self.params.retry_after(self.cell.tat(), self.time.now(), n)
    }

    /// How long until the limiter is fully replenished (the whole burst available).
    pub fn reset_after(&self) -> Duration {
        reset_after(self.cell.tat(), self.time.now())
    }

    /// Forgets every charge: the whole burst is available again.
    pub fn reset(&self) {
        self.cell.reset();
    }

    /// The most units one call can take: the burst.
    pub fn capacity(&self) -> u32 {
        self.quota.burst()
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        self.time.clock()
    }
}

metrics_source!(Gcra<C> where C: Clock);

impl<C: Clock> fmt::Debug for Gcra<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gcra")
            .field("quota", &self.quota)
            .field("tat_ns", &self.cell.tat())
            .field("clock", self.time.clock())
            .finish_non_exhaustive()
    }
}
