//! [`Shed`]: why a load shedder refused work.

use std::time::Duration;

/// Why a [`LoadShedder`](super::LoadShedder) refused work.
///
/// # Examples
///
/// ```
/// use conc_resilience::{LoadShedder, Shed};
///
/// let shedder = LoadShedder::builder(2).build()?;
/// let refused = shedder.try_admit(3).unwrap_err();
/// assert_eq!(refused, Shed::Overloaded { load: 0, units: 3, max_load: 2 });
/// assert_eq!(refused.to_string(), "load shed: 0 + 3 units would exceed 2");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Shed {
    /// Admitting the work would have taken the load above the maximum.
    #[error("load shed: {load} + {units} units would exceed {max_load}")]
    Overloaded {
        /// Load in use when refused.
        load: u64,
        /// Units asked for.
        units: u64,
        /// The maximum.
        max_load: u64,
    },
    /// The shedder is cooling down after an overload.
    #[error("load shed: cooling down for another {remaining:?}")]
    CoolingDown {
        /// Time left in the cooldown.
        remaining: Duration,
    },
    /// The work waited in a queue longer than the configured target.
    #[error("load shed: waited {waited:?} in queue, more than {max:?}")]
    QueueWait {
        /// How long it waited.
        waited: Duration,
        /// The target.
        max: Duration,
    },
}

impl Shed {
    /// When it is worth trying again, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::Shed;
    ///
    /// let cooling = Shed::CoolingDown { remaining: Duration::from_millis(300) };
    /// assert_eq!(cooling.retry_after(), Some(Duration::from_millis(300)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CoolingDown { remaining } => Some(*remaining),
            _ => None,
        }
    }
}
