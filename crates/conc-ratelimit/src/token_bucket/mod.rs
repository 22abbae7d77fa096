//! [`TokenBucket`]: a bucket of `capacity` tokens refilled by `refill` tokens
//! every `interval`, in one atomic word.

mod builder;
mod cell;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use conc_core::time::{Clock, CoarseClock, Timeline};

pub use builder::TokenBucketBuilder;
use cell::TokenCell;

use crate::stats::{Stats, metrics_source};
use crate::time::ns;
use crate::{LimiterMetrics, RateLimitError, wait};

/// A token bucket with a discrete refill: `refill` tokens are added every
/// `interval`, never beyond `capacity`.
///
/// Unlike [`Gcra`](crate::Gcra) (a continuous refill), tokens arrive in
/// steps at exact multiples of `interval` after the bucket was built, which is
/// what "10 tokens every second" usually means. The whole state is one
/// `AtomicU64` updated by compare-and-swap; a refusal writes nothing.
///
/// Burst: the bucket starts full by default, so `capacity` requests may pass
/// at once. [`initial`](TokenBucketBuilder::initial)`(0)` starts it empty (no
/// burst at start), and `capacity == refill` keeps it from accumulating more
/// than one interval's worth (no burst ever).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{RateLimitError, TokenBucket};
///
/// let clock = ManualClock::new();
/// let bucket = TokenBucket::builder()
///     .capacity(10)
///     .refill(5)
///     .interval(Duration::from_secs(1))
///     .clock(clock.clone())
///     .build()?;
///
/// bucket.try_acquire(10)?;
/// assert_eq!(
///     bucket.try_acquire(3),
///     Err(RateLimitError::Limited { retry_after: Duration::from_secs(1) })
/// );
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(bucket.remaining(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenBucket<C = CoarseClock> {
    cell: TokenCell,
    capacity: u64,
    refill: u64,
    interval: u64,
    time: Timeline<C>,
    stats: Stats,
}

impl<C: Clock> TokenBucket<C> {
    /// Takes `n` tokens now, all or nothing (`n = 0` always succeeds).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the wait until the refill that makes
    /// `n` available; [`RateLimitError::ExceedsCapacity`] when `n > capacity`.
    #[inline]
    pub fn try_acquire(&self, n: u32) -> Result<(), RateLimitError> {
        self.stats.record(self.take(n))
    }

    /// A snapshot of the calls allowed, rejected and waiting now.
    pub fn metrics(&self) -> LimiterMetrics {
        self.stats.snapshot()
    }

    /// [`try_acquire`](Self::try_acquire) without counting.
    #[inline]
    fn take(&self, n: u32) -> Result<(), RateLimitError> {
        self.check(n)?;
        let now = self.time.now();
        let supply = self.supply(now);
        match self.cell.take(supply, self.capacity, n.into()) {
            Ok(_) => Ok(()),
            Err(missing) => {
                Err(RateLimitError::Limited { retry_after: self.wait_for(now, missing) })
            }
        }
    }

    /// Waits until `n` tokens are available, then takes them.
    /// Cancellation-safe: a dropped wait takes nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n > capacity`.
    pub async fn acquire(&self, n: u32) -> Result<(), RateLimitError> {
        wait::until_ready(Some(&self.stats), || self.take(n)).await
    }

    /// Takes every token available now, up to `max` and at least one;
    /// returns how many (`max = 0` returns `Ok(0)`).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] with the wait for the next refill when empty.
    pub fn try_acquire_batch(&self, max: u32) -> Result<u32, RateLimitError> {
        if max == 0 {
            return Ok(0);
        }
        let now = self.time.now();
        self.stats.record(match self.cell.take_up_to(self.supply(now), self.capacity, max.into()) {
            Ok(taken) => Ok(taken as u32),
            Err(missing) => {
                Err(RateLimitError::Limited { retry_after: self.wait_for(now, missing) })
            }
        })
    }

    /// Tokens in the bucket now.
    pub fn remaining(&self) -> u32 {
        let now = self.time.now();
        self.cell.level(self.supply(now), self.capacity) as u32
    }

    /// How long until `n` tokens are available, without taking them.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n > capacity`.
    pub fn retry_after(&self, n: u32) -> Result<Duration, RateLimitError> {
        self.check(n)?;
        let now = self.time.now();
        let level = self.cell.level(self.supply(now), self.capacity);
        Ok(self.wait_for(now, u64::from(n).saturating_sub(level)))
    }

    /// How long until the bucket is full.
    pub fn reset_after(&self) -> Duration {
        let now = self.time.now();
        let level = self.cell.level(self.supply(now), self.capacity);
        self.wait_for(now, self.capacity - level)
    }

    /// Fills the bucket.
    pub fn reset(&self) {
        self.cell.set(0);
    }

    /// Most tokens the bucket holds.
    pub fn capacity(&self) -> u32 {
        self.capacity as u32
    }

    fn check(&self, n: u32) -> Result<(), RateLimitError> {
        if u64::from(n) > self.capacity {
            return Err(RateLimitError::ExceedsCapacity {
                requested: n,
                capacity: self.capacity as u32,
            });
        }
        Ok(())
    }

    /// Tokens made available by `now` on the absolute scale.
    #[inline]
    fn supply(&self, now: u64) -> u64 {
        self.capacity.saturating_add(self.refill.saturating_mul(now / self.interval))
    }

    /// The wait from `now` until `missing` more tokens have been refilled.
    fn wait_for(&self, now: u64, missing: u64) -> Duration {
        if missing == 0 {
            return Duration::ZERO;
        }
        let ticks = missing.div_ceil(self.refill);
        let next_tick = (now / self.interval).saturating_add(ticks);
        ns(next_tick.saturating_mul(self.interval).saturating_sub(now))
    }
}

metrics_source!(TokenBucket<C> where C: Clock);

impl<C: Clock> fmt::Debug for TokenBucket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("capacity", &self.capacity)
            .field("refill", &self.refill)
            .field("interval", &ns(self.interval))
            .field("drawn", &self.cell.drawn())
            .finish_non_exhaustive()
    }
}
