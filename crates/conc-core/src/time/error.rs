//! Errors of the clocks.

use std::time::Duration;

use crate::config::ConfigError;

/// Why a clock could not be built or moved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The coarse clock's resolution is outside the supported range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A manual clock was asked to move before its origin.
    #[error("manual clock cannot move {by:?} before its origin")]
    BeforeOrigin {
        /// How far before the origin the requested time lies.
        by: Duration,
    },
    /// A manual clock was asked for a time further from its origin than it can represent.
    #[error("manual clock cannot represent {value:?} after its origin (limit is {limit:?})")]
    OutOfRange {
        /// The elapsed time asked for.
        value: Duration,
        /// The largest elapsed time the clock represents.
        limit: Duration,
    },
    /// The coarse clock's updater thread could not be spawned.
    #[error("could not spawn the coarse clock updater thread")]
    Spawn(#[source] std::io::Error),
}
