//! [`ConfigError`]: the one shape of a refused setting, shared by every builder.
//!
//! Every `build()` in the workspace checks its settings and refuses a bad one
//! with a [`ConfigError`] that names the setting (`field`), the value it was
//! given and the rule it broke. Nothing is clamped silently and nothing
//! panics. The checks below return the value when it passes, so a builder
//! reads as a list of rules:
//!
//! ```
//! use std::time::Duration;
//! use conc_core::config::{self, ConfigError};
//!
//! struct Settings { workers: usize, timeout: Duration, ratio: f64 }
//!
//! fn check(s: &Settings) -> Result<(), ConfigError> {
//!     config::at_least("workers", s.workers, 1)?;
//!     config::at_most("workers", s.workers, 4096)?;
//!     config::positive("timeout", s.timeout)?;
//!     config::between("ratio", s.ratio, 0.0, 1.0)?;
//!     Ok(())
//! }
//!
//! let err = check(&Settings { workers: 0, timeout: Duration::ZERO, ratio: 0.5 }).unwrap_err();
//! assert_eq!(err.field, "workers");
//! assert_eq!(err.to_string(), "invalid `workers` 0: must be at least 1");
//!
//! let err = check(&Settings { workers: 2, timeout: Duration::from_secs(1), ratio: f64::NAN })
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "invalid `ratio` NaN: must be between 0.0 and 1.0");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// A setting a builder or constructor refused: which one, the value it was
/// given, and the rule that value broke.
///
/// The message reads `invalid `field` value: reason`, lowercase, so it can be
/// shown to whoever wrote the configuration. `field` is the setter's name as
/// spelled in code (`max_workers`, `failure_rate_threshold`); a setting that
/// belongs to one part of a larger whole names the part in the field
/// (`stage `parse` concurrency`).
///
/// # Examples
///
/// ```
/// use conc_core::config::ConfigError;
///
/// let err = ConfigError::new("name", "a\0b", "must not contain a NUL byte");
/// assert_eq!(err.field, "name");
/// assert_eq!(err.value, r#""a\0b""#);
/// assert_eq!(err.to_string(), r#"invalid `name` "a\0b": must not contain a NUL byte"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}` {value}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting, as its setter is spelled.
    pub field: Cow<'static, str>,
    /// The value it was given, printed with `{:?}`.
    pub value: String,
    /// The rule the value broke, starting with "must".
    pub reason: Cow<'static, str>,
}

impl ConfigError {
    /// `field` was given `value`, which breaks `reason`.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        value: impl fmt::Debug,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self { field: field.into(), value: format!("{value:?}"), reason: reason.into() }
    }

    /// `value` is below the smallest accepted, `min`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::config::ConfigError;
    ///
    /// let err = ConfigError::below("workers", 0_usize, 1_usize);
    /// assert_eq!(err.to_string(), "invalid `workers` 0: must be at least 1");
    /// ```
    pub fn below<T: fmt::Debug>(field: impl Into<Cow<'static, str>>, value: T, min: T) -> Self {
        Self::new(field, value, format!("must be at least {min:?}"))
    }

    /// `value` is above the largest accepted, `max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::config::ConfigError;
    ///
    /// let err = ConfigError::above("workers", 70_000_usize, 65_536_usize);
    /// assert_eq!(err.to_string(), "invalid `workers` 70000: must be at most 65536");
    /// ```
    pub fn above<T: fmt::Debug>(field: impl Into<Cow<'static, str>>, value: T, max: T) -> Self {
        Self::new(field, value, format!("must be at most {max:?}"))
    }

    /// The error with `part` (a stage, a limiter, a queue) named before the field:
    /// `concurrency` becomes `stage `parse` concurrency`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::config::ConfigError;
    ///
    /// let err = ConfigError::below("concurrency", 0_usize, 1_usize).within("stage `parse`");
    /// assert_eq!(err.field, "stage `parse` concurrency");
    /// ```
    #[must_use]
    pub fn within(mut self, part: impl fmt::Display) -> Self {
        self.field = Cow::Owned(format!("{part} {}", self.field));
        self
    }
}

/// `value` when it is at least `min`, else a [`ConfigError`] saying so.
///
/// # Examples
///
/// ```
/// use conc_core::config;
///
/// assert_eq!(config::at_least("workers", 4, 1)?, 4);
/// assert!(config::at_least("workers", 0, 1).is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub fn at_least<T: PartialOrd + fmt::Debug>(
    field: &'static str,
    value: T,
    min: T,
) -> Result<T, ConfigError> {
    if value >= min { Ok(value) } else { Err(ConfigError::below(field, value, min)) }
}

/// `value` when it is at most `max`, else a [`ConfigError`] saying so.
///
/// # Examples
///
/// ```
/// use conc_core::config;
///
/// assert_eq!(config::at_most("queue", 10, 1 << 20)?, 10);
/// assert!(config::at_most("queue", usize::MAX, 1 << 20).is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub fn at_most<T: PartialOrd + fmt::Debug>(
    field: &'static str,
    value: T,
    max: T,
) -> Result<T, ConfigError> {
    if value <= max { Ok(value) } else { Err(ConfigError::above(field, value, max)) }
}

/// `value` when it lies in `[min, max]`, else a [`ConfigError`] saying so. A
/// NaN lies in no range.
///
/// # Examples
///
/// ```
/// use conc_core::config;
///
/// assert_eq!(config::between("ratio", 0.5, 0.0, 1.0)?, 0.5);
/// assert!(config::between("ratio", 1.5, 0.0, 1.0).is_err());
/// assert!(config::between("ratio", f64::NAN, 0.0, 1.0).is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub fn between<T: PartialOrd + fmt::Debug + Copy>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if min <= value && value <= max {
        Ok(value)
    } else {
        let reason = format!("must be between {min:?} and {max:?}");
        Err(ConfigError::new(field, value, reason))
    }
}

/// `duration` when it is longer than zero, else a [`ConfigError`] saying so.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::config;
///
/// assert!(config::positive("timeout", Duration::from_millis(1)).is_ok());
/// let err = config::positive("timeout", Duration::ZERO).unwrap_err();
/// assert_eq!(err.to_string(), "invalid `timeout` 0ns: must be longer than zero");
/// ```
pub fn positive(field: &'static str, duration: Duration) -> Result<Duration, ConfigError> {
    if duration.is_zero() {
        Err(ConfigError::new(field, duration, "must be longer than zero"))
    } else {
        Ok(duration)
    }
}

/// `name` when it is not empty and has no NUL byte (a thread or metric label
/// could not carry one), else a [`ConfigError`] saying which.
///
/// # Examples
///
/// ```
/// use conc_core::config;
///
/// assert_eq!(config::name("name", "billing")?, "billing");
/// assert!(config::name("name", "").is_err());
/// assert!(config::name("name", "a\0b").is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub fn name<'a>(field: &'static str, name: &'a str) -> Result<&'a str, ConfigError> {
    if name.is_empty() {
        Err(ConfigError::new(field, name, "must not be empty"))
    } else if name.contains('\0') {
        Err(ConfigError::new(field, name, "must not contain a NUL byte"))
    } else {
        Ok(name)
    }
}
