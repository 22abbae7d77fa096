//! Circuit breaker configuration: the window, thresholds and waits, validated
//! by [`CircuitBreakerBuilder::build`](super::CircuitBreakerBuilder::build) and
//! by [`CircuitBreaker::update`](super::CircuitBreaker::update).

use std::time::Duration;

use conc_core::backoff::Backoff;

use conc_core::config::{self, ConfigError};

use super::state::BreakerState;

/// The largest count-based window: 1 048 575 calls.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, FailureWindow, breaker::MAX_WINDOW_CALLS};
///
/// let too_big = FailureWindow::count(MAX_WINDOW_CALLS + 1);
/// assert!(CircuitBreaker::builder().sliding_window(too_big).build().is_err());
/// ```
pub const MAX_WINDOW_CALLS: u32 = (1 << 20) - 1;

/// The largest number of buckets of a time-based window.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{CircuitBreaker, FailureWindow, breaker::MAX_WINDOW_BUCKETS};
///
/// let window = FailureWindow::time_with_buckets(Duration::from_secs(60), MAX_WINDOW_BUCKETS + 1);
/// assert!(CircuitBreaker::builder().sliding_window(window).build().is_err());
/// ```
pub const MAX_WINDOW_BUCKETS: u32 = 1024;

/// The longest time-based window: 365 days.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{CircuitBreaker, FailureWindow, breaker::MAX_WINDOW_DURATION};
///
/// let window = FailureWindow::time(MAX_WINDOW_DURATION + Duration::from_secs(1));
/// assert!(CircuitBreaker::builder().sliding_window(window).build().is_err());
/// ```
pub const MAX_WINDOW_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest number of probes permitted in half-open: 8 191.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, breaker::MAX_HALF_OPEN_CALLS};
///
/// assert!(CircuitBreaker::builder().permitted_calls_in_half_open(MAX_HALF_OPEN_CALLS).build().is_ok());
/// assert!(CircuitBreaker::builder().permitted_calls_in_half_open(MAX_HALF_OPEN_CALLS + 1).build().is_err());
/// ```
pub const MAX_HALF_OPEN_CALLS: u32 = (1 << 13) - 1;

/// Which calls a breaker's failure and slow-call rates are computed over.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::FailureWindow;
///
/// // The last 100 calls (the default).
/// let by_count = FailureWindow::count(100);
/// // The calls of the last minute, in 60 one-second buckets.
/// let by_time = FailureWindow::time(Duration::from_secs(60));
/// assert_ne!(by_count, by_time);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureWindow {
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

impl FailureWindow {
    /// A window over the last `calls` calls, 1 to [`MAX_WINDOW_CALLS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::FailureWindow;
    ///
    /// assert_eq!(FailureWindow::count(50), FailureWindow::Count { calls: 50 });
    /// ```
    pub const fn count(calls: u32) -> Self {
        Self::Count { calls }
    }

    /// A window over the last `duration`, one bucket per second when the
    /// duration is a whole number of seconds between 1 and 1024, else ten buckets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::FailureWindow;
    ///
    /// let window = FailureWindow::time(Duration::from_secs(30));
    /// assert_eq!(window, FailureWindow::Time { duration: Duration::from_secs(30), buckets: 30 });
    /// ```
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

    /// A window over the last `duration`, split into `buckets` buckets (1
    /// to [`MAX_WINDOW_BUCKETS`], each at least a millisecond long).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::FailureWindow;
    ///
    /// let window = FailureWindow::time_with_buckets(Duration::from_secs(2), 20);
    /// assert_eq!(window, FailureWindow::Time { duration: Duration::from_secs(2), buckets: 20 });
    /// ```
    pub const fn time_with_buckets(duration: Duration, buckets: u32) -> Self {
        Self::Time { duration, buckets }
    }

    pub(crate) fn validate(self) -> Result<(), ConfigError> {
        match self {
            Self::Count { calls } => {
                config::at_least("sliding_window.calls", calls, 1)?;
                config::at_most("sliding_window.calls", calls, MAX_WINDOW_CALLS)?;
            }
            Self::Time { duration, buckets } => {
                config::at_least("sliding_window.buckets", buckets, 1)?;
                config::at_most("sliding_window.buckets", buckets, MAX_WINDOW_BUCKETS)?;
                let min = Duration::from_millis(u64::from(buckets));
                config::between("sliding_window.duration", duration, min, MAX_WINDOW_DURATION)?;
            }
        }
        Ok(())
    }
}

