//! [`Retry`]: the retry policy, and the tower service it becomes around an
//! inner service.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Delays};
use conc_core::metrics::{MetricsSource, RETRY_ATTEMPTS, RETRY_EXHAUSTED, StripedCounter};

use super::attempt::{Attempt, StopReason};
use super::budget::RetryBudget;
use super::builder::RetryBuilder;
use super::metrics::RetryMetrics;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

pub(super) type Predicate = Arc<dyn Fn(&dyn Any) -> Option<bool> + Send + Sync>;

pub(crate) struct Inner {
    backoff: Backoff,
    retries: u32,
    deadline: Option<Duration>,
    error_predicates: Box<[Predicate]>,
    result_predicates: Box<[Predicate]>,
    budget: Option<RetryBudget>,
    /// Bumped by every run: on stripes each thread alone writes.
    calls: StripedCounter,
    retried: AtomicU64,
    exhausted: AtomicU64,
    budget_refused: AtomicU64,
    attempts_counter: metrics::Counter,
    exhausted_counter: metrics::Counter,
    name: String,
}

impl Inner {
    pub(super) fn new(
        backoff: Backoff,
        retries: u32,
        deadline: Option<Duration>,
        error_predicates: Vec<Predicate>,
        result_predicates: Vec<Predicate>,
        budget: Option<RetryBudget>,
        name: String,
    ) -> Self {
        Self {
            backoff,
            retries,
            deadline,
            error_predicates: error_predicates.into_boxed_slice(),
            result_predicates: result_predicates.into_boxed_slice(),
            budget,
            calls: StripedCounter::new(),
            retried: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            budget_refused: AtomicU64::new(0),
            attempts_counter: metrics::counter!(RETRY_ATTEMPTS, "retry" => name.clone()),
            exhausted_counter: metrics::counter!(RETRY_EXHAUSTED, "retry" => name.clone()),
            name,
        }
    }
}

/// A retry policy. Cheap to clone; clones share their metrics and budget.
///
/// `Retry` (that is, `Retry<()>`) is the policy on its own:
/// [`run`](Retry::run) an operation until it succeeds or retrying stops. With
/// the `tower` feature a `RetryLayer` turns an inner
/// service `S` into a `Retry<S>`: a tower `Service` retrying by the same
/// policy, with every method of the policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::Retry;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let retry = Retry::builder().backoff(Backoff::fixed(Duration::from_millis(10)).build()?).build()?;
/// let value = retry
///     .run(|attempt| async move { if attempt.is_retry() { Ok(attempt.number()) } else { Err("flaky") } })
///     .await?;
/// assert_eq!(value, 2);
/// assert_eq!(retry.metrics().retries, 1);
/// # Ok(()) }
/// ```
pub struct Retry<S = ()> {
    pub(super) shared: Arc<Inner>,
    pub(super) inner: S,
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("Retry")
            .field("name", &shared.name)
            .field("backoff", &shared.backoff)
            .field("max_retries", &shared.retries)
            .field("deadline", &shared.deadline)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> Clone for Retry<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared), inner: self.inner.clone() }
    }
}

/// Where one run stands: the schedule and the attempt number.
#[derive(Debug)]
pub(crate) struct RunState {
    /// The schedule, made at the first retry and boxed: most runs never
    /// retry, and every future holding a run would carry its room.
    delays: Option<Box<Delays>>,
    number: u32,
    started: Option<tokio::time::Instant>,
}

impl RunState {
    pub(crate) fn attempt(&self) -> Attempt {
        Attempt { number: self.number }
    }
}

impl Retry {
    /// A builder with the defaults listed on [`RetryBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Retry;
    ///
    /// assert_eq!(Retry::builder().build()?.max_retries(), 2);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder() -> RetryBuilder {
        RetryBuilder::new()
    }

    /// Runs `operation` until it succeeds or retrying stops; returns the last outcome.
    ///
    /// # Errors
    ///
    /// The last attempt's error, when every attempt allowed failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::backoff::Backoff;
    /// use conc_resilience::Retry;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let retry = Retry::builder().backoff(Backoff::fixed(Duration::from_millis(10)).build()?).max_attempts(2).build()?;
    /// let last: Result<(), u32> = retry.run(|attempt| async move { Err(attempt.number()) }).await;
    /// assert_eq!(last, Err(2), "the last error, as it is");
    /// # Ok(()) }
    /// ```
    pub async fn run<T, E, F, Fut>(&self, mut operation: F) -> Result<T, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        let mut run = self.begin();
        loop {
            let result = operation(run.attempt()).await;
            if !self.should_retry(&result) {
                return result;
            }
            if !self.pause(&mut run).await {
                return result;
            }
        }
    }
}

impl<S> Retry<S> {
    pub(crate) fn from_parts(shared: Arc<Inner>, inner: S) -> Self {
        Self { shared, inner }
    }

