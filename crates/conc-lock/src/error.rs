//! Why a lock operation failed.

use std::time::Duration;

use conc_core::BoxError;
use conc_core::config::ConfigError;

use crate::Fence;

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A setting was refused: a lock `name`, `ttl`, funnel `limit`, `owner`
    /// token, or a backend option (the field names which).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `block` gave up: the lock was still held by someone else at the deadline.
    #[error("lock `{name}` was still held after waiting {waited:?}")]
    Timeout {
        /// The lock waited for.
        name: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The lock had expired and may have been taken by another owner when its
    /// holder tried to release or extend it: work done under it ran without
    /// mutual exclusion for some time.
    #[error("lock `{name}` (fence {fence}) was lost: its time to live ran out before release")]
    Lost {
        /// The lock that was lost.
        name: String,
        /// The fence of the lost hold.
        fence: Fence,
    },
    /// The backend failed (I/O, connection, database error).
    #[error("lock backend failed")]
    Backend(#[source] BoxError),
}

impl LockError {
    /// Wraps a backend failure.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "redis")),
        allow(dead_code, reason = "used by the SQLite and Redis backends")
    )]
    pub(crate) fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }
}
