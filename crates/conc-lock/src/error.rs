//! Why a lock operation failed.

use std::time::Duration;

use conc_core::BoxError;

use crate::Fence;

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock name is empty or too long.
    #[error("invalid lock name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time to live of zero, or one too long to represent in milliseconds.
    #[error("invalid lock `ttl` {ttl:?}: must be between 1ms and {max:?}")]
    InvalidTtl {
        /// The time to live given.
        ttl: Duration,
        /// The longest time to live accepted.
        max: Duration,
    },
    /// A funnel limit of zero slots, or more than the largest supported.
    #[error("invalid funnel `limit` {limit}: must be between 1 and {max}")]
    InvalidLimit {
        /// The limit given.
        limit: u32,
        /// The largest limit accepted.
        max: u32,
    },
    /// An owner token that is empty or too long.
    #[error("invalid lock owner {owner:?}: {reason}")]
    InvalidOwner {
        /// The owner given.
        owner: String,
        /// What is wrong with it.
        reason: &'static str,
    },
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
