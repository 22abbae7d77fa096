//! Retries with a backoff, a total deadline and an optional retry budget.
//!
//! # Overview
//!
//! [`Retry::run`] calls an operation, and calls it again after each delay of a
//! [`Backoff`] while it fails with a retryable outcome, until an attempt
//! succeeds, the attempts run out, the deadline would be passed or the budget
//! is spent. It returns the last outcome as it is. The operation receives an
//! [`Attempt`] telling which attempt it is.
//!
//! - `max_attempts` counts the first call, `max_retries` does not (both exist
//!   because libraries disagree: Resilience4j counts the first call, Polly does not).
//! - The deadline bounds the whole run: a delay that would end at or past it
//!   is not slept; the last outcome is returned instead. (Bounding each
//!   attempt is [`Timeout`](crate::Timeout)'s job; put one inside.)
//! - Which outcomes are retried: every `Err` by default; narrow it with
//!   [`retry_if`](RetryBuilder::retry_if), and retry some `Ok` values with
//!   [`retry_if_result`](RetryBuilder::retry_if_result).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_core::backoff::Backoff;
//! use conc_resilience::Retry;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let retry = Retry::builder()
//!     .backoff(Backoff::exponential(Duration::from_millis(100)).build()?)
//!     .max_attempts(4)
//!     .deadline(Duration::from_secs(5))
//!     .retry_if(|error: &std::io::Error| error.kind() != std::io::ErrorKind::PermissionDenied)
//!     .build()?;
//!
//! let value = retry
//!     .run(|attempt| async move {
//!         if attempt.number() < 3 { Err(std::io::Error::other("flaky")) } else { Ok(attempt.number()) }
//!     })
//!     .await?;
//! assert_eq!(value, 3);
//! # Ok(()) }
//! ```

mod budget;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{RETRY_ATTEMPTS, RETRY_EXHAUSTED};

pub use budget::{RetryBudget, RetryBudgetBuilder};

use crate::ConfigError;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// The first attempt of a run.
pub(crate) const FIRST: Attempt = Attempt { number: 1 };

/// Which attempt an operation is running, handed to it by [`Retry::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    number: u32,
}

impl Attempt {
    /// The first attempt of a run, for calling an operation outside a retry.
    pub const fn first() -> Self {
        FIRST
    }

    /// 1 for the first call, 2 for the first retry, …
    pub fn number(self) -> u32 {
        self.number
    }

    /// Retries before this attempt: `number() - 1`.
    pub fn retries(self) -> u32 {
        self.number - 1
    }

    /// Whether this attempt is a retry.
    pub fn is_retry(self) -> bool {
        self.number > 1
    }
}

type Predicate = Arc<dyn Fn(&dyn Any) -> Option<bool> + Send + Sync>;

/// Why a run stopped retrying (reported in events and counted in [`RetryMetrics`]).
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

/// Builds a [`Retry`].
///
/// | setting | default |
/// |---|---|
/// | [`backoff`](Self::backoff) | exponential from 100 ms, factor 2, full jitter, capped at 10 s |
/// | limit | [`max_attempts`](Self::max_attempts) 3 (the first call and two retries), unless the backoff or a setter says otherwise |
/// | [`deadline`](Self::deadline) | none |
/// | which outcomes | every `Err`; no `Ok` |
/// | [`budget`](Self::budget) | none |
#[must_use = "a builder does nothing until build() is called"]
pub struct RetryBuilder {
    backoff: Option<Backoff>,
    retries: Option<u32>,
    deadline: Option<Duration>,
    error_predicates: Vec<Predicate>,
    result_predicates: Vec<Predicate>,
    budget: Option<RetryBudget>,
    name: String,
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("backoff", &self.backoff)
            .field("retries", &self.retries)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RetryBuilder {
    /// The delays between attempts. Its own retry limit applies unless
    /// [`max_attempts`](Self::max_attempts) or [`max_retries`](Self::max_retries) is set.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Calls in total, the first included. `max_attempts(1)` never retries.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retries = Some(attempts.wrapping_sub(1));
        self
    }

