//! A retry budget: retries allowed as a fraction of recent first attempts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::time::Clock;

use crate::ConfigError;
use crate::breaker::window::{CALL, FAIL, TimeWindow};
use crate::time::TimeSource;

/// Caps retries at a fraction of recent traffic, so a struggling dependency
/// is not hit by a retry storm (Finagle's and tower's retry budget).
///
/// Over the last `ttl`, the budget allows
/// `floor(min_per_second × ttl_seconds + retry_ratio × first_attempts)` retries.
/// The maths is exact in integers (parts per million), so a ratio of 0.6
/// with 10 first attempts allows exactly 6 retries, never 10 (tower#857).
/// Clones share one budget; share it across the retries of one dependency.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::RetryBudget;
///
/// let budget = RetryBudget::builder().ttl(Duration::from_secs(1)).min_per_second(0).retry_ratio(0.6).build()?;
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// let allowed = (0..10).filter(|_| budget.try_withdraw()).count();
/// assert_eq!(allowed, 6);
/// # Ok::<(), conc_resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    window: TimeWindow,
    bucket_nanos: u64,
    reserve_ppm: u64,
    ratio_ppm: u64,
    clock: TimeSource,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("reserve_ppm", &self.inner.reserve_ppm)
            .field("ratio_ppm", &self.inner.ratio_ppm)
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Builds a [`RetryBudget`]. Defaults follow tower's `TpsBudget`:
///
/// | setting | default |
/// |---|---|
/// | [`ttl`](Self::ttl) | 10 s |
/// | [`min_per_second`](Self::min_per_second) | 10 |
/// | [`retry_ratio`](Self::retry_ratio) | 0.2 |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct RetryBudgetBuilder {
    ttl: Duration,
    min_per_second: u32,
    ratio: f64,
    clock: Option<TimeSource>,
}

impl RetryBudgetBuilder {
    /// How far back first attempts and retries count, 1 s to 60 s. Defaults to 10 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Retries per second always allowed, whatever the traffic. Defaults to 10.
    pub fn min_per_second(mut self, min: u32) -> Self {
        self.min_per_second = min;
        self
    }

    /// Retries allowed per first attempt, at least 0 and at most 1000. Defaults to 0.2.
    pub fn retry_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// The clock that ages the window. Defaults to [`CoarseClock::global()`](conc_core::time::CoarseClock::global).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(TimeSource::new(clock));
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a `ttl` outside 1–60 s or a ratio outside 0–1000.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        if !(min..=max).contains(&self.ttl) {
            return Err(ConfigError::DurationOutOfRange {
                field: "ttl",
                value: self.ttl,
                min,
                max,
            });
        }
        if !(self.ratio.is_finite() && (0.0..=1000.0).contains(&self.ratio)) {
            return Err(ConfigError::NumberOutOfRange {
                field: "retry_ratio",
                value: self.ratio,
                min: 0.0,
                max: 1000.0,
            });
        }
        let ttl_nanos = u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX);
        let buckets = 10;
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                window: TimeWindow::new(ttl_nanos, buckets),
                bucket_nanos: ttl_nanos / u64::from(buckets),
                // min_per_second × ttl, in millionths: min × ttl_µs.
                reserve_ppm: u64::from(self.min_per_second) * (ttl_nanos / 1_000),
                ratio_ppm: (self.ratio * 1_000_000.0).round() as u64,
                clock: self.clock.unwrap_or_default(),
            }),
        })
    }
}

impl RetryBudget {
    /// A builder with tower's defaults.
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            ttl: Duration::from_secs(10),
            min_per_second: 10,
            ratio: 0.2,
            clock: None,
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// Records a first attempt, which earns `retry_ratio` of a retry.
    pub fn deposit(&self) {
        self.inner.window.record(self.now(), CALL);
    }

    /// Spends one retry if the budget has one.
    ///
    /// Callers racing for the last retry can each see it free, so the budget
    /// can be exceeded by at most the number of concurrent withdrawals.
    pub fn try_withdraw(&self) -> bool {
        let now = self.now();
        if self.remaining_at(now) == 0 {
            return false;
        }
        self.inner.window.record(now, CALL | FAIL);
        true
    }

    /// Retries the budget would allow now.
    pub fn remaining(&self) -> u64 {
        self.remaining_at(self.now())
    }

    fn remaining_at(&self, now: u64) -> u64 {
        let totals = self.inner.window.totals(now / self.inner.bucket_nanos.max(1));
        let withdrawals = totals.failures;
        let deposits = totals.calls - withdrawals;
        let earned = u128::from(self.inner.reserve_ppm)
            + u128::from(self.inner.ratio_ppm) * u128::from(deposits);
        let allowed = u64::try_from(earned / 1_000_000).unwrap_or(u64::MAX);
        allowed.saturating_sub(withdrawals)
    }
}
