//! Why a request was refused.

use std::time::Duration;

/// Why a request for capacity was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// Not enough capacity now: the same request would succeed after `retry_after`.
    #[error("rate limited: retry after {retry_after:?}")]
    Limited {
        /// How long until the same request would be admitted, if nothing else
        /// takes the capacity first.
        retry_after: Duration,
    },
    /// The request asks for more units than the limiter ever holds at once, so
    /// it could never be admitted (waiting would be forever).
    #[error(
        "invalid `n` {requested}: more than the limiter's capacity {capacity}, so it can never be admitted"
    )]
    ExceedsCapacity {
        /// Units asked for.
        requested: u32,
        /// The most units the limiter can admit at once.
        capacity: u32,
    },
    /// The limiter's shared store (Redis) could not be reached and its
    /// failure policy is to refuse.
    #[error("rate limiter store unavailable")]
    Unavailable,
}

impl RateLimitError {
    /// The wait until the request would succeed, for [`Limited`](Self::Limited);
    /// `None` when it never will.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_ratelimit::RateLimitError;
    ///
    /// let err = RateLimitError::Limited { retry_after: Duration::from_millis(5) };
    /// assert_eq!(err.retry_after(), Some(Duration::from_millis(5)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited { retry_after } => Some(*retry_after),
            Self::ExceedsCapacity { .. } | Self::Unavailable => None,
        }
    }
}