    /// Retries after the first call. `max_retries(0)` never retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The whole run, attempts and delays, never sleeps past this much time
    /// after it started.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Retries only errors of type `E` for which `predicate` is true. Errors
    /// of other types are still retried unless another predicate says no.
    pub fn retry_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_predicates
            .push(Arc::new(move |error: &dyn Any| error.downcast_ref::<E>().map(&predicate)));
        self
    }

    /// Retries `Ok` values of type `T` for which `predicate` is true (an HTTP 503
    /// returned as a value, an empty page that should fill).
    pub fn retry_if_result<T: 'static>(
        mut self,
        predicate: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.result_predicates
            .push(Arc::new(move |value: &dyn Any| value.downcast_ref::<T>().map(&predicate)));
        self
    }

    /// Spends one retry of `budget` before each retry, and deposits each first attempt.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The name used in logs and metric labels. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for `max_attempts(0)` or a zero deadline.
    pub fn build(self) -> Result<Retry, ConfigError> {
        if self.retries == Some(u32::MAX) {
            return Err(ConfigError::Zero { field: "max_attempts" });
        }
        if self.deadline.is_some_and(|deadline| deadline.is_zero()) {
            return Err(ConfigError::ZeroDuration { field: "deadline" });
        }
        let backoff = match self.backoff {
            Some(backoff) => backoff,
            None => Backoff::exponential(Duration::from_millis(100))
                .jitter(conc_core::backoff::Jitter::Full)
                .max_delay(Duration::from_secs(10))
                .build()
                .map_err(|_| ConfigError::Zero { field: "backoff" })?,
        };
        let retries = self.retries.or(backoff.max_retries()).unwrap_or(2);
        let name = self.name;
        Ok(Retry {
            inner: Arc::new(Inner {
                backoff,
                retries,
                deadline: self.deadline,
                error_predicates: self.error_predicates.into_boxed_slice(),
                result_predicates: self.result_predicates.into_boxed_slice(),
                budget: self.budget,
                calls: AtomicU64::new(0),
                retried: AtomicU64::new(0),
                exhausted: AtomicU64::new(0),
                budget_refused: AtomicU64::new(0),
                attempts_counter: metrics::counter!(RETRY_ATTEMPTS, "retry" => name.clone()),
                exhausted_counter: metrics::counter!(RETRY_EXHAUSTED, "retry" => name.clone()),
                name,
            }),
        })
    }
}

struct Inner {
    backoff: Backoff,
    retries: u32,
    deadline: Option<Duration>,
    error_predicates: Box<[Predicate]>,
    result_predicates: Box<[Predicate]>,
    budget: Option<RetryBudget>,
    calls: AtomicU64,
    retried: AtomicU64,
    exhausted: AtomicU64,
    budget_refused: AtomicU64,
    attempts_counter: metrics::Counter,
    exhausted_counter: metrics::Counter,
    name: String,
}

/// A retry policy. Cheap to clone; clones share their metrics and budget.
#[derive(Clone)]
pub struct Retry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.inner.name)
            .field("backoff", &self.inner.backoff)
            .field("max_retries", &self.inner.retries)
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

/// Where one run stands: the schedule and the attempt number.
#[derive(Debug)]
pub(crate) struct RunState {
    delays: Option<conc_core::backoff::Delays>,
    number: u32,
    started: Option<tokio::time::Instant>,
}

impl RunState {
    pub(crate) fn attempt(&self) -> Attempt {
        Attempt { number: self.number }
    }
}

/// Counts of a [`Retry`]'s runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryMetrics {
    /// Runs started.
    pub calls: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Runs that ended on a retryable failure: limit, deadline or budget reached.
    pub exhausted: u64,
    /// Retries the budget refused.
    pub budget_refused: u64,
}

