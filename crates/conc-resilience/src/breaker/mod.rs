//! A circuit breaker: stops calling a dependency that keeps failing, then
//! probes it with a fixed number of calls before trusting it again.
//!
//! # Overview
//!
//! [`CircuitBreaker::try_acquire`] admits a call with a [`Permit`] or refuses it
//! with [`Rejected`] (which carries `retry_after`). The caller runs the call and
//! consumes the permit with [`success`](Permit::success),
//! [`failure`](Permit::failure), [`ignore`](Permit::ignore) or
//! [`record`](Permit::record). Dropping a permit without consuming it (a
//! cancelled future, a panic) records nothing and gives a half-open probe slot
//! back, so half-open can never be wedged by callers that went away.
//! [`CircuitBreaker::call`] wraps a future in exactly that.
//!
//! The breaker computes a failure rate, and optionally a slow-call rate, over a
//! [`SlidingWindow`] of the last N calls or the last T seconds, and opens when
//! either is **at least** its threshold once the window holds the minimum
//! number of calls. After the wait in open (fixed or growing with a
//! [`Backoff`](conc_core::backoff::Backoff)) it goes half-open on the next
//! call and admits exactly the permitted number of probes; their rates decide
//! between closing and opening again.
//!
//! The closed path is one atomic load to admit and, to record, one load, one
//! `fetch_add`, one `swap` and (only when the outcome replaced differs) one
//! more `fetch_add`: no lock, no allocation, no clock read unless slow calls
//! or a time window are configured.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{BreakerError, CircuitBreaker, SlidingWindow};
//!
//! # futures::executor::block_on(async {
//! let breaker = CircuitBreaker::builder()
//!     .sliding_window(SlidingWindow::count(20))
//!     .minimum_calls(5)
//!     .failure_rate_threshold(0.5)
//!     .wait_in_open(Duration::from_secs(10))
//!     .build()?;
//!
//! for _ in 0..5 {
//!     let result: Result<(), BreakerError<&str>> = breaker.call(async { Err("connection refused") }).await;
//!     assert!(matches!(result, Err(BreakerError::Inner(_))));
//! }
//! // Five failures out of five: open, and calls are refused without running.
//! match breaker.call(async { Ok::<_, &str>(()) }).await {
//!     Err(BreakerError::Rejected(rejected)) => assert!(rejected.retry_after().is_some()),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # Ok::<(), conc_resilience::ConfigError>(())
//! # }).unwrap();
//! ```

mod builder;
mod config;
mod core;
mod event;
mod metrics;
mod permit;
mod state;
pub(crate) mod window;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use builder::CircuitBreakerBuilder;
pub use config::{
    BreakerConfig, HalfOpenTimeout, MAX_HALF_OPEN_CALLS, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS,
    OpenWait, SlidingWindow,
};
pub use event::{BreakerEvent, TransitionReason};
pub use metrics::BreakerMetrics;
pub use permit::{OwnedPermit, Permit};
pub use state::BreakerState;

use conc_core::metrics::MetricsSource;

use self::core::Shared;
use crate::ConfigError;

/// How a call's outcome counts in the breaker's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Counts neither way; a half-open probe slot is given back.
    Ignore,
}

/// A call the breaker refused, with when to try again.
///
/// Cheap: two words, no allocation, no backtrace.
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder().build()?;
/// breaker.force_open();
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.state(), BreakerState::ForcedOpen);
/// assert_eq!(rejected.retry_after(), None);
/// assert_eq!(rejected.to_string(), "circuit breaker is forced-open");
/// # Ok::<(), conc_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub(crate) state: BreakerState,
    pub(crate) retry_after: Option<Duration>,
}

impl Rejected {
    /// The state that refused the call: open, forced open or half-open (all
    /// probes taken).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How long until the breaker admits probes, when known: the rest of the
    /// wait in open. `None` when forced open or half-open with every probe taken.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker is {}", self.state)?;
        if let Some(after) = self.retry_after {
            write!(f, "; retry after {after:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// The error of [`CircuitBreaker::call`]: a rejection, or the call's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// The breaker refused the call; the future was dropped without being polled.
    Rejected(Rejected),
    /// The call ran and failed.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The rejection, if the breaker refused the call.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            Self::Inner(_) => None,
        }
    }

    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Rejected(_) => None,
            Self::Inner(error) => Some(error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(rejected) => rejected.fmt(f),
            Self::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            Self::Inner(error) => Some(error),
        }
    }
}

