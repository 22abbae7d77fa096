//! The circuit breaker builder.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::time::Clock;

use super::config::{BreakerConfig, HalfOpenTimeout, SlidingWindow, initial_state_ok};
use super::core::{ErrorClassifier, Parts, Shared};
use super::event::{BreakerEvent, Subscriber};
use super::state::BreakerState;
use super::window::{CountWindow, TimeWindow, Window};
use super::{CircuitBreaker, Outcome};
use crate::ConfigError;
use crate::time::TimeSource;

/// Builds a [`CircuitBreaker`]. Defaults follow Resilience4j:
///
/// | setting | default |
/// |---|---|
/// | [`sliding_window`](Self::sliding_window) | count, last 100 calls |
/// | [`failure_rate_threshold`](Self::failure_rate_threshold) | 0.5 (opens at ≥ 50 %) |
/// | [`slow_call`](Self::slow_call) | off |
/// | [`minimum_calls`](Self::minimum_calls) | 100 |
/// | [`permitted_calls_in_half_open`](Self::permitted_calls_in_half_open) | 10 |
/// | [`wait_in_open`](Self::wait_in_open) | fixed 60 s |
/// | [`max_wait_in_half_open`](Self::max_wait_in_half_open) | none |
/// | error classification | every `Err` is a failure, every `Ok` a success |
/// | [`initial_state`](Self::initial_state) | closed |
/// | [`clock`](Self::clock) | [`CoarseClock::global()`](conc_core::time::CoarseClock::global) |
/// | [`name`](Self::name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{CircuitBreaker, SlidingWindow};
///
/// let breaker = CircuitBreaker::builder()
///     .name("payments")
///     .sliding_window(SlidingWindow::time(Duration::from_secs(30)))
///     .minimum_calls(20)
///     .failure_rate_threshold(0.5)
///     .slow_call(Duration::from_secs(2), 0.8)
///     .wait_in_open_backoff(
///         Backoff::exponential(Duration::from_secs(5)).max_delay(Duration::from_secs(300)).build()?,
///     )
///     .permitted_calls_in_half_open(3)
///     .ignore_error_if(|error: &std::io::Error| error.kind() == std::io::ErrorKind::NotFound)
///     .build()?;
/// assert_eq!(breaker.name(), "payments");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct CircuitBreakerBuilder {
    config: BreakerConfig,
    window: SlidingWindow,
    clock: Option<TimeSource>,
    subscribers: Vec<Subscriber>,
    error_classifiers: Vec<ErrorClassifier>,
    result_classifiers: Vec<ErrorClassifier>,
    name: Arc<str>,
    initial: BreakerState,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("config", &self.config)
            .field("window", &self.window)
            .field("clock", &self.clock)
            .field("subscribers", &self.subscribers.len())
            .field("error_classifiers", &self.error_classifiers.len())
            .field("result_classifiers", &self.result_classifiers.len())
            .field("name", &self.name)
            .field("initial", &self.initial)
            .finish()
    }
}

