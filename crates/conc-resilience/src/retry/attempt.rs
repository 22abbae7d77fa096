//! [`Attempt`] and [`StopReason`]: where a run stands and why it stopped.

/// The first attempt of a run.
pub(crate) const FIRST: Attempt = Attempt { number: 1 };

/// Which attempt an operation is running, handed to it by
/// [`Retry::run`](super::Retry::run).
///
/// # Examples
///
/// ```
/// use conc_resilience::Attempt;
///
/// let first = Attempt::first();
/// assert_eq!((first.number(), first.retries(), first.is_retry()), (1, 0, false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub(crate) number: u32,
}

impl Attempt {
    /// The first attempt of a run, for calling an operation outside a retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Attempt;
    ///
    /// assert_eq!(Attempt::first().number(), 1);
    /// ```
    pub const fn first() -> Self {
        FIRST
    }

    /// 1 for the first call, 2 for the first retry, …
    pub fn number(self) -> u32 {
        self.number
    }

    /// Retries before this attempt: `number() - 1`.
    pub fn retries(self) -> u32 {
        self.number.saturating_sub(1)
    }

    /// Whether this attempt is a retry.
    pub fn is_retry(self) -> bool {
        self.number > 1
    }
}

/// Why a run stopped retrying (logged at debug level when retrying stops).
///
/// # Examples
///
/// ```
/// use conc_resilience::StopReason;
///
/// assert_ne!(StopReason::Exhausted, StopReason::Deadline);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The outcome was not retryable (a success, or a failure the predicates refuse).
    Done,
    /// The attempt or retry limit was reached.
    Exhausted,
    /// The next delay would have ended at or past the deadline.
    Deadline,
    /// The retry budget had no retry left.
    Budget,
}
