//! A retry budget: retries allowed as a fraction of recent first attempts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use conc_core::time::{Clock, Timeline, saturating_nanos};

use crate::breaker::window::{CALL, FAIL, TimeWindow};
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::time::{SharedClock, timeline};

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
/// # Ok::<(), conc_core::config::ConfigError>(())
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
    refused: AtomicU64,
    clock: Timeline<SharedClock>,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("reserve_ppm", &self.inner.reserve_ppm)
            .field("ratio_ppm", &self.inner.ratio_ppm)
            .field("metrics", &self.metrics())
            .field("clock", &self.inner.clock)
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
/// | [`clock`](Self::clock) | [`CoarseClock::global()`](conc_core::time::CoarseClock::global) |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::RetryBudget;
///
/// let budget = RetryBudget::builder().ttl(Duration::from_secs(5)).min_per_second(2).build()?;
/// assert_eq!(budget.remaining(), 10, "2 per second over 5 s, before any traffic");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct RetryBudgetBuilder {
    ttl: Duration,
    min_per_second: u32,
    ratio: f64,
    clock: Option<SharedClock>,
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
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a `ttl` outside 1–60 s or a ratio outside 0–1000.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        config::between("ttl", self.ttl, Duration::from_secs(1), Duration::from_secs(60))?;
        config::between("retry_ratio", self.ratio, 0.0, 1000.0)?;
        let ttl_nanos = saturating_nanos(self.ttl);
        let buckets = 10;
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                window: TimeWindow::new(ttl_nanos, buckets),
                bucket_nanos: ttl_nanos / u64::from(buckets),
                // min_per_second × ttl, in millionths: min × ttl_µs.
                reserve_ppm: u64::from(self.min_per_second) * (ttl_nanos / 1_000),
                ratio_ppm: (self.ratio * 1_000_000.0).round() as u64,
                refused: AtomicU64::new(0),
                clock: timeline(self.clock),
            }),
        })
    }
}

impl RetryBudget {
    /// A builder with tower's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::RetryBudget;
    ///
    /// assert_eq!(RetryBudget::builder().build()?.remaining(), 100, "10 per second over 10 s");
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().min_per_second(0).retry_ratio(1.0).build()?;
    /// budget.deposit();
    /// assert_eq!(budget.remaining(), 1);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn deposit(&self) {
        self.inner.window.record(self.now(), CALL);
    }

    /// Spends one retry if the budget has one.
    ///
    /// Callers racing for the last retry can each see it free, so the budget
    /// can be exceeded by at most the number of concurrent withdrawals.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().min_per_second(0).build()?;
    /// assert!(!budget.try_withdraw(), "no traffic, no reserve: no retry");
    /// assert_eq!(budget.metrics().refused, 1);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn try_withdraw(&self) -> bool {
        let now = self.now();
        if self.remaining_at(now) == 0 {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.inner.window.record(now, CALL | FAIL);
        true
    }

    /// Retries the budget would allow now.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().build()?;
    /// assert!(budget.try_withdraw());
    /// assert_eq!(budget.remaining(), 99);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
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

    /// What the budget holds now: first attempts and retries in the window,
    /// retries left, and withdrawals refused so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().build()?;
    /// budget.deposit();
    /// assert!(budget.try_withdraw());
    /// let metrics = budget.metrics();
    /// assert_eq!((metrics.first_attempts, metrics.retries), (1, 1));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn metrics(&self) -> RetryBudgetMetrics {
        let now = self.now();
        let totals = self.inner.window.totals(now / self.inner.bucket_nanos.max(1));
        RetryBudgetMetrics {
            first_attempts: totals.calls - totals.failures,
            retries: totals.failures,
            remaining: self.remaining_at(now),
            refused: self.inner.refused.load(Ordering::Relaxed),
        }
    }
}

/// What a [`RetryBudget`] holds at one moment.
///
/// # Examples
///
/// ```
/// use conc_resilience::RetryBudget;
///
/// let metrics = RetryBudget::builder().build()?.metrics();
/// assert_eq!((metrics.first_attempts, metrics.retries, metrics.remaining), (0, 0, 100));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RetryBudgetMetrics {
    /// First attempts deposited within the window.
    pub first_attempts: u64,
    /// Retries withdrawn within the window.
    pub retries: u64,
    /// Retries the budget allows now.
    pub remaining: u64,
    /// Withdrawals refused since the budget was built or its metrics reset.
    pub refused: u64,
}

impl MetricsSnapshot for RetryBudgetMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("first_attempts", MetricValue::Count(self.first_attempts)),
            MetricEntry::new("retries", MetricValue::Count(self.retries)),
            MetricEntry::new("remaining", MetricValue::Count(self.remaining)),
            MetricEntry::new("refused", MetricValue::Count(self.refused)),
        ]
    }
}

impl MetricsSource for RetryBudget {
    type Snapshot = RetryBudgetMetrics;

    fn metrics(&self) -> RetryBudgetMetrics {
        RetryBudget::metrics(self)
    }

    fn reset_metrics(&self) {
        self.inner.refused.store(0, Ordering::Relaxed);
    }
}
