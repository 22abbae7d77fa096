//! Circuit breaker configuration: the window, thresholds and waits, validated
//! by [`CircuitBreakerBuilder::build`](super::CircuitBreakerBuilder::build) and
//! by [`CircuitBreaker::update`](super::CircuitBreaker::update).

use std::time::Duration;

use conc_core::backoff::Backoff;

use crate::ConfigError;

use super::state::BreakerState;

/// The largest count-based window: 1 048 575 calls.
pub const MAX_WINDOW_CALLS: u32 = (1 << 20) - 1;

/// The largest number of buckets of a time-based window.
pub const MAX_WINDOW_BUCKETS: u32 = 1024;

/// The largest number of probes permitted in half-open: 8 191.
pub const MAX_HALF_OPEN_CALLS: u32 = (1 << 13) - 1;

/// Which calls a breaker's failure and slow-call rates are computed over.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::SlidingWindow;
///
/// // The last 100 calls (the default).
/// let by_count = SlidingWindow::count(100);
/// // The calls of the last minute, in 60 one-second buckets.
/// let by_time = SlidingWindow::time(Duration::from_secs(60));
/// assert_ne!(by_count, by_time);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlidingWindow {
    /// The last `calls` recorded calls (Resilience4j's `COUNT_BASED`).
    Count {
        /// How many of the most recent calls are kept.
        calls: u32,
    },
    /// The calls recorded during the last `duration`, kept in `buckets`
    /// rolling buckets (Resilience4j's `TIME_BASED`, Polly's sampling duration).
    Time {
        /// How far back the window reaches.
        duration: Duration,
        /// How many buckets the duration is split into; a bucket drops out
        /// whole when it ages past the window.
        buckets: u32,
    },
}

impl SlidingWindow {
    /// A window over the last `calls` calls.
    pub const fn count(calls: u32) -> Self {
        Self::Count { calls }
    }

    /// A window over the last `duration`, one bucket per second when the
    /// duration is a whole number of seconds between 1 and 1024, else ten buckets.
    pub fn time(duration: Duration) -> Self {
        let secs = duration.as_secs();
        let buckets = if duration.subsec_nanos() == 0
            && (1..=u64::from(MAX_WINDOW_BUCKETS)).contains(&secs)
        {
            secs as u32
        } else {
            10
        };
        Self::Time { duration, buckets }
    }

    /// A window over the last `duration`, split into `buckets` buckets.
    pub const fn time_with_buckets(duration: Duration, buckets: u32) -> Self {
        Self::Time { duration, buckets }
    }