impl Default for CircuitBreakerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self {
            config: BreakerConfig::default(),
            window: SlidingWindow::default(),
            clock: None,
            subscribers: Vec::new(),
            error_classifiers: Vec::new(),
            result_classifiers: Vec::new(),
            name: Arc::from("default"),
            initial: BreakerState::Closed,
        }
    }

    /// The window rates are computed over. Defaults to the last 100 calls.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.window = window;
        self
    }

    /// Opens at a failure rate of at least `ratio`, in `(0, 1]`. Defaults to 0.5.
    pub fn failure_rate_threshold(mut self, ratio: f64) -> Self {
        self.config.failure_rate_threshold(ratio);
        self
    }

    /// Counts calls taking at least `duration` as slow and opens at a
    /// slow-call rate of at least `ratio`. Off by default; when on, each call
    /// reads the clock twice.
    pub fn slow_call(mut self, duration: Duration, ratio: f64) -> Self {
        self.config.slow_call(duration, ratio);
        self
    }

    /// Calls the window must hold before rates count. Defaults to 100.
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls(calls);
        self
    }

    /// Exactly how many probes half-open admits. Defaults to 10.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open(calls);
        self
    }

    /// A fixed wait in open. Defaults to 60 s.
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open(wait);
        self
    }

    /// A wait in open growing with consecutive openings (see
    /// [`OpenWait::Backoff`](super::OpenWait::Backoff)).
    pub fn wait_in_open_backoff(mut self, backoff: Backoff) -> Self {
        self.config.wait_in_open_backoff(backoff);
        self
    }

    /// Leaves half-open for `target` when its probes have not finished
    /// within `wait`. Off by default.
    pub fn max_wait_in_half_open(mut self, wait: Duration, target: HalfOpenTimeout) -> Self {
        self.config.max_wait_in_half_open(wait, target);
        self
    }

    /// Replaces every setting of [`BreakerConfig`] at once.
    pub fn config(mut self, config: BreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Classifies errors of type `E` with `classify` (used by
    /// [`Permit::record`](super::Permit::record) and
    /// [`CircuitBreaker::call`]). Classifiers are tried in the order added; the
    /// first one for the error's type decides. Errors no classifier knows are failures.
    pub fn classify_error<E: 'static>(
        mut self,
        classify: impl Fn(&E) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.error_classifiers
            .push(Arc::new(move |error: &dyn Any| error.downcast_ref::<E>().map(&classify)));
        self
    }

    /// Errors of type `E` matching `predicate` count neither way
    /// (Resilience4j's `ignoreExceptions`).
    pub fn ignore_error_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_classifiers.push(Arc::new(move |error: &dyn Any| {
            error.downcast_ref::<E>().and_then(|error| predicate(error).then_some(Outcome::Ignore))
        }));
        self
    }

    /// Only errors of type `E` matching `predicate` are failures; other
    /// errors of that type count as successes (Resilience4j's
    /// `recordExceptions`). Add [`ignore_error_if`](Self::ignore_error_if)
    /// first for errors that must count neither way.
    pub fn record_error_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_classifiers.push(Arc::new(move |error: &dyn Any| {
            error
                .downcast_ref::<E>()
                .map(|error| if predicate(error) { Outcome::Failure } else { Outcome::Success })
        }));
        self
    }

    /// `Ok` values of type `T` matching `predicate` count as failures
    /// (Resilience4j's `recordResult`), such as an HTTP 503 returned as a value.
    pub fn failure_if_result<T: 'static>(
        mut self,
        predicate: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.result_classifiers.push(Arc::new(move |value: &dyn Any| {
            value.downcast_ref::<T>().and_then(|value| predicate(value).then_some(Outcome::Failure))
        }));
        self
    }

    /// Calls `subscriber` with every [`BreakerEvent`], synchronously, outside
    /// every internal lock. A panicking subscriber is caught and logged.
    /// Without subscribers no per-call event is built.
    pub fn on_event(mut self, subscriber: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// The name used in events, logs and metric labels. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    /// The state to start in: closed (the default), open (the wait starts at
    /// build), disabled, forced open or metrics only. Half-open is refused.
    pub fn initial_state(mut self, state: BreakerState) -> Self {
        self.initial = state;
        self
    }

    /// The clock that decides waits, windows and slow calls. Defaults to
    /// [`CoarseClock::global()`](conc_core::time::CoarseClock::global) (one atomic load per read, 1 ms resolution);
    /// tests pass a [`ManualClock`](conc_core::time::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(TimeSource::new(clock));
        self
    }

    /// Validates the settings and builds the breaker.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad setting.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate()?;
        self.window.validate()?;
        if !initial_state_ok(self.initial) {
            return Err(ConfigError::InvalidState {
                field: "initial_state",
                value: self.initial.as_str(),
            });
        }
        let window = match self.window {
            SlidingWindow::Count { calls } => Window::Count(CountWindow::new(calls)),
            SlidingWindow::Time { duration, buckets } => Window::Time(TimeWindow::new(
                u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
                buckets,
            )),
        };
        let clock = self.clock.unwrap_or_default();
        let shared = Shared::new(Parts {
            config: self.config,
            window,
            clock,
            subscribers: self.subscribers,
            error_classifiers: self.error_classifiers,
            result_classifiers: self.result_classifiers,
            name: self.name,
            initial: self.initial,
        });
        Ok(CircuitBreaker { shared: Arc::new(shared) })
    }
}
