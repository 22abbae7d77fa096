//! Why a quota could not be built or a request was refused.

use std::time::Duration;

/// Why a [`Quota`](crate::Quota) (or another limiter's configuration) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// A rate of zero requests per period: nothing would ever be admitted.
    #[error("invalid `rate` 0: a quota must admit at least one request per period")]
    ZeroRate,
    /// A period (or window, or interval) of zero.
    #[error("invalid `{field}` {value:?}: must be at least 1ns")]
    ZeroPeriod {
        /// The field that was zero (`period`, `window`, `interval`).
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// A burst (or capacity, or limit) of zero: nothing would ever be admitted.
    #[error("invalid `{field}` 0: must be at least 1")]
    ZeroCapacity {
        /// The field that was zero (`burst`, `capacity`, `limit`, `refill`).
        field: &'static str,
    },
    /// The rate is so high that one request is worth less than a nanosecond.
    #[error("invalid `rate` {rate} per {period:?}: more than one request per nanosecond")]
    RateTooHigh {
        /// The rate given.
        rate: u64,
        /// The period given.
        period: Duration,
    },
    /// A setting larger than another setting allows (an initial fill above
    /// the capacity).
    #[error("invalid `{field}` {value}: must be at most {max}")]
    AboveMaximum {
        /// The field that is too large.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A value too large to represent in nanoseconds (about 584 years), or a
    /// burst whose tolerance would overflow.
    #[error("invalid `{field}` {value}: too large to represent")]
    TooLarge {
        /// The field that overflowed.
        field: &'static str,
        /// The value given, printed.
        value: String,
    },
}

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
