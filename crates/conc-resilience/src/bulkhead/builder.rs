//! The bulkhead builder.

use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};

use super::shared::Shared;
use super::{Bulkhead, MAX_CONCURRENT};

/// Builds a [`Bulkhead`].
///
/// | setting | default |
/// |---|---|
/// | [`max_concurrent`](Self::max_concurrent) | 25 (Resilience4j) |
/// | [`max_queued`](Self::max_queued) | 0: no queue, fail fast |
/// | [`max_wait`](Self::max_wait) | 0: fail fast |
/// | [`name`](Self::name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::Bulkhead;
///
/// let bulkhead = Bulkhead::builder()
///     .name("db")
///     .max_concurrent(16)
///     .max_queued(64)
///     .max_wait(Duration::from_millis(200))
///     .build()?;
/// assert_eq!(bulkhead.metrics().available, 16);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct BulkheadBuilder {
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Duration,
    name: String,
}

impl BulkheadBuilder {
    pub(super) fn new() -> Self {
        Self {
            max_concurrent: 25,
            max_queued: 0,
            max_wait: Duration::ZERO,
            name: "default".to_owned(),
        }
    }

    /// How many calls may run at once, 1 to [`MAX_CONCURRENT`]. Defaults to 25.
    pub fn max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = max;
        self
    }

    /// How many callers of [`Bulkhead::acquire`] may wait for a slot. Defaults to 0.
    pub fn max_queued(mut self, max: u32) -> Self {
        self.max_queued = max;
        self
    }

    /// How long a queued caller waits before giving up (longer than zero
    /// when there is a queue). Defaults to 0 (no wait).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The name used in metric labels: not empty, no NUL byte. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `max_concurrent` is 0 or above [`MAX_CONCURRENT`],
    /// a queue is configured with a zero `max_wait`, or the name is empty or
    /// holds a NUL byte.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        config::at_least("max_concurrent", self.max_concurrent, 1)?;
        config::at_most("max_concurrent", self.max_concurrent, MAX_CONCURRENT)?;
        if self.max_queued > 0 && self.max_wait.is_zero() {
            return Err(ConfigError::new(
                "max_wait",
                self.max_wait,
                "must be longer than zero when max_queued is above 0",
            ));
        }
        config::name("name", &self.name)?;
        let shared = Shared::new(self.max_concurrent, self.max_queued, self.max_wait, self.name);
        Ok(Bulkhead::from_parts(Arc::new(shared), ()))
    }
}
