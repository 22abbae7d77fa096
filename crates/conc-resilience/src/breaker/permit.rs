//! Permits: proof of admission, consumed by recording the call's outcome.

use std::fmt;
use std::sync::Arc;

use super::Outcome;
use super::core::Shared;
use super::state::BreakerState;

macro_rules! permit_methods {
    () => {
        /// Records the call as a success.
        #[inline]
        pub fn success(self) {
            self.finish(Outcome::Success);
        }

        /// Records the call as a failure.
        #[inline]
        pub fn failure(self) {
            self.finish(Outcome::Failure);
        }

        /// Records nothing; a half-open probe slot is given back for the next caller.
        #[inline]
        pub fn ignore(self) {
            self.finish(Outcome::Ignore);
        }

        /// Records the call as `outcome`.
        #[inline]
        pub fn record_outcome(self, outcome: Outcome) {
            self.finish(outcome);
        }

        /// Records `result`, classified by the breaker's predicates: `Ok` is a
        /// success unless a result predicate says otherwise, `Err` a failure
        /// unless an error predicate says otherwise.
        #[inline]
        pub fn record<T: 'static, E: 'static>(self, result: &Result<T, E>) {
            let outcome = self.shared.classify(result);
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
        fn finish(mut self, outcome: Outcome) {
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
pub struct Permit<'a> {
    shared: &'a Shared,
    word: u64,
    start: u64,
    probe: bool,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(shared: &'a Shared, word: u64, start: u64, probe: bool) -> Self {
        Self { shared, word, start, probe }
    }

    permit_methods!();
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.shared.release_probe(self.word);
        }
    }
}

impl fmt::Debug for Permit<'_> {
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
pub struct OwnedPermit {
    shared: Arc<Shared>,
    word: u64,
    start: u64,
    probe: bool,
}

impl OwnedPermit {
    pub(crate) fn new(shared: Arc<Shared>, word: u64, start: u64, probe: bool) -> Self {
        Self { shared, word, start, probe }
    }

    permit_methods!();
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.probe {
            self.shared.release_probe(self.word);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("admitted_in", &self.admitted_in())
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}
