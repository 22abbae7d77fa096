//! The consuming builder that configures and validates a [`Backoff`].

use std::time::Duration;

use super::{Backoff, Jitter, Strategy};
use crate::config::{self, ConfigError};

/// Configures a [`Backoff`]; created by the strategy constructors on [`Backoff`]
/// ([`exponential`](Backoff::exponential), [`fixed`](Backoff::fixed), …).
///
/// Setters take and return the builder; [`build`](Self::build) validates everything at once and
/// reports the first problem as a [`ConfigError`] naming the setting and its value. Nothing is
/// clamped silently and nothing panics.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .factor(2.0)
///     .jitter(Jitter::Full)
///     .max_delay(Duration::from_secs(10))
///     .max_retries(5)
///     .seed(42)
///     .build()?;
/// let delays: Vec<Duration> = backoff.delays().collect();
/// assert_eq!(delays.len(), 5);
/// assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BackoffBuilder {
    strategy: Strategy,
    factor: Option<f64>,
    jitter: Jitter,
    max_delay: Option<Duration>,
    max_retries: Option<u32>,
    max_attempts: Option<u32>,
    seed: Option<u64>,
}

impl BackoffBuilder {
    /// Starts a builder for `strategy` with every other setting at its default.
    pub(crate) fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            factor: None,
            jitter: Jitter::None,
            max_delay: None,
            max_retries: None,
            max_attempts: None,
            seed: None,
        }
    }

    /// Sets the growth factor of exponential backoff: each delay is `factor` times the previous.
    ///
    /// Must be finite and at least 1.0 (1.0 makes the schedule constant). Only exponential
    /// backoff has a factor; setting one on another strategy is an error. Defaults to 2.0.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = Some(factor);
        self
    }

    /// Sets how each delay is randomised, see [`Jitter`].
    ///
    /// Decorrelated jitter is random by construction and accepts only [`Jitter::None`].
    /// Defaults to [`Jitter::None`].
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Caps every delay, after jitter: no delay of the schedule exceeds `max_delay`.
    ///
    /// The cap is also applied before jitter, so full jitter is uniform over
    /// `[0, min(delay, max_delay)]` rather than piling up at the cap. Must be greater than zero
    /// and at least the first delay (`delay`, `initial` or `base`). Defaults to no cap: delays
    /// grow until they saturate at [`Duration::MAX`].
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// Limits the schedule to `max_retries` retries after the first call, i.e. `max_retries`
    /// delays. `0` means the call is never retried.
    ///
    /// Equivalent to `max_attempts(max_retries + 1)`; set one or the other, not both.
    /// Defaults to no limit: the schedule is infinite.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Limits the total number of calls, the first one included, to `max_attempts`, i.e.
    /// `max_attempts - 1` delays. `1` means the call is never retried; `0` is an error.
    ///
    /// Equivalent to `max_retries(max_attempts - 1)`; set one or the other, not both.
    /// Defaults to no limit: the schedule is infinite.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Makes the schedule reproducible: every [`Backoff::delays`] call yields the same delays.
    ///
    /// Defaults to no seed: each [`Backoff::delays`] call draws a fresh seed, so that callers
    /// failing together do not retry together.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates the configuration and returns the policy.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting found wrong, in this order:
    /// - a zero `delay`, `initial`, `increment` or `base`;
    /// - a `factor` on a strategy other than exponential, or a factor below 1.0, NaN or infinite;
    /// - a zero `max_delay`, then a cap below the first delay;
    /// - `max_attempts(0)`;
    /// - both `max_retries` and `max_attempts` set;
    /// - a `jitter` other than `None` on decorrelated jitter.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Backoff;
    ///
    /// let err = Backoff::fixed(Duration::from_secs(1))
    ///     .max_delay(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field, "max_delay");
    /// assert_eq!(err.to_string(), "invalid `max_delay` 500ms: must be at least `delay` (1s)");
    /// ```
    pub fn build(self) -> Result<Backoff, ConfigError> {
        for (field, value) in self.strategy.durations() {
            config::positive(field, value)?;
        }
        let strategy = match (self.strategy, self.factor) {
            (Strategy::Exponential { initial, .. }, Some(factor)) => {
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(ConfigError::new(
                        "factor",
                        factor,
                        "must be a finite number of at least 1.0",
                    ));
                }
                Strategy::Exponential { initial, factor }
            }
            (strategy, Some(value)) => {
                let reason = format!(
                    "applies only to exponential backoff, not to {} backoff",
                    strategy.name()
                );
                return Err(ConfigError::new("factor", value, reason));
            }
            (strategy, None) => strategy,
        };
        if let Some(max_delay) = self.max_delay {
            config::positive("max_delay", max_delay)?;
            if let Some((field, initial)) = strategy.durations().next()
                && max_delay < initial
            {
                let reason = format!("must be at least `{field}` ({initial:?})");
                return Err(ConfigError::new("max_delay", max_delay, reason));
            }
        }
        let max_retries = match (self.max_retries, self.max_attempts) {
            (_, Some(0)) => {
                return Err(ConfigError::new(
                    "max_attempts",
                    0,
                    "must be at least 1 because it counts the first call",
                ));
            }
            (Some(max_retries), Some(max_attempts)) => {
                let reason =
                    format!("must not be set with `max_retries` ({max_retries}): set only one");
                return Err(ConfigError::new("max_attempts", max_attempts, reason));
            }
            (None, Some(max_attempts)) => Some(max_attempts - 1),
            (max_retries, None) => max_retries,
        };
        if matches!(strategy, Strategy::DecorrelatedJitter { .. }) && self.jitter != Jitter::None {
            return Err(ConfigError::new(
                "jitter",
                self.jitter,
                "must be `Jitter::None` for decorrelated jitter, which is random already",
            ));
        }
        Ok(Backoff::from_validated(strategy, self.jitter, self.max_delay, max_retries, self.seed))
    }
}
