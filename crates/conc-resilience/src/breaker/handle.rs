//! [`CircuitBreaker`]: the breaker, and the tower service it becomes around
//! an inner service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::config::ConfigError;
use conc_core::metrics::MetricsSource;

use super::builder::CircuitBreakerBuilder;
use super::classify::{Classify, ErrIsFailure};
use super::config::BreakerConfig;
use super::core::Shared;
use super::error::{BreakerError, Rejected};
use super::metrics::BreakerMetrics;
use super::permit::{OwnedPermit, Permit};
use super::state::BreakerState;
use crate::readiness::Readiness;

/// A circuit breaker. Cheap to clone: clones share one state.
///
/// `CircuitBreaker` (that is, `CircuitBreaker<(), ErrIsFailure>`) is the
/// breaker on its own: [`try_acquire`](Self::try_acquire) a permit, or
/// [`call`](CircuitBreaker::call) a future. With the `tower` feature a
/// `CircuitBreakerLayer` turns an inner service
/// `S` into a `CircuitBreaker<S, C>`: a tower `Service` guarded by the same
/// shared state, with every method of the breaker. `C` is the
/// [`Classify`] policy deciding how results count.
///
/// See the [module documentation](super) for the model and
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
pub struct CircuitBreaker<S = (), C = ErrIsFailure> {
    pub(super) shared: Arc<Shared>,
    pub(super) classify: C,
    pub(super) inner: S,
    /// What the service's `poll_ready` decided for its next call (tower only).
    pub(super) ready: Readiness<Rejected>,
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreaker<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.shared.state())
            .field("shared", &self.shared)
            .field("inner", &self.inner)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreaker<S, C> {
    /// A clone shares the breaker's state, but not what this instance's
    /// `poll_ready` decided.
    fn clone(&self) -> Self {
        Self::from_parts(Arc::clone(&self.shared), self.classify.clone(), self.inner.clone())
    }
}

impl CircuitBreaker {
    /// A builder with Resilience4j's defaults (see [`CircuitBreakerBuilder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder::new()
    }
}

impl<C> CircuitBreaker<(), C> {
    /// Runs `future` if the breaker admits it and records its result as the
    /// [`Classify`] policy counts it.
    ///
    /// If the returned future is dropped before the call finishes, nothing is
    /// recorded and a half-open probe slot is given back.
    ///
    /// # Errors
    ///
    /// [`BreakerError::Rejected`] when refused (the future is dropped without
    /// being polled), [`BreakerError::Inner`] with the call's own error.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{BreakerError, CircuitBreaker};
    ///
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::builder().build()?;
    /// assert_eq!(breaker.call(async { Ok::<_, &str>(7) }).await, Ok(7));
    /// breaker.force_open();
    /// let refused = breaker.call(async { Ok::<_, &str>(7) }).await;
    /// assert!(matches!(refused, Err(BreakerError::Rejected(_))));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn call<T, E, F>(&self, future: F) -> Result<T, BreakerError<E>>
    where
        F: IntoFuture<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        let permit = self.try_acquire().map_err(BreakerError::Rejected)?;
        let result = future.await;
        permit.record(&result);
        result.map_err(BreakerError::Inner)
    }
}

impl<S, C> CircuitBreaker<S, C> {
    pub(crate) fn from_parts(shared: Arc<Shared>, classify: C, inner: S) -> Self {
        Self { shared, classify, inner, ready: Readiness::Unpolled }
    }

    /// The same breaker (one shared state) around `inner`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<T>(&self, inner: T) -> CircuitBreaker<T, C>
    where
        C: Clone,
    {
        CircuitBreaker::from_parts(Arc::clone(&self.shared), self.classify.clone(), inner)
    }

    /// The same breaker (one shared state), counting results with `classify`
    /// instead: for another call site whose results have other types.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{CallOutcome, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(1).build()?;
    /// // HTTP statuses returned as values: a 5xx counts as a failure.
    /// let http = breaker.clone().classify(|result: &Result<u16, std::io::Error>| match result {
    ///     Ok(status) if *status >= 500 => CallOutcome::Failure,
    ///     other => CallOutcome::of(other),
    /// });
    /// http.try_acquire()?.record(&Ok(503));
    /// assert_eq!(breaker.metrics().failed_calls, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn classify<D>(self, classify: D) -> CircuitBreaker<S, D> {
        CircuitBreaker::from_parts(self.shared, classify, self.inner)
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
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// let permit = breaker.try_acquire()?;
    /// permit.record(&Ok::<u32, std::io::Error>(200));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_, C>, Rejected> {
        let admission = self.shared.acquire()?;
        Ok(Permit::new(&self.shared, &self.classify, admission))
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a
    /// handle to the breaker (for futures and services that outlive a borrow).
    ///
    /// # Errors
    ///
    /// [`Rejected`] as for [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// let permit = breaker.try_acquire_owned()?;
    /// std::thread::spawn(move || permit.success()).join().unwrap();
    /// assert_eq!(breaker.metrics().calls, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit<C>, Rejected>
    where
        C: Clone,
    {
        let admission = self.shared.acquire()?;
        Ok(OwnedPermit::new(Arc::clone(&self.shared), self.classify.clone(), admission))
    }

