//! The load shedder builder.

use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::Clock;

use super::LoadShedder;
use super::shared::Shared;
use crate::time::{SharedClock, timeline};

/// Builds a [`LoadShedder`].
///
/// | setting | default |
/// |---|---|
/// | `max_load` (the argument of [`LoadShedder::builder`]) | required (no default), at least 1 |
/// | [`cooldown`](Self::cooldown) | 0: no cooldown |
/// | [`max_queue_wait`](Self::max_queue_wait) | none |
/// | [`clock`](Self::clock) | [`CoarseClock::global()`](conc_core::time::CoarseClock::global) |
/// | [`name`](Self::name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::LoadShedder;
///
/// let shedder = LoadShedder::builder(100)
///     .name("ingest")
///     .cooldown(Duration::from_secs(1))
///     .max_queue_wait(Duration::from_millis(50))
///     .build()?;
/// assert_eq!(shedder.metrics().max_load, 100);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct LoadShedderBuilder {
    max_load: u64,
    cooldown: Duration,
    max_queue_wait: Option<Duration>,
    clock: Option<SharedClock>,
    name: String,
}

impl LoadShedderBuilder {
    pub(super) fn new(max_load: u64) -> Self {
        Self {
            max_load,
            cooldown: Duration::ZERO,
            max_queue_wait: None,
            clock: None,
            name: "default".to_owned(),
        }
    }

    /// Keeps refusing everything for `cooldown` after an overload. Defaults to 0.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sheds work that waited longer than `max` in a queue before
    /// [`LoadShedder::try_admit_after_wait`] (CoDel-style admission on sojourn
    /// time rather than on raw queue length). Off by default.
    pub fn max_queue_wait(mut self, max: Duration) -> Self {
        self.max_queue_wait = Some(max);
        self
    }

    /// The clock deciding cooldowns. Defaults to [`CoarseClock::global()`](conc_core::time::CoarseClock::global).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
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
    /// [`ConfigError`] for a zero `max_load`, or a name that is empty or
    /// holds a NUL byte.
    pub fn build(self) -> Result<LoadShedder, ConfigError> {
        config::at_least("max_load", self.max_load, 1)?;
        config::name("name", &self.name)?;
        let shared = Shared::new(
            self.max_load,
            self.cooldown,
            self.max_queue_wait,
            timeline(self.clock),
            self.name,
        );
        Ok(LoadShedder::from_parts(Arc::new(shared), super::OneUnit, ()))
    }
}
