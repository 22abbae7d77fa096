//! The error [`BackoffBuilder::build`](super::BackoffBuilder::build) returns for an invalid policy.

use std::time::Duration;

use super::Jitter;

/// Why [`BackoffBuilder::build`](super::BackoffBuilder::build) rejected a configuration.
///
/// Every message names the offending setting and the value it was given.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::{Backoff, BackoffError};
///
/// let err = Backoff::exponential(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err, BackoffError::ZeroDuration { field: "initial" });
/// assert_eq!(err.to_string(), "`initial` must be greater than zero, got 0ns");
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BackoffError {
    /// A duration setting (`delay`, `initial`, `increment`, `base` or `max_delay`) was zero.
    #[error("`{field}` must be greater than zero, got 0ns")]
    ZeroDuration {
        /// The name of the setting, as spelled by the builder method or constructor argument.
        field: &'static str,
    },
    /// The exponential growth factor was below 1.0, NaN or infinite.
    #[error("`factor` must be a finite number of at least 1.0, got {value}")]
    InvalidFactor {
        /// The factor that was passed to [`BackoffBuilder::factor`](super::BackoffBuilder::factor).
        value: f64,
    },
    /// A growth factor was set on a strategy that does not grow geometrically.
    #[error("`factor` applies only to exponential backoff, got {value} for {strategy} backoff")]
    FactorNotApplicable {
        /// The strategy the builder was created for (`fixed`, `linear`, …).
        strategy: &'static str,
        /// The factor that was passed to [`BackoffBuilder::factor`](super::BackoffBuilder::factor).
        value: f64,
    },
    /// `max_delay` was below the first delay of the schedule, so it would cap every delay.
    #[error("`max_delay` must be at least `{field}` ({initial:?}), got {max_delay:?}")]
    MaxDelayBelowInitial {
        /// The name of the first-delay setting (`delay`, `initial` or `base`).
        field: &'static str,
        /// The first-delay value.
        initial: Duration,
        /// The cap that was passed to [`BackoffBuilder::max_delay`](super::BackoffBuilder::max_delay).
        max_delay: Duration,
    },
    /// `max_attempts(0)` was set, but the first call always happens, so at least 1 is required.
    #[error("`max_attempts` must be at least 1 because it counts the first call, got 0")]
    ZeroAttempts,
    /// Both `max_retries` and `max_attempts` were set on one builder, which is ambiguous.
    #[error(
        "`max_retries` ({max_retries}) and `max_attempts` ({max_attempts}) are both set, set only one"
    )]
    ConflictingLimits {
        /// The value passed to [`BackoffBuilder::max_retries`](super::BackoffBuilder::max_retries).
        max_retries: u32,
        /// The value passed to [`BackoffBuilder::max_attempts`](super::BackoffBuilder::max_attempts).
        max_attempts: u32,
    },
    /// A [`Jitter`] other than `None` was combined with decorrelated jitter, which is random already.
    #[error(
        "`jitter` must be `Jitter::None` for decorrelated jitter, which is random already, got `Jitter::{jitter:?}`"
    )]
    JitterOnDecorrelated {
        /// The jitter mode that was passed to [`BackoffBuilder::jitter`](super::BackoffBuilder::jitter).
        jitter: Jitter,
    },
}