    pub(crate) fn validate(self) -> Result<(), ConfigError> {
        match self {
            Self::Count { calls: 0 } => Err(ConfigError::Zero { field: "sliding_window.calls" }),
            Self::Count { calls } if calls > MAX_WINDOW_CALLS => Err(ConfigError::TooLarge {
                field: "sliding_window.calls",
                value: u64::from(calls),
                max: u64::from(MAX_WINDOW_CALLS),
            }),
            Self::Count { .. } => Ok(()),
            Self::Time { buckets: 0, .. } => {
                Err(ConfigError::Zero { field: "sliding_window.buckets" })
            }
            Self::Time { buckets, .. } if buckets > MAX_WINDOW_BUCKETS => {
                Err(ConfigError::TooLarge {
                    field: "sliding_window.buckets",
                    value: u64::from(buckets),
                    max: u64::from(MAX_WINDOW_BUCKETS),
                })
            }
            Self::Time { duration, buckets } => {
                let min = Duration::from_millis(u64::from(buckets));
                let max = Duration::from_secs(365 * 24 * 3600);
                if duration < min || duration > max {
                    Err(ConfigError::DurationOutOfRange {
                        field: "sliding_window.duration",
                        value: duration,
                        min,
                        max,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Default for SlidingWindow {
    /// The last 100 calls.
    fn default() -> Self {
        Self::count(100)
    }
}

/// How long a breaker stays open before it lets probes through.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::OpenWait;
///
/// let fixed = OpenWait::Fixed(Duration::from_secs(30));
/// // 5 s the first time, 7.5 s when it re-opens straight from half-open, …
/// let growing = OpenWait::Backoff(Backoff::exponential(Duration::from_secs(5)).factor(1.5).build()?);
/// assert_ne!(format!("{fixed:?}"), format!("{growing:?}"));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OpenWait {
    /// The same wait every time.
    Fixed(Duration),
    /// A wait that grows with each consecutive opening: the `n`-th opening
    /// since the breaker was last closed waits the backoff's delay at index
    /// `n - 1` (jitter and cap included). A retry limit on the backoff is
    /// honoured by repeating its last delay.
    Backoff(Backoff),
}

impl OpenWait {
    /// The wait of the `opens`-th consecutive opening (1-based).
    pub(crate) fn wait(&self, opens: u32) -> Duration {
        match self {
            Self::Fixed(wait) => *wait,
            Self::Backoff(backoff) => {
                let mut index = opens.saturating_sub(1);
                if let Some(limit) = backoff.max_retries() {
                    index = index.min(limit.saturating_sub(1));
                }
                backoff.delays_from(index, None).next().unwrap_or_else(|| backoff.base_delay(index))
            }
        }
    }
}

/// Where a breaker goes when it has sat in half-open for
/// [`max_wait_in_half_open`](BreakerConfig::max_wait_in_half_open) without
/// finishing its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HalfOpenTimeout {
    /// Open again (Resilience4j's default).
    #[default]
    Open,
    /// Close.
    Closed,
}

/// The settings of a circuit breaker that can change while it runs.
///
/// Read with [`CircuitBreaker::config`](super::CircuitBreaker::config) and
/// change with [`CircuitBreaker::update`](super::CircuitBreaker::update), which
/// keeps the calls already in the window. The builder has the same setters.
///
/// | setting | default |
/// |---|---|
/// | [`failure_rate_threshold`](Self::failure_rate_threshold) | 0.5 (opens at ≥ 50 % failures) |
/// | [`slow_call`](Self::slow_call) | off |
/// | [`minimum_calls`](Self::minimum_calls) | 100 |
/// | [`permitted_calls_in_half_open`](Self::permitted_calls_in_half_open) | 10 |
/// | [`wait_in_open`](Self::wait_in_open) | fixed 60 s |
/// | [`max_wait_in_half_open`](Self::max_wait_in_half_open) | none (wait for the probes) |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder().minimum_calls(10).build()?;
/// breaker.update(|config| {
///     config.failure_rate_threshold(0.25).wait_in_open(Duration::from_secs(5));
/// })?;
/// assert_eq!(breaker.config().get_failure_rate_threshold(), 0.25);
/// # Ok::<(), conc_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub(crate) failure_rate: f64,
    pub(crate) slow_call: Option<(Duration, f64)>,
    pub(crate) minimum_calls: u32,
    pub(crate) half_open_calls: u32,
    pub(crate) wait_in_open: OpenWait,
    pub(crate) max_wait_in_half_open: Option<(Duration, HalfOpenTimeout)>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            slow_call: None,
            minimum_calls: 100,
            half_open_calls: 10,
            wait_in_open: OpenWait::Fixed(Duration::from_secs(60)),
            max_wait_in_half_open: None,
        }
    }
}

impl BreakerConfig {
    /// Opens when the failure rate over the window is at least `ratio` (in
    /// `(0, 1]`). Defaults to 0.5.
    pub fn failure_rate_threshold(&mut self, ratio: f64) -> &mut Self {
        self.failure_rate = ratio;
        self
    }

    /// Counts a call that took at least `duration` as slow, and opens when the
    /// slow-call rate is at least `ratio` (in `(0, 1]`). Off by default; when on,
    /// every call reads the clock twice.
    pub fn slow_call(&mut self, duration: Duration, ratio: f64) -> &mut Self {
        self.slow_call = Some((duration, ratio));
        self
    }

    /// Turns slow-call detection off.
    pub fn no_slow_call(&mut self) -> &mut Self {
        self.slow_call = None;
        self
    }

    /// How many calls the window must hold before rates are evaluated. For a
    /// count window, a value above the window's size means the size. Defaults to 100.
    pub fn minimum_calls(&mut self, calls: u32) -> &mut Self {
        self.minimum_calls = calls;
        self
    }

    /// Exactly how many probes half-open lets through; further callers are
    /// rejected. The rates over these probes decide between closing and
    /// opening again. Defaults to 10; at most [`MAX_HALF_OPEN_CALLS`].
    pub fn permitted_calls_in_half_open(&mut self, calls: u32) -> &mut Self {
        self.half_open_calls = calls;
        self
    }

    /// A fixed wait in open before half-open. Defaults to 60 s.
    pub fn wait_in_open(&mut self, wait: Duration) -> &mut Self {
        self.wait_in_open = OpenWait::Fixed(wait);
        self
    }

    /// A wait in open that grows with each consecutive opening; see [`OpenWait::Backoff`].
    pub fn wait_in_open_backoff(&mut self, backoff: Backoff) -> &mut Self {
        self.wait_in_open = OpenWait::Backoff(backoff);
        self
    }

    /// Leaves half-open for `target` when the probes have not finished after
    /// `wait`, so half-open can never wedge (probes whose callers vanished
    /// without dropping their permit). Off by default.
    pub fn max_wait_in_half_open(&mut self, wait: Duration, target: HalfOpenTimeout) -> &mut Self {
        self.max_wait_in_half_open = Some((wait, target));
        self
    }

    /// The failure-rate threshold.
    pub fn get_failure_rate_threshold(&self) -> f64 {
        self.failure_rate
    }

    /// The slow-call duration and rate threshold, if slow calls are detected.
    pub fn get_slow_call(&self) -> Option<(Duration, f64)> {
        self.slow_call
    }

    /// The minimum number of calls.
    pub fn get_minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// The number of probes permitted in half-open.
    pub fn get_permitted_calls_in_half_open(&self) -> u32 {
        self.half_open_calls
    }

    /// The wait in open.
    pub fn get_wait_in_open(&self) -> &OpenWait {
        &self.wait_in_open
    }

    /// The maximum wait in half-open and where the breaker goes after it.
    pub fn get_max_wait_in_half_open(&self) -> Option<(Duration, HalfOpenTimeout)> {
        self.max_wait_in_half_open
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_ratio("failure_rate_threshold", self.failure_rate)?;
        if let Some((duration, ratio)) = self.slow_call {
            check_ratio("slow_call.ratio", ratio)?;
            if duration.is_zero() {
                return Err(ConfigError::ZeroDuration { field: "slow_call.duration" });
            }
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::Zero { field: "minimum_calls" });
        }
        if self.half_open_calls == 0 {
            return Err(ConfigError::Zero { field: "permitted_calls_in_half_open" });
        }
        if self.half_open_calls > MAX_HALF_OPEN_CALLS {
            return Err(ConfigError::TooLarge {
                field: "permitted_calls_in_half_open",
                value: u64::from(self.half_open_calls),
                max: u64::from(MAX_HALF_OPEN_CALLS),
            });
        }
        if let OpenWait::Fixed(wait) = self.wait_in_open
            && wait.is_zero()
        {
            return Err(ConfigError::ZeroDuration { field: "wait_in_open" });
        }
        if let Some((wait, _)) = self.max_wait_in_half_open
            && wait.is_zero()
        {
            return Err(ConfigError::ZeroDuration { field: "max_wait_in_half_open" });
        }
        Ok(())
    }
}

/// Checks that `value` is in `(0, 1]`.
pub(crate) fn check_ratio(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::InvalidRatio { field, value })
    }
}

/// A ratio in parts per million, for integer threshold comparisons.
pub(crate) fn ppm(ratio: f64) -> u64 {
    (ratio * 1_000_000.0).round() as u64
}

/// The state a breaker starts in.
pub(crate) fn initial_state_ok(state: BreakerState) -> bool {
    !matches!(state, BreakerState::HalfOpen)
}
