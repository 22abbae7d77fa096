//! What a breaker reports to its subscribers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::state::BreakerState;

/// Why a breaker changed state.
///
/// Rates are ratios in `[0, 1]`.
///
/// # Examples
///
/// ```
/// use conc_resilience::TransitionReason;
///
/// let reason = TransitionReason::FailureRate { rate: 0.6, threshold: 0.5, calls: 10 };
/// assert_eq!(reason.to_string(), "failure rate 60.0% ≥ 50.0% over 10 calls");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TransitionReason {
    /// The failure rate over the window reached the threshold.
    FailureRate {
        /// The failure rate measured.
        rate: f64,
        /// The threshold it reached.
        threshold: f64,
        /// How many calls the rate was measured over.
        calls: u64,
    },
    /// The slow-call rate over the window reached the threshold.
    SlowCallRate {
        /// The slow-call rate measured.
        rate: f64,
        /// The threshold it reached.
        threshold: f64,
        /// How many calls the rate was measured over.
        calls: u64,
    },
    /// The wait in open passed; probes are next.
    WaitElapsed,
    /// The probes of half-open finished below both thresholds.
    ProbesPassed {
        /// The failure rate over the probes.
        failure_rate: f64,
        /// The slow-call rate over the probes.
        slow_rate: f64,
    },
    /// Half-open lasted its maximum wait without finishing its probes.
    HalfOpenTimedOut,
    /// Someone called a transition method.
    Manual,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FailureRate { rate, threshold, calls } => write!(
                f,
                "failure rate {:.1}% ≥ {:.1}% over {calls} calls",
                rate * 100.0,
                threshold * 100.0
            ),
            Self::SlowCallRate { rate, threshold, calls } => write!(
                f,
                "slow-call rate {:.1}% ≥ {:.1}% over {calls} calls",
                rate * 100.0,
                threshold * 100.0
            ),
            Self::WaitElapsed => f.write_str("wait in open elapsed"),
            Self::ProbesPassed { failure_rate, slow_rate } => write!(
                f,
                "probes passed: failure rate {:.1}%, slow-call rate {:.1}%",
                failure_rate * 100.0,
                slow_rate * 100.0
            ),
            Self::HalfOpenTimedOut => f.write_str("half-open reached its maximum wait"),
            Self::Manual => f.write_str("manual transition"),
        }
    }
}

/// Something that happened in a breaker, as handed to subscribers
/// ([`CircuitBreakerBuilder::on_event`](super::CircuitBreakerBuilder::on_event)).
///
/// Per-call events (`Success`, `Failure`, `Ignored`) are only produced when at
/// least one subscriber is registered, so a breaker without subscribers pays
/// nothing for them.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use conc_resilience::{BreakerEvent, BreakerState, CircuitBreaker};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let breaker = CircuitBreaker::builder()
///     .on_event(move |event| sink.lock().unwrap().push(event.clone()))
///     .build()?;
/// breaker.force_open();
/// assert!(matches!(
///     seen.lock().unwrap()[0],
///     BreakerEvent::StateTransition { from: BreakerState::Closed, to: BreakerState::ForcedOpen, .. }
/// ));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BreakerEvent {
    /// The state changed.
    StateTransition {
        /// The state left.
        from: BreakerState,
        /// The state entered.
        to: BreakerState,
        /// Why.
        reason: TransitionReason,
    },
    /// A call was refused.
    Rejected {
        /// The state that refused it.
        state: BreakerState,
        /// When calls may be admitted again, if known.
        retry_after: Option<Duration>,
    },
    /// A call was recorded as a success.
    Success {
        /// How long it took, when the breaker measured it.
        duration: Option<Duration>,
    },
    /// A call was recorded as a failure.
    Failure {
        /// How long it took, when the breaker measured it.
        duration: Option<Duration>,
    },
    /// A call's outcome was ignored: counted neither way.
    Ignored,
    /// In metrics-only state, a rate reached its threshold (the breaker would
    /// have opened).
    ThresholdExceeded {
        /// Which threshold, in the shape of a transition reason.
        reason: TransitionReason,
    },
}

/// A subscriber: called synchronously, outside every internal lock, on the
/// thread that caused the event. A panicking subscriber is caught and logged.
pub(crate) type Subscriber = Arc<dyn Fn(&BreakerEvent) + Send + Sync>;
