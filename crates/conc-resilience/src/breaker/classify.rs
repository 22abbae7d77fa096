//! How a call's result counts in a breaker's window: a typed policy.

/// How a call's result counts in a breaker's window.
///
/// # Examples
///
/// ```
/// use conc_resilience::CallOutcome;
///
/// assert_eq!(CallOutcome::of(&Ok::<u32, ()>(7)), CallOutcome::Success);
/// assert_eq!(CallOutcome::of(&Err::<u32, _>("down")), CallOutcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Counts neither way; a half-open probe slot is given back.
    Ignore,
}

impl CallOutcome {
    /// The default classification: `Ok` is a success, `Err` a failure.
    pub fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() { Self::Success } else { Self::Failure }
    }
}

/// Decides how the result of a call counts in a breaker's window, for calls
/// returning `Result<T, E>` (the breaker's analogue of tower's
/// `retry::Policy`).
///
/// The classifier is part of the breaker's type
/// ([`CircuitBreaker<S, C>`](super::CircuitBreaker)), chosen with
/// [`CircuitBreakerBuilder::classify`](super::CircuitBreakerBuilder::classify)
/// or [`CircuitBreaker::classify`](super::CircuitBreaker::classify). It sees
/// the result with its own types, so a call whose types the classifier does
/// not know is a compile error, never a failure counted by default.
///
/// Implemented by [`ErrIsFailure`] (the default) and by every
/// `Fn(&Result<T, E>) -> CallOutcome`.
///
/// # Examples
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use conc_resilience::{CallOutcome, CircuitBreaker, Classify};
///
/// // A missing record is the caller's problem, not the dependency's: ignore it.
/// let classify = |result: &Result<String, Error>| match result {
///     Err(error) if error.kind() == ErrorKind::NotFound => CallOutcome::Ignore,
///     other => CallOutcome::of(other),
/// };
/// assert_eq!(classify.classify(&Err(Error::from(ErrorKind::NotFound))), CallOutcome::Ignore);
///
/// let breaker = CircuitBreaker::builder().minimum_calls(1).classify(classify).build()?;
/// breaker.try_acquire()?.record(&Err(Error::from(ErrorKind::NotFound)));
/// assert_eq!(breaker.metrics().calls, 0, "ignored");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A result of types the policy does not know does not compile (it is never
/// counted as a failure by default):
///
/// ```compile_fail,E0277
/// use conc_resilience::{CallOutcome, CircuitBreaker};
///
/// let breaker = CircuitBreaker::builder()
///     .classify(|result: &Result<u16, std::io::Error>| CallOutcome::of(result))
///     .build()?;
/// breaker.try_acquire()?.record(&Err::<u16, &str>("an error of another type"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Classify<T, E> {
    /// How `result` counts.
    fn classify(&self, result: &Result<T, E>) -> CallOutcome;
}

/// The default classifier: every `Ok` is a success, every `Err` a failure,
/// whatever their types.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CallOutcome, Classify, ErrIsFailure};
///
/// assert_eq!(ErrIsFailure.classify(&Err::<(), _>(std::io::Error::other("reset"))), CallOutcome::Failure);
/// assert_eq!(ErrIsFailure.classify(&Ok::<_, ()>(503_u16)), CallOutcome::Success);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrIsFailure;

impl<T, E> Classify<T, E> for ErrIsFailure {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> CallOutcome {
        CallOutcome::of(result)
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> CallOutcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> CallOutcome {
        self(result)
    }
}
