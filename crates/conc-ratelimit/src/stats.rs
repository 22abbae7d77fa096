//! Allowed / rejected / waiting counts of the direct limiters, kept so that
//! the hit path does not contend: each count is striped over cache-line
//! padded atomics, a stripe each live thread alone writes, summed
//! when a snapshot is taken.

use conc_core::metrics::StripedCounter;

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// The counts one limiter keeps.
#[derive(Debug)]
pub(crate) struct Stats {
    allowed: StripedCounter,
    rejected: StripedCounter,
    /// Callers waiting now: touched only when a caller starts or stops
    /// waiting (the slow path), so one word is enough.
    waiting: AtomicU64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            allowed: StripedCounter::new(),
            rejected: StripedCounter::new(),
            waiting: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn allowed(&self) {
        self.allowed.increment();
    }

    /// Counts a refusal, here and on the `metrics` facade.
    pub(crate) fn rejected(&self) {
        self.rejected.increment();
        metrics::counter!(conc_core::metrics::RATELIMIT_REJECTED).increment(1);
    }

    /// Counts `result`: admitted or refused.
    #[inline]
    pub(crate) fn record<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        self.count(result.is_ok());
        result
    }

    /// Counts one call: admitted or refused.
    #[inline]
    pub(crate) fn count(&self, allowed: bool) {
        if allowed { self.allowed() } else { self.rejected() }
    }

    /// Marks one caller as waiting until the returned guard drops.
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(conc_core::metrics::RATELIMIT_WAITING).increment(1.0);
        Waiting { stats: self }
    }

    pub(crate) fn snapshot(&self) -> LimiterMetrics {
        LimiterMetrics {
            allowed: self.allowed.sum(),
            rejected: self.rejected.sum(),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Resets the counts; the waiting gauge describes the present and stays.
    pub(crate) fn reset(&self) {
        self.allowed.reset();
        self.rejected.reset();
    }
}

/// One waiting caller; dropping it (on success, error or cancellation)
/// stops counting it.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    stats: &'a Stats,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(conc_core::metrics::RATELIMIT_WAITING).decrement(1.0);
    }
}

/// A snapshot of a direct limiter's counts ([`Gcra`](crate::Gcra),
/// [`TokenBucket`](crate::TokenBucket), [`SlidingWindow`](crate::SlidingWindow),
/// [`SlidingLog`](crate::SlidingLog), [`LeakyBucket`](crate::LeakyBucket)).
///
/// Counts are per call, not per unit: `try_acquire(5)` admitted is one
/// allowed call. A caller of `acquire` that has to wait counts as waiting
/// while it waits and as allowed once admitted, never as rejected; for a
/// [`LeakyBucket`](crate::LeakyBucket) the calls are enqueues.
///
/// # Examples
///
/// ```
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{Gcra, Quota};
///
/// let limiter = Gcra::builder(Quota::per_second(2)?).clock(ManualClock::new()).build();
/// let _ = limiter.try_acquire(2);
/// let _ = limiter.try_acquire(1);
/// let metrics = limiter.metrics();
/// assert_eq!((metrics.allowed, metrics.rejected, metrics.waiting), (1, 1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct LimiterMetrics {
    /// Calls admitted since creation (or the last reset).
    pub allowed: u64,
    /// Calls refused since creation (or the last reset).
    pub rejected: u64,
    /// Callers waiting for capacity now.
    pub waiting: u64,
}

impl conc_core::metrics::MetricsSnapshot for LimiterMetrics {
    fn entries(&self) -> Vec<conc_core::metrics::MetricEntry> {
        use conc_core::metrics::{
            MetricEntry, MetricValue, RATELIMIT_PERMITTED, RATELIMIT_REJECTED, RATELIMIT_WAITING,
        };
        vec![
            MetricEntry::new(RATELIMIT_PERMITTED, MetricValue::Count(self.allowed)),
            MetricEntry::new(RATELIMIT_REJECTED, MetricValue::Count(self.rejected)),
            MetricEntry::new(RATELIMIT_WAITING, MetricValue::Gauge(self.waiting as f64)),
        ]
    }
}

/// `MetricsSource` for a limiter type with a `stats: Stats` field (or at
/// the path given after the type, as in `SlidingLog<C> .inner.stats`).
macro_rules! metrics_source {
    ($ty:ident<$($param:ident),*> where $($bound:tt)*) => {
        $crate::stats::metrics_source!($ty<$($param),*> .stats where $($bound)*);
    };
    ($ty:ident<$($param:ident),*> $(.$field:ident)+ where $($bound:tt)*) => {
        impl<$($param),*> conc_core::metrics::MetricsSource for $crate::$ty<$($param),*>
        where
            $($bound)*
        {
            type Snapshot = $crate::LimiterMetrics;

            fn metrics(&self) -> $crate::LimiterMetrics {
                self$(.$field)+.snapshot()
            }

            /// Resets allowed and rejected; `waiting` describes the present.
            fn reset_metrics(&self) {
                self$(.$field)+.reset();
            }
        }
    };
}
pub(crate) use metrics_source;
