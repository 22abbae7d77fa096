//! Permits: proof of admission, consumed by recording the call's outcome.

use std::fmt;
use std::sync::Arc;

use super::classify::{CallOutcome, Classify, ErrIsFailure};
use super::core::{Admission, Shared};
use super::state::BreakerState;

macro_rules! permit_methods {
    () => {
        /// Records the call as a success.
        #[inline]
        pub fn success(self) {
            self.finish(CallOutcome::Success);
        }

        /// Records the call as a failure.
        #[inline]
        pub fn failure(self) {
            self.finish(CallOutcome::Failure);
        }

        /// Records nothing; a half-open probe slot is given back for the next caller.
        #[inline]
        pub fn ignore(self) {
            self.finish(CallOutcome::Ignore);
        }

        /// Records the call as `outcome`.
        #[inline]
        pub fn record_outcome(self, outcome: CallOutcome) {
            self.finish(outcome);
        }

        /// Records `result` as the breaker's [`Classify`] policy counts it
        /// (by default `Ok` is a success, `Err` a failure).
        #[inline]
        pub fn record<T, E>(self, result: &Result<T, E>)
        where
            C: Classify<T, E>,
        {
            let outcome = self.classify.classify(result);
            self.finish(outcome);
        }

        /// Whether this permit holds one of half-open's probe slots.
        pub fn is_probe(&self) -> bool {
            self.probe
        }

        /// The state the call was admitted in.
        pub fn admitted_in(&self) -> BreakerState {
            BreakerState::from_code(super::state::code_of(self.word))
        }

        #[inline]
        fn finish(mut self, outcome: CallOutcome) {
            // Clearing the flag first keeps `Drop` from giving the probe slot
            // back a second time: the record below decides what happens to it.
            let probe = std::mem::replace(&mut self.probe, false);
            self.shared.record(self.word, self.start, probe, outcome);
        }
    };
}

/// Admission to one call through a [`CircuitBreaker`](super::CircuitBreaker),
/// borrowed from it.
///
/// Consume it with [`success`](Self::success), [`failure`](Self::failure),
/// [`ignore`](Self::ignore) or [`record`](Self::record). Dropping it
/// un-consumed records nothing and gives a half-open probe slot back.
///
/// # Examples
///
/// ```
/// use conc_resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder().build()?;
/// let permit = breaker.try_acquire()?;
/// let result: Result<u32, std::io::Error> = Ok(7);
/// permit.record(&result);
/// assert_eq!(breaker.metrics().calls, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a permit records nothing unless consumed with success(), failure(), ignore() or record()"]
pub struct Permit<'a, C = ErrIsFailure> {
    shared: &'a Shared,
    classify: &'a C,
    word: u64,
    start: u64,
    probe: bool,
}

impl<'a, C> Permit<'a, C> {
    #[inline]
    pub(crate) fn new(shared: &'a Shared, classify: &'a C, admission: Admission) -> Self {
        let Admission { word, start, probe } = admission;
        Self { shared, classify, word, start, probe }
    }

    permit_methods!();
}

impl<C> Drop for Permit<'_, C> {
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.shared.release_probe(self.word);
        }
    }
}

impl<C> fmt::Debug for Permit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("admitted_in", &self.admitted_in())
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

/// A [`Permit`] that owns a handle to its breaker, for futures and services
/// that cannot borrow it. Obtained from
/// [`CircuitBreaker::try_acquire_owned`](super::CircuitBreaker::try_acquire_owned).
///
/// # Examples
///
/// ```
/// use conc_resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder().build()?;
/// let permit = breaker.try_acquire_owned()?;
/// let handle = std::thread::spawn(move || permit.success());
/// handle.join().unwrap();
/// assert_eq!(breaker.metrics().calls, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a permit records nothing unless consumed with success(), failure(), ignore() or record()"]
pub struct OwnedPermit<C = ErrIsFailure> {
    shared: Arc<Shared>,
    classify: C,
    word: u64,
    start: u64,
    probe: bool,
}

impl<C> OwnedPermit<C> {
    pub(crate) fn new(shared: Arc<Shared>, classify: C, admission: Admission) -> Self {
        let Admission { word, start, probe } = admission;
        Self { shared, classify, word, start, probe }
    }

    permit_methods!();
}

impl<C> Drop for OwnedPermit<C> {
    fn drop(&mut self) {
        if self.probe {
            self.shared.release_probe(self.word);
        }
    }
}

impl<C> fmt::Debug for OwnedPermit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("admitted_in", &self.admitted_in())
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}