impl Retry {
    /// A builder with the defaults listed on [`RetryBuilder`].
    pub fn builder() -> RetryBuilder {
        RetryBuilder {
            backoff: None,
            retries: None,
            deadline: None,
            error_predicates: Vec::new(),
            result_predicates: Vec::new(),
            budget: None,
            name: "default".to_owned(),
        }
    }

    /// Retries after the first call, at most.
    pub fn max_retries(&self) -> u32 {
        self.inner.retries
    }

    /// Whether `result` should be retried, by the predicates.
    pub fn should_retry<T: 'static, E: 'static>(&self, result: &Result<T, E>) -> bool {
        match result {
            Ok(value) => {
                self.inner.result_predicates.iter().any(|predicate| predicate(value) == Some(true))
            }
            Err(error) => {
                self.inner.error_predicates.iter().all(|predicate| predicate(error) != Some(false))
            }
        }
    }

    /// Runs `operation` until it succeeds or retrying stops; returns the last outcome.
    ///
    /// # Errors
    ///
    /// The last attempt's error, when every attempt allowed failed.
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

    /// Starts a run: counts it and deposits it in the budget.
    pub(crate) fn begin(&self) -> RunState {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(budget) = &self.inner.budget {
            budget.deposit();
        }
        // The start is read only when a deadline needs it.
        let started = self.inner.deadline.map(|_| tokio::time::Instant::now());
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
        let inner = &*self.inner;
        match self.next_delay(&mut run.delays, run.number, run.started) {
            Ok(delay) => Some(delay),
            Err(reason) => {
                inner.exhausted.fetch_add(1, Ordering::Relaxed);
                inner.exhausted_counter.increment(1);
                tracing::debug!(target: "conc_resilience::retry", retry = %inner.name, attempts = run.number, ?reason, "retrying stopped");
                None
            }
        }
    }

    /// After the delay [`plan_retry`](Self::plan_retry) gave: counts the retry.
    pub(crate) fn begin_retry(&self, run: &mut RunState) {
        let inner = &*self.inner;
        run.number += 1;
        inner.retried.fetch_add(1, Ordering::Relaxed);
        inner.attempts_counter.increment(1);
    }

    /// The delay before the next attempt, or why there is none.
    fn next_delay(
        &self,
        delays: &mut Option<conc_core::backoff::Delays>,
        attempts: u32,
        started: Option<tokio::time::Instant>,
    ) -> Result<Duration, StopReason> {
        let inner = &*self.inner;
        if attempts > inner.retries {
            return Err(StopReason::Exhausted);
        }
        let delay = delays
            .get_or_insert_with(|| inner.backoff.delays())
            .next()
            .unwrap_or_else(|| inner.backoff.base_delay(attempts - 1));
        if let (Some(deadline), Some(started)) = (inner.deadline, started)
            && started.elapsed().saturating_add(delay) >= deadline
        {
            return Err(StopReason::Deadline);
        }
        if let Some(budget) = &inner.budget
            && !budget.try_withdraw()
        {
            inner.budget_refused.fetch_add(1, Ordering::Relaxed);
            return Err(StopReason::Budget);
        }
        Ok(delay)
    }

    /// Whether an `Ok` value is retried.
    pub(crate) fn retry_value(&self, value: &dyn Any) -> bool {
        self.inner.result_predicates.iter().any(|predicate| predicate(value) == Some(true))
    }

    /// Whether an error is retried.
    pub(crate) fn retry_error(&self, error: &dyn Any) -> bool {
        self.inner.error_predicates.iter().all(|predicate| predicate(error) != Some(false))
    }

    /// Counts of runs, retries and give-ups so far.
    pub fn metrics(&self) -> RetryMetrics {
        let inner = &*self.inner;
        RetryMetrics {
            calls: inner.calls.load(Ordering::Relaxed),
            retries: inner.retried.load(Ordering::Relaxed),
            exhausted: inner.exhausted.load(Ordering::Relaxed),
            budget_refused: inner.budget_refused.load(Ordering::Relaxed),
        }
    }
}
