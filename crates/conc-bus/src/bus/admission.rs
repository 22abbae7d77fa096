//! Admissions checked before a command reaches the stack, so a refusal hands
//! the command back: a circuit breaker (feature `resilience`) and a rate
//! limit (feature `ratelimit`).

use conc_core::BoxError;

/// Something that admits a command (by its type's name) or refuses it.
pub(crate) trait Admission: Send + Sync {
    /// A ticket to report the outcome on, or why the command is refused.
    fn admit(&self, command: &'static str) -> Result<Option<Box<dyn Ticket>>, BoxError>;
}

/// An admitted command's ticket: told whether the dispatch succeeded.
pub(crate) trait Ticket: Send {
    fn record(self: Box<Self>, succeeded: bool);
}

#[cfg(feature = "resilience")]
mod breaker {
    use conc_core::BoxError;
    use conc_resilience::{CallOutcome, CircuitBreaker, OwnedPermit};

    use super::{Admission, Ticket};

    impl Admission for CircuitBreaker {
        fn admit(&self, _command: &'static str) -> Result<Option<Box<dyn Ticket>>, BoxError> {
            let permit = self.try_acquire_owned()?;
            Ok(Some(Box::new(permit)))
        }
    }

    impl Ticket for OwnedPermit {
        fn record(self: Box<Self>, succeeded: bool) {
            let outcome = if succeeded { CallOutcome::Success } else { CallOutcome::Failure };
            (*self).record_outcome(outcome);
        }
    }
}

#[cfg(feature = "ratelimit")]
pub(crate) mod rate {
    use std::fmt;
    use std::sync::Arc;

    use conc_core::BoxError;
    use conc_ratelimit::Limiter;

    use super::{Admission, Ticket};

    /// A limiter and how a command's type name becomes its key.
    pub(crate) struct RateAdmission<L: Limiter, F> {
        pub(crate) limiter: Arc<L>,
        pub(crate) key: F,
    }

    impl<L, F> Admission for RateAdmission<L, F>
    where
        L: Limiter + 'static,
        F: Fn(&'static str) -> L::Key + Send + Sync,
    {
        fn admit(&self, command: &'static str) -> Result<Option<Box<dyn Ticket>>, BoxError> {
            self.limiter.try_acquire(&(self.key)(command), 1)?;
            Ok(None)
        }
    }

    impl<L: Limiter, F> fmt::Debug for RateAdmission<L, F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RateAdmission").finish_non_exhaustive()
        }
    }
}
