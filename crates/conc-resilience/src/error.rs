//! Configuration errors shared by every primitive of the crate.

use std::time::Duration;

/// A builder or a run-time update was given a value it cannot work with.
///
/// Every variant names the field and the value, so the message points at the
/// setter to fix.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, ConfigError};
///
/// let err = CircuitBreaker::builder().failure_rate_threshold(1.5).build().unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidRatio { field: "failure_rate_threshold", .. }));
/// assert_eq!(err.to_string(), "failure_rate_threshold must be in (0, 1], got 1.5");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A ratio (a rate threshold, a budget fraction) outside `(0, 1]`.
    #[error("{field} must be in (0, 1], got {value}")]
    InvalidRatio {
        /// The setter that was given the value.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A count that must be at least one was zero.
    #[error("{field} must be at least 1, got 0")]
    Zero {
        /// The setter that was given the value.
        field: &'static str,
    },
    /// A count above the largest the component supports.
    #[error("{field} must be at most {max}, got {value}")]
    TooLarge {
        /// The setter that was given the value.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A duration that must be positive was zero.
    #[error("{field} must be longer than zero")]
    ZeroDuration {
        /// The setter that was given the value.
        field: &'static str,
    },
    /// A duration too short or too long for the component.
    #[error("{field} must be between {min:?} and {max:?}, got {value:?}")]
    DurationOutOfRange {
        /// The setter that was given the value.
        field: &'static str,
        /// The value given.
        value: Duration,
        /// The shortest value accepted.
        min: Duration,
        /// The longest value accepted.
        max: Duration,
    },
    /// A number outside the range the setter accepts (or not a number).
    #[error("{field} must be between {min} and {max}, got {value}")]
    NumberOutOfRange {
        /// The setter that was given the value.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The smallest value accepted.
        min: f64,
        /// The largest value accepted.
        max: f64,
    },
    /// A state the component cannot be put in from this setter.
    #[error("{field} cannot be {value}")]
    InvalidState {
        /// The setter that was given the value.
        field: &'static str,
        /// The state given.
        value: &'static str,
    },
}