impl Default for FailureWindow {
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
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_resilience::{BreakerState, CircuitBreaker, HalfOpenTimeout};
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::builder()
///     .max_wait_in_half_open(Duration::from_secs(10), HalfOpenTimeout::Closed)
///     .clock(clock.clone())
///     .build()?;
/// breaker.transition_to_half_open();
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
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
/// change with [`CircuitBreaker::update`](super::CircuitBreaker::update),
/// which validates the result and keeps the calls already in the window. Each
/// field has a chainable setter of the same name; the builder has the same
/// setters.
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
/// assert_eq!(breaker.config().failure_rate_threshold, 0.25);
/// assert_eq!(breaker.config().minimum_calls, 10);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Opens when the failure rate over the window is at least this, in `(0, 1]`.
    pub failure_rate_threshold: f64,
    /// The duration from which a call is slow and the slow-call rate that
    /// opens, when slow calls are detected.
    pub slow_call: Option<(Duration, f64)>,
    /// Calls the window must hold before rates are evaluated.
    pub minimum_calls: u32,
    /// Exactly how many probes half-open admits.
    pub permitted_calls_in_half_open: u32,
    /// How long the breaker stays open before half-open.
    pub wait_in_open: OpenWait,
    /// How long half-open may last without finishing its probes, and where
    /// the breaker goes then.
    pub max_wait_in_half_open: Option<(Duration, HalfOpenTimeout)>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 0.5,
            slow_call: None,
            minimum_calls: 100,
            permitted_calls_in_half_open: 10,
            wait_in_open: OpenWait::Fixed(Duration::from_secs(60)),
            max_wait_in_half_open: None,
        }
    }
}

impl BreakerConfig {
    /// Opens when the failure rate over the window is at least `ratio` (in
    /// `(0, 1]`). Defaults to 0.5.
    pub fn failure_rate_threshold(&mut self, ratio: f64) -> &mut Self {
        self.failure_rate_threshold = ratio;
        self
    }

    /// Counts a call that took at least `duration` as slow, and opens when the
    /// slow-call rate is at least `ratio` (in `(0, 1]`). Off by default; when on,
    /// every call reads the clock twice.
    pub fn slow_call(&mut self, duration: Duration, ratio: f64) -> &mut Self {
        self.slow_call = Some((duration, ratio));
        self
    }

    /// Turns slow-call detection off (the default).
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
        self.permitted_calls_in_half_open = calls;
        self
    }

    /// A fixed wait in open before half-open. Defaults to 60 s.
    pub fn wait_in_open(&mut self, wait: Duration) -> &mut Self {
        self.wait_in_open = OpenWait::Fixed(wait);
        self
    }

    /// A wait in open that grows with each consecutive opening; see
    /// [`OpenWait::Backoff`]. Defaults to a fixed 60 s.
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

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_ratio("failure_rate_threshold", self.failure_rate_threshold)?;
        if let Some((duration, ratio)) = self.slow_call {
            check_ratio("slow_call.ratio", ratio)?;
            config::positive("slow_call.duration", duration)?;
        }
        config::at_least("minimum_calls", self.minimum_calls, 1)?;
        config::at_least("permitted_calls_in_half_open", self.permitted_calls_in_half_open, 1)?;
        config::at_most(
            "permitted_calls_in_half_open",
            self.permitted_calls_in_half_open,
            MAX_HALF_OPEN_CALLS,
        )?;
        if let OpenWait::Fixed(wait) = self.wait_in_open {
            config::positive("wait_in_open", wait)?;
        }
        if let Some((wait, _)) = self.max_wait_in_half_open {
            config::positive("max_wait_in_half_open", wait)?;
        }
        Ok(())
    }
}

/// `value` when it is in `(0, 1]`, else a [`ConfigError`] saying so.
pub(crate) fn check_ratio(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(ConfigError::new(field, value, "must be above 0 and at most 1"))
    }
}

/// A ratio in parts per million, for integer threshold comparisons.
pub(crate) fn ppm(ratio: f64) -> u64 {
    (ratio * 1_000_000.0).round() as u64
}

/// Refuses a state a breaker cannot start in.
pub(crate) fn check_initial_state(state: BreakerState) -> Result<BreakerState, ConfigError> {
    if state == BreakerState::HalfOpen {
        Err(ConfigError::new("initial_state", state, "must not be half-open"))
    } else {
        Ok(state)
    }
}