    /// The same policy (shared metrics and budget) around `inner`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<T>(&self, inner: T) -> Retry<T> {
        Retry::from_parts(Arc::clone(&self.shared), inner)
    }

    /// Retries after the first call, at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Retry;
    ///
    /// assert_eq!(Retry::builder().max_attempts(4).build()?.max_retries(), 3);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn max_retries(&self) -> u32 {
        self.shared.retries
    }

    /// Whether `result` should be retried, by the predicates.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Retry;
    ///
    /// let retry = Retry::builder().retry_if(|status: &u16| *status != 404).build()?;
    /// assert!(retry.should_retry(&Err::<(), u16>(503)));
    /// assert!(!retry.should_retry(&Err::<(), u16>(404)));
    /// assert!(!retry.should_retry(&Ok::<(), u16>(())));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn should_retry<T: 'static, E: 'static>(&self, result: &Result<T, E>) -> bool {
        match result {
            Ok(value) => self.retry_value(value),
            Err(error) => self.retry_error(error),
        }
    }

    /// Starts a run: counts it and deposits it in the budget.
    #[inline]
    pub(crate) fn begin(&self) -> RunState {
        self.shared.calls.increment();
        if let Some(budget) = &self.shared.budget {
            budget.deposit();
        }
        // The start is read only when a deadline needs it.
        let started = self.shared.deadline.map(|_| tokio::time::Instant::now());
        RunState { delays: None, number: 1, started }
    }

    /// After a retryable outcome: sleeps the next delay and returns true, or
    /// returns false when retrying stops.
    pub(crate) async fn pause(&self, run: &mut RunState) -> bool {
        match self.plan_retry(run) {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                self.begin_retry(run);
                true
            }
            None => false,
        }
    }

    /// After a retryable outcome: the delay to sleep before retrying, or
    /// `None` (counted as exhausted) when retrying stops.
    pub(crate) fn plan_retry(&self, run: &mut RunState) -> Option<Duration> {
        let shared = &*self.shared;
        match self.next_delay(&mut run.delays, run.number, run.started) {
            Ok(delay) => Some(delay),
            Err(reason) => {
                shared.exhausted.fetch_add(1, Ordering::Relaxed);
                shared.exhausted_counter.increment(1);
                tracing::debug!(target: "conc_resilience::retry", retry = %shared.name, attempts = run.number, ?reason, "retrying stopped");
                None
            }
        }
    }

    /// After the delay [`plan_retry`](Self::plan_retry) gave: counts the retry.
    pub(crate) fn begin_retry(&self, run: &mut RunState) {
        run.number = run.number.saturating_add(1);
        self.shared.retried.fetch_add(1, Ordering::Relaxed);
        self.shared.attempts_counter.increment(1);
    }

    /// The delay before the next attempt, or why there is none.
    fn next_delay(
        &self,
        delays: &mut Option<Box<Delays>>,
        attempts: u32,
        started: Option<tokio::time::Instant>,
    ) -> Result<Duration, StopReason> {
        let shared = &*self.shared;
        if attempts > shared.retries {
            return Err(StopReason::Exhausted);
        }
        let delay = delays
            .get_or_insert_with(|| Box::new(shared.backoff.delays()))
            .next()
            .unwrap_or_else(|| shared.backoff.base_delay(attempts - 1));
        if let (Some(deadline), Some(started)) = (shared.deadline, started)
            && started.elapsed().saturating_add(delay) >= deadline
        {
            return Err(StopReason::Deadline);
        }
        if let Some(budget) = &shared.budget
            && !budget.try_withdraw()
        {
            shared.budget_refused.fetch_add(1, Ordering::Relaxed);
            return Err(StopReason::Budget);
        }
        Ok(delay)
    }

    /// Whether an `Ok` value is retried.
    pub(crate) fn retry_value(&self, value: &dyn Any) -> bool {
        self.shared.result_predicates.iter().any(|predicate| predicate(value) == Some(true))
    }

    /// Whether an error is retried.
    pub(crate) fn retry_error(&self, error: &dyn Any) -> bool {
        self.shared.error_predicates.iter().all(|predicate| predicate(error) != Some(false))
    }

    /// Counts of runs, retries and give-ups so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::Retry;
    ///
    /// let retry = Retry::builder().build()?;
    /// assert_eq!(retry.metrics().calls, 0);
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn metrics(&self) -> RetryMetrics {
        let shared = &*self.shared;
        RetryMetrics {
            calls: shared.calls.sum(),
            retries: shared.retried.load(Ordering::Relaxed),
            exhausted: shared.exhausted.load(Ordering::Relaxed),
            budget_refused: shared.budget_refused.load(Ordering::Relaxed),
        }
    }
}

impl<S> MetricsSource for Retry<S> {
    type Snapshot = RetryMetrics;

    fn metrics(&self) -> RetryMetrics {
        Retry::metrics(self)
    }

    fn reset_metrics(&self) {
        let shared = &*self.shared;
        shared.calls.reset();
        for counter in [&shared.retried, &shared.exhausted, &shared.budget_refused] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