    /// The state now. An open breaker whose wait has passed reports (and
    /// moves to) half-open; a half-open one past its maximum wait moves on.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// assert_eq!(breaker.state(), BreakerState::ForcedOpen);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn state(&self) -> BreakerState {
        self.shared.state()
    }

    /// The name given to the builder, used in events, logs and metric labels.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// assert_eq!(CircuitBreaker::builder().name("db").build()?.name(), "db");
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// When the breaker admits probes again, if it is open.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::ManualClock;
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder()
    ///     .wait_in_open(Duration::from_secs(30))
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// assert_eq!(breaker.retry_after(), None);
    /// breaker.transition_to_open();
    /// assert_eq!(breaker.retry_after(), Some(Duration::from_secs(30)));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.shared.retry_after()
    }

    /// A snapshot of the state and the window.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.try_acquire()?.success();
    /// assert_eq!(breaker.metrics().calls, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> BreakerMetrics {
        self.shared.metrics()
    }

    /// The current settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(7).build()?;
    /// assert_eq!(breaker.config().minimum_calls, 7);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.update(|config| { config.minimum_calls(10); })?;
    /// assert!(breaker.update(|config| { config.minimum_calls(0); }).is_err());
    /// assert_eq!(breaker.config().minimum_calls, 10);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn update(&self, change: impl FnOnce(&mut BreakerConfig)) -> Result<(), ConfigError> {
        let mut config = self.shared.config();
        change(&mut config);
        config.validate()?;
        self.shared.update(config);
        Ok(())
    }

    /// Moves to closed with an empty window. No event if already closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.transition_to_open();
    /// breaker.transition_to_closed();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn transition_to_closed(&self) {
        self.shared.transition_to(BreakerState::Closed);
    }

    /// Moves to open; the wait in open starts now. No event if already open.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.transition_to_open();
    /// assert!(breaker.try_acquire().is_err());
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn transition_to_open(&self) {
        self.shared.transition_to(BreakerState::Open);
    }

    /// Moves to half-open with fresh probe slots. No event if already half-open.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().permitted_calls_in_half_open(1).build()?;
    /// breaker.transition_to_half_open();
    /// let probe = breaker.try_acquire()?;
    /// assert!(probe.is_probe());
    /// assert!(breaker.try_acquire().is_err(), "one probe only");
    /// # drop(probe);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transition_to_half_open(&self) {
        self.shared.transition_to(BreakerState::HalfOpen);
    }

    /// Admits every call and records nothing, until another transition.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(1).build()?;
    /// breaker.disable();
    /// breaker.try_acquire()?.failure();
    /// assert!(breaker.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disable(&self) {
        self.shared.transition_to(BreakerState::Disabled);
    }

    /// Rejects every call, until another transition.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), None);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn force_open(&self) {
        self.shared.transition_to(BreakerState::ForcedOpen);
    }

    /// Admits and records every call and reports
    /// [`BreakerEvent::ThresholdExceeded`](super::BreakerEvent::ThresholdExceeded)
    /// instead of opening, until another transition. Starts with an empty window.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(1).build()?;
    /// breaker.metrics_only();
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), BreakerState::MetricsOnly);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics_only(&self) {
        self.shared.transition_to(BreakerState::MetricsOnly);
    }

    /// Back to closed with an empty window and the rejection count zeroed.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// let _ = breaker.try_acquire();
    /// breaker.reset();
    /// assert_eq!(breaker.metrics().not_permitted, 0);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn reset(&self) {
        self.shared.reset();
    }
}

impl<S, C> MetricsSource for CircuitBreaker<S, C> {
    type Snapshot = BreakerMetrics;

    fn metrics(&self) -> BreakerMetrics {
        self.shared.metrics()
    }

    fn reset_metrics(&self) {
        self.shared.reset_counters();
    }
}
