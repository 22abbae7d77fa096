//! The circuit breaker builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, saturating_nanos};

use super::CircuitBreaker;
use super::classify::ErrIsFailure;
use super::config::{BreakerConfig, FailureWindow, HalfOpenTimeout, check_initial_state};
use super::core::{Parts, Shared};
use super::event::{BreakerEvent, Subscriber};
use super::state::BreakerState;
use super::window::{CountWindow, TimeWindow, Window};
use crate::time::{SharedClock, timeline};

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
/// | [`classify`](Self::classify) | [`ErrIsFailure`]: every `Err` a failure, every `Ok` a success |
/// | [`initial_state`](Self::initial_state) | closed |
/// | [`clock`](Self::clock) | [`CoarseClock::global()`](conc_core::time::CoarseClock::global) |
/// | [`name`](Self::name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{CallOutcome, CircuitBreaker, FailureWindow};
///
/// let breaker = CircuitBreaker::builder()
///     .name("payments")
///     .sliding_window(FailureWindow::time(Duration::from_secs(30)))
///     .minimum_calls(20)
///     .failure_rate_threshold(0.5)
///     .slow_call(Duration::from_secs(2), 0.8)
///     .wait_in_open_backoff(
///         Backoff::exponential(Duration::from_secs(5)).max_delay(Duration::from_secs(300)).build()?,
///     )
///     .permitted_calls_in_half_open(3)
///     .classify(|result: &Result<String, std::io::Error>| match result {
///         Err(error) if error.kind() == std::io::ErrorKind::NotFound => CallOutcome::Ignore,
///         other => CallOutcome::of(other),
///     })
///     .build()?;
/// assert_eq!(breaker.name(), "payments");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct CircuitBreakerBuilder<C = ErrIsFailure> {
    config: BreakerConfig,
    window: FailureWindow,
    clock: Option<SharedClock>,
    subscribers: Vec<Subscriber>,
    classify: C,
    name: String,
    initial: BreakerState,
}

impl<C> fmt::Debug for CircuitBreakerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("config", &self.config)
            .field("window", &self.window)
            .field("clock", &self.clock)
            .field("subscribers", &self.subscribers.len())
            .field("name", &self.name)
            .field("initial", &self.initial)
            .finish_non_exhaustive()
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
            window: FailureWindow::default(),
            clock: None,
            subscribers: Vec::new(),
            classify: ErrIsFailure,
            name: "default".to_owned(),
            initial: BreakerState::Closed,
        }
    }
}

impl<C> CircuitBreakerBuilder<C> {
    /// The window rates are computed over. Defaults to the last 100 calls.
    pub fn sliding_window(mut self, window: FailureWindow) -> Self {
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
    /// [`OpenWait::Backoff`](super::OpenWait::Backoff)). Defaults to a fixed 60 s.
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

    /// Replaces every setting of [`BreakerConfig`] at once. Defaults to
    /// [`BreakerConfig::default()`].
    pub fn config(mut self, config: BreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// How results count: a [`Classify`](super::Classify) policy for the
    /// calls this breaker guards, used by
    /// [`Permit::record`](super::Permit::record),
    /// [`CircuitBreaker::call`] and the tower service. Defaults to
    /// [`ErrIsFailure`].
    pub fn classify<D>(self, classify: D) -> CircuitBreakerBuilder<D> {
        CircuitBreakerBuilder {
            config: self.config,
            window: self.window,
            clock: self.clock,
            subscribers: self.subscribers,
            classify,
            name: self.name,
            initial: self.initial,
        }
    }

    /// Calls `subscriber` with every [`BreakerEvent`], synchronously, outside
    /// every internal lock. A panicking subscriber is caught and logged.
    /// Without subscribers no event is built. None by default.
    pub fn on_event(mut self, subscriber: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// The name used in events, logs and metric labels: not empty, no NUL
    /// byte. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The state to start in: closed (the default), open (the wait starts at
    /// build), disabled, forced open or metrics only. Half-open is refused.
    pub fn initial_state(mut self, state: BreakerState) -> Self {
        self.initial = state;
        self
    }

    /// The clock that decides waits, windows and slow calls. Defaults to
    /// [`CoarseClock::global()`](conc_core::time::CoarseClock::global) (one
    /// atomic load per read, 1 ms resolution); tests pass a
    /// [`ManualClock`](conc_core::time::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Validates the settings and builds the breaker.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad setting.
    pub fn build(self) -> Result<CircuitBreaker<(), C>, ConfigError> {
        self.config.validate()?;
        self.window.validate()?;
        check_initial_state(self.initial)?;
        config::name("name", &self.name)?;
        let window = match self.window {
            FailureWindow::Count { calls } => Window::Count(CountWindow::new(calls)),
            FailureWindow::Time { duration, buckets } => {
                Window::Time(TimeWindow::new(saturating_nanos(duration), buckets))
            }
        };
        let shared = Shared::new(Parts {
            config: self.config,
            window,
            clock: timeline(self.clock),
            subscribers: self.subscribers,
            name: Arc::from(self.name),
            initial: self.initial,
        });
        Ok(CircuitBreaker::from_parts(Arc::new(shared), self.classify, ()))
    }
}