/// A circuit breaker. Cheap to clone: clones share one state.
///
/// See the [module documentation](self) for the model and
/// [`CircuitBreakerBuilder`] for every setting and its default.
///
/// # Examples
///
/// ```
/// use conc_resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder().minimum_calls(1).build()?;
/// let permit = breaker.try_acquire()?;
/// permit.failure();
/// assert_eq!(breaker.state(), BreakerState::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl CircuitBreaker {
    /// A builder with Resilience4j's defaults (see [`CircuitBreakerBuilder`]).
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder::new()
    }

    /// Admits a call, or refuses it.
    ///
    /// In closed (and disabled, metrics-only) state this is one atomic load.
    /// In open it refuses until the wait has passed, then moves to half-open
    /// and admits the first probe. In half-open it admits exactly the
    /// permitted number of probes and refuses everyone else.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open, forced open, or half-open with
    /// every probe slot taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let (word, start, probe) = self.shared.acquire()?;
        Ok(Permit::new(&self.shared, word, start, probe))
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a
    /// handle to the breaker (for futures and services that outlive a borrow).
    ///
    /// # Errors
    ///
    /// [`Rejected`] as for [`try_acquire`](Self::try_acquire).
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        let (word, start, probe) = self.shared.acquire()?;
        Ok(OwnedPermit::new(Arc::clone(&self.shared), word, start, probe))
    }

    /// Runs `future` if the breaker admits it and records its result
    /// (classified with the builder's predicates).
    ///
    /// If the returned future is dropped before the call finishes, nothing is
    /// recorded and a half-open probe slot is given back.
    ///
    /// # Errors
    ///
    /// [`BreakerError::Rejected`] when refused (the future is dropped without
    /// being polled), [`BreakerError::Inner`] with the call's own error.
    pub async fn call<T, E, F>(&self, future: F) -> Result<T, BreakerError<E>>
    where
        F: IntoFuture<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        let permit = self.try_acquire().map_err(BreakerError::Rejected)?;
        let result = future.await;
        permit.record(&result);
        result.map_err(BreakerError::Inner)
    }

    /// The state now. An open breaker whose wait has passed reports (and
    /// moves to) half-open; a half-open one past its maximum wait moves on.
    pub fn state(&self) -> BreakerState {
        self.shared.state()
    }

    /// The name given to the builder, used in events, logs and metric labels.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// When the breaker admits probes again, if it is open.
    pub fn retry_after(&self) -> Option<Duration> {
        self.shared.retry_after()
    }

    /// A snapshot of the state and the window.
    pub fn metrics(&self) -> BreakerMetrics {
        self.shared.metrics()
    }

    /// The current settings.
    pub fn config(&self) -> BreakerConfig {
        self.shared.config()
    }

    /// Changes settings while the breaker runs, keeping the calls already
    /// in the window. The window's kind and size stay as built.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the bad setting; the breaker keeps its old
    /// settings then.
    pub fn update(&self, change: impl FnOnce(&mut BreakerConfig)) -> Result<(), ConfigError> {
        let mut config = self.shared.config();
        change(&mut config);
        config.validate()?;
        self.shared.update(config);
        Ok(())
    }

    /// Moves to closed with an empty window. No event if already closed.
    pub fn transition_to_closed(&self) {
        self.shared.transition_to(BreakerState::Closed);
    }

    /// Moves to open; the wait in open starts now. No event if already open.
    pub fn transition_to_open(&self) {
        self.shared.transition_to(BreakerState::Open);
    }

    /// Moves to half-open with fresh probe slots. No event if already half-open.
    pub fn transition_to_half_open(&self) {
        self.shared.transition_to(BreakerState::HalfOpen);
    }

    /// Admits every call and records nothing, until another transition.
    pub fn disable(&self) {
        self.shared.transition_to(BreakerState::Disabled);
    }

    /// Rejects every call, until another transition.
    pub fn force_open(&self) {
        self.shared.transition_to(BreakerState::ForcedOpen);
    }

    /// Admits and records every call and reports
    /// [`BreakerEvent::ThresholdExceeded`] instead of opening, until another
    /// transition. Starts with an empty window.
    pub fn metrics_only(&self) {
        self.shared.transition_to(BreakerState::MetricsOnly);
    }

    /// Back to closed with an empty window and the rejection count zeroed.
    pub fn reset(&self) {
        self.shared.reset();
    }
}

impl MetricsSource for CircuitBreaker {
    type Snapshot = BreakerMetrics;

    fn metrics(&self) -> BreakerMetrics {
        self.shared.metrics()
    }

    fn reset_metrics(&self) {
        self.shared.reset_counters();
    }
}
