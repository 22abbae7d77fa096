//! Composition: [`Stack`], one builder that stacks the primitives in a fixed,
//! documented order and runs a closure through them.

use std::fmt;
use std::future::Future;

use tracing::Instrument;

use crate::retry::RunState;
use crate::{
    Attempt, Bulkhead, CircuitBreaker, Classify, ErrIsFailure, Fallback, LoadShedder,
    ResilienceError, Retry, Timeout,
};

use bounded::{Bounded, Total, Waited};

mod bounded;

/// Builds a [`Stack`]. Every stage is optional; none is set by default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Stack, Timeout};
///
/// let stack = Stack::builder().attempt_timeout(Timeout::new(Duration::from_secs(2))?).build();
/// # let _ = stack;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct StackBuilder<C = ErrIsFailure> {
    stages: Stages<C>,
}

impl<C> fmt::Debug for StackBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stages.fmt("StackBuilder", f)
    }
}

/// The configured stages of a [`Stack`]: the breaker (whose type carries
/// its policy) and the rest.
struct Stages<C> {
    breaker: Option<CircuitBreaker<(), C>>,
    rest: Rest,
}

/// Every stage but the breaker.
#[derive(Debug, Clone, Default)]
struct Rest {
    shed: Option<(LoadShedder, u64)>,
    total_timeout: Option<Timeout>,
    retry: Option<Retry>,
    bulkhead: Option<Bulkhead>,
    attempt_timeout: Option<Timeout>,
}

impl<C: Clone> Clone for Stages<C> {
    fn clone(&self) -> Self {
        Self { breaker: self.breaker.clone(), rest: self.rest.clone() }
    }
}

impl<C> Stages<C> {
    fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name).field("breaker", &self.breaker).field("stages", &self.rest).finish()
    }
}

impl Default for StackBuilder {
    fn default() -> Self {
        Self { stages: Stages { breaker: None, rest: Rest::default() } }
    }
}

impl<C> StackBuilder<C> {
    /// Admits each run through `shedder`, costing `units`. None by default.
    pub fn load_shedder(mut self, shedder: LoadShedder, units: u64) -> Self {
        self.stages.rest.shed = Some((shedder, units));
        self
    }

    /// Bounds the whole run, retries and delays included. None by default.
    pub fn total_timeout(mut self, timeout: Timeout) -> Self {
        self.stages.rest.total_timeout = Some(timeout);
        self
    }

    /// Retries attempts that fail with the operation's own error or an
    /// attempt timeout. Rejections by the breaker or bulkhead are not
    /// retried. None by default.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.stages.rest.retry = Some(retry);
        self
    }

    /// Guards each attempt with `breaker`, whose [`Classify`] policy counts
    /// the operation's results; an attempt timeout counts as a failure. None
    /// by default.
    pub fn circuit_breaker<D>(self, breaker: CircuitBreaker<(), D>) -> StackBuilder<D> {
        StackBuilder { stages: Stages { breaker: Some(breaker), rest: self.stages.rest } }
    }

    /// Runs each attempt in a slot of `bulkhead`. None by default.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.stages.rest.bulkhead = Some(bulkhead);
        self
    }

    /// Bounds each attempt. None by default.
    pub fn attempt_timeout(mut self, timeout: Timeout) -> Self {
        self.stages.rest.attempt_timeout = Some(timeout);
        self
    }

    /// Builds the stack.
    pub fn build(self) -> Stack<C> {
        Stack { stages: self.stages }
    }
}

