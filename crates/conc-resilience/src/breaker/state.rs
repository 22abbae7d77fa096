//! The states of a breaker and the packed state word.

use std::fmt;

/// The state of a circuit breaker.
///
/// ```text
///            failure or slow rate ≥ threshold
///   Closed ─────────────────────────────────▶ Open
///     ▲                                        │ wait in open elapsed
///     │ probes below thresholds                ▼
///     └──────────────────────────────────── HalfOpen ──▶ Open (probes at or above thresholds)
/// ```
///
/// `Disabled`, `ForcedOpen` and `MetricsOnly` are entered and left only by hand.
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder().initial_state(BreakerState::Disabled).build()?;
/// assert_eq!(breaker.state(), BreakerState::Disabled);
/// assert!(BreakerState::Disabled.admits_calls());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls are admitted and recorded.
    Closed,
    /// Calls are rejected until the wait in open has passed.
    Open,
    /// A fixed number of probes are admitted; their outcome decides.
    HalfOpen,
    /// Every call is admitted and nothing is recorded.
    Disabled,
    /// Every call is rejected.
    ForcedOpen,
    /// Every call is admitted and recorded; the breaker reports when it
    /// would have opened but never does.
    MetricsOnly,
}

impl BreakerState {
    pub(crate) const fn code(self) -> u64 {
        match self {
            Self::Closed => CLOSED,
            Self::Open => OPEN,
            Self::HalfOpen => HALF_OPEN,
            Self::Disabled => DISABLED,
            Self::ForcedOpen => FORCED_OPEN,
            Self::MetricsOnly => METRICS_ONLY,
        }
    }

    pub(crate) const fn from_code(code: u64) -> Self {
        match code {
            CLOSED => Self::Closed,
            OPEN => Self::Open,
            HALF_OPEN => Self::HalfOpen,
            DISABLED => Self::Disabled,
            FORCED_OPEN => Self::ForcedOpen,
            _ => Self::MetricsOnly,
        }
    }

    /// The number the `conc.resilience.breaker.state` gauge reports:
    /// 0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, 5 metrics only.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::BreakerState;
    ///
    /// assert_eq!(BreakerState::HalfOpen.gauge_value(), 2.0);
    /// ```
    pub const fn gauge_value(self) -> f64 {
        self.code() as f64
    }

    /// Whether calls are admitted in this state (half-open admits a limited number).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::BreakerState;
    ///
    /// assert!(!BreakerState::ForcedOpen.admits_calls());
    /// assert!(BreakerState::HalfOpen.admits_calls());
    /// ```
    pub const fn admits_calls(self) -> bool {
        !matches!(self, Self::Open | Self::ForcedOpen)
    }

    /// A short lowercase name: `closed`, `open`, `half-open`, `disabled`,
    /// `forced-open`, `metrics-only`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::BreakerState;
    ///
    /// assert_eq!(BreakerState::MetricsOnly.as_str(), "metrics-only");
    /// assert_eq!(BreakerState::Open.to_string(), "open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced-open",
            Self::MetricsOnly => "metrics-only",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) const CLOSED: u64 = 0;
pub(crate) const OPEN: u64 = 1;
pub(crate) const HALF_OPEN: u64 = 2;
pub(crate) const DISABLED: u64 = 3;
pub(crate) const FORCED_OPEN: u64 = 4;
pub(crate) const METRICS_ONLY: u64 = 5;

/// The state word: a generation that grows on every transition, and the state code.
pub(crate) const fn pack(generation: u64, code: u64) -> u64 {
    (generation << 8) | code
}

pub(crate) const fn code_of(word: u64) -> u64 {
    word & 0xff
}

pub(crate) const fn generation_of(word: u64) -> u64 {
    word >> 8
}