/// The primitives stacked in one order, outermost first:
///
/// ```text
/// load shedder → total timeout → retry → circuit breaker → bulkhead → attempt timeout → operation
/// ```
///
/// This is the order of Microsoft's standard resilience handler (built on
/// Polly): shed first so overload costs nothing; the total timeout bounds
/// the retries; each retry goes through the breaker, so the breaker sees
/// every attempt and a retry never bypasses an open circuit; the bulkhead
/// slot is held only while an attempt runs (not during backoff delays); the
/// attempt timeout bounds one try, counting as a breaker failure when it
/// fires. Rejections are not retried. Apply a [`Fallback`] to the result with
/// [`Stack::run_with_fallback`]. Each run is wrapped in a `tracing` span
/// (`resilience_stack`, debug level, target `conc_resilience::stack`).
///
/// `C` is the breaker's [`Classify`] policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{Bulkhead, CircuitBreaker, Retry, Stack, Timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stack = Stack::builder()
///     .total_timeout(Timeout::new(Duration::from_secs(10))?)
///     .retry(Retry::builder().backoff(Backoff::fixed(Duration::from_millis(200)).build()?).max_attempts(3).build()?)
///     .circuit_breaker(CircuitBreaker::builder().minimum_calls(20).build()?)
///     .bulkhead(Bulkhead::builder().max_concurrent(32).build()?)
///     .attempt_timeout(Timeout::new(Duration::from_secs(2))?)
///     .build();
///
/// let answer = stack
///     .run(|attempt| async move {
///         if attempt.is_retry() { Ok(42) } else { Err(std::io::Error::other("first try fails")) }
///     })
///     .await?;
/// assert_eq!(answer, 42);
/// # Ok(()) }
/// ```
pub struct Stack<C = ErrIsFailure> {
    stages: Stages<C>,
}

impl<C: Clone> Clone for Stack<C> {
    fn clone(&self) -> Self {
        Self { stages: self.stages.clone() }
    }
}

impl<C> fmt::Debug for Stack<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stages.fmt("Stack", f)
    }
}

impl Stack {
    /// A builder with no stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Stack;
    ///
    /// # futures::executor::block_on(async {
    /// let empty = Stack::builder().build();
    /// assert_eq!(empty.run(|_| async { Ok::<_, ()>(1) }).await, Ok(1));
    /// # });
    /// ```
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }
}

impl<C> Stack<C> {
    /// Runs `operation` through every configured stage.
    ///
    /// # Errors
    ///
    /// [`ResilienceError`] naming the stage that stopped the run, or the
    /// operation's last error.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{CircuitBreaker, ErrorKind, Stack};
    ///
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// let stack = Stack::builder().circuit_breaker(breaker).build();
    /// let refused = stack.run(|_| async { Ok::<_, ()>(1) }).await.unwrap_err();
    /// assert_eq!(refused.kind(), ErrorKind::BreakerOpen);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run<T, E, F, Fut>(&self, operation: F) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
        T: 'static,
        E: 'static,
    {
        let _load = match &self.stages.rest.shed {
            Some((shedder, units)) => {
                Some(shedder.try_admit(*units).map_err(ResilienceError::Shed)?)
            }
            None => None,
        };
        // One span per run (a no-op unless a subscriber enables debug spans
        // for this target); retries and rejections are logged inside it.
        let span = tracing::debug_span!(target: "conc_resilience::stack", "resilience_stack");
        // Built right into the span's wrapper, so the run is not moved (and
        // its room not kept twice) on the way in.
        self.guarded(operation).instrument(span).await
    }

    /// Runs `operation` and answers handled failures with `fallback`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), for failures the fallback does not handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{CircuitBreaker, ErrorKind, Fallback, Stack};
    ///
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// let stack = Stack::builder().circuit_breaker(breaker).build();
    /// let cached: Fallback<u32, ()> = Fallback::new().on(ErrorKind::BreakerOpen, |_| 0);
    /// assert_eq!(stack.run_with_fallback(&cached, |_| async { Ok(1) }).await, Ok(0));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_with_fallback<T, E, F, Fut>(
        &self,
        fallback: &Fallback<T, E>,
        operation: F,
    ) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
        T: 'static,
        E: 'static,
    {
        fallback.apply(self.run(operation).await)
    }

    /// The run: retried attempts under the total timeout. One state machine
    /// with every stage's state as its locals: an attempt that is ready at
    /// its first poll goes through without a timer, a clock read or a
    /// future per stage; the timers, the wait for a slot and the backoff
    /// pause are entered only when needed.
    async fn guarded<T, E, F, Fut>(&self, mut operation: F) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
        T: 'static,
        E: 'static,
    {
        let rest = &self.stages.rest;
        let mut total = Total::new(rest.total_timeout.as_ref());
        let retry = rest.retry.as_ref();
        let mut run = retry.map(Retry::begin);
        loop {
            let attempt = run.as_ref().map_or(crate::retry::FIRST, RunState::attempt);
            let permit = match &self.stages.breaker {
                Some(breaker) => Some(breaker.try_acquire().map_err(ResilienceError::BreakerOpen)?),
                None => None,
            };
            let slot = match &rest.bulkhead {
                Some(bulkhead) => Some(match bulkhead.try_slot() {
                    Some(slot) => slot,
                    // No slot free: wait in the queue (a boxed future inside
                    // `slot`), under the total timeout.
                    None => match Bounded::new(bulkhead.slot(), None, &mut total).await {
                        Waited::Done(slot) => slot.map_err(ResilienceError::BulkheadFull)?,
                        Waited::Attempt(elapsed) | Waited::Total(elapsed) => {
                            return Err(ResilienceError::Timeout(elapsed));
                        }
                    },
                }),
                None => None,
            };
            let outcome =
                Bounded::new(operation(attempt), rest.attempt_timeout.as_ref(), &mut total).await;
            let result = match outcome {
                Waited::Done(result) => {
                    if let Some(permit) = permit {
                        permit.record(&result);
                    }
                    result.map_err(ResilienceError::Inner)
                }
                Waited::Attempt(elapsed) => {
                    if let Some(permit) = permit {
                        permit.failure();
                    }
                    Err(ResilienceError::Timeout(elapsed))
                }
                // The run is cut off: the attempt records nothing (its
                // permit and slot are dropped, as a cancelled run's are).
                Waited::Total(elapsed) => return Err(ResilienceError::Timeout(elapsed)),
            };
            // The slot is held only while the attempt runs, not during the pause.
            drop(slot);
            let (Some(retry), Some(run)) = (retry, run.as_mut()) else { return result };
            let again = match &result {
                Ok(value) => retry.retry_value(value),
                Err(ResilienceError::Inner(error)) => retry.retry_error(error),
                Err(ResilienceError::Timeout(_)) => true,
                Err(_) => false,
            };
            if !again {
                return result;
            }
            let Some(delay) = retry.plan_retry(run) else { return result };
            // Boxed: only a run that retries needs the pause's timer.
            match Bounded::new(Box::pin(tokio::time::sleep(delay)), None, &mut total).await {
                Waited::Done(()) => retry.begin_retry(run),
                Waited::Attempt(elapsed) | Waited::Total(elapsed) => {
                    return Err(ResilienceError::Timeout(elapsed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The futures a run builds stay small: the timers of the waiting paths
    /// (a retry's pause, a full bulkhead's queue, an armed timeout) are boxed
    /// and only made when needed, so a call that goes straight through does
    /// not carry (and move through every await) their room.
    #[test]
    fn a_run_carries_no_room_for_the_paths_it_does_not_take() {
        let stack = Stack::builder()
            .total_timeout(Timeout::new(Duration::from_secs(30)).unwrap())
            .retry(Retry::builder().max_attempts(3).build().unwrap())
            .circuit_breaker(CircuitBreaker::builder().build().unwrap())
            .bulkhead(Bulkhead::builder().max_concurrent(64).build().unwrap())
            .attempt_timeout(Timeout::new(Duration::from_secs(1)).unwrap())
            .build();
        let op = |_: Attempt| async { Ok::<u32, std::io::Error>(1) };
        let run = std::mem::size_of_val(&stack.run(op));
        assert!(run <= 512, "a run's future is {run} bytes");
        let timeout = Timeout::new(Duration::from_secs(1)).unwrap();
        let work = async { [0_u8; 64] };
        let work_size = std::mem::size_of_val(&work);
        let call = std::mem::size_of_val(&timeout.call(work));
        assert!(call <= work_size + 24, "a timeout adds {} bytes", call - work_size);
        let bulkhead = Bulkhead::builder().build().unwrap();
        let slot = std::mem::size_of_val(&bulkhead.slot());
        assert!(slot <= 64, "waiting for a slot takes {slot} bytes");
    }
}
