//! The retry builder.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_core::config::{self, ConfigError};

use super::Retry;
use super::budget::RetryBudget;
use super::handle::{Inner, Predicate};

/// How many calls a run may make.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Attempts(u32),
    Retries(u32),
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
/// | [`name`](Self::name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::Retry;
///
/// let retry = Retry::builder()
///     .backoff(Backoff::fixed(Duration::from_millis(50)).build()?)
///     .max_attempts(5)
///     .deadline(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(retry.max_retries(), 4);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct RetryBuilder {
    backoff: Option<Backoff>,
    limit: Option<Limit>,
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
            .field("limit", &self.limit)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RetryBuilder {
    pub(super) fn new() -> Self {
        Self {
            backoff: None,
            limit: None,
            deadline: None,
            error_predicates: Vec::new(),
            result_predicates: Vec::new(),
            budget: None,
            name: "default".to_owned(),
        }
    }

    /// The delays between attempts. Its own retry limit applies unless
    /// [`max_attempts`](Self::max_attempts) or [`max_retries`](Self::max_retries)
    /// is set. Defaults to exponential from 100 ms, factor 2, full jitter,
    /// capped at 10 s.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Calls in total, the first included, at least 1: `max_attempts(1)`
    /// never retries. Defaults to 3 (unless the backoff has a limit).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.limit = Some(Limit::Attempts(attempts));
        self
    }

    /// Retries after the first call: `max_retries(0)` never retries.
    /// Defaults to 2 (unless the backoff has a limit).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.limit = Some(Limit::Retries(retries));
        self
    }

    /// The whole run, attempts and delays, never sleeps past this much time
    /// after it started (longer than zero). No deadline by default.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Retries only errors of type `E` for which `predicate` is true. Errors
    /// of other types are still retried unless another predicate says no.
    /// By default every error is retried.
    pub fn retry_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_predicates
            .push(Arc::new(move |error: &dyn Any| error.downcast_ref::<E>().map(&predicate)));
        self
    }

    /// Retries `Ok` values of type `T` for which `predicate` is true (an HTTP 503
    /// returned as a value, an empty page that should fill). By default no
    /// `Ok` is retried.
    pub fn retry_if_result<T: 'static>(
        mut self,
        predicate: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.result_predicates
            .push(Arc::new(move |value: &dyn Any| value.downcast_ref::<T>().map(&predicate)));
        self
    }

    /// Spends one retry of `budget` before each retry, and deposits each
    /// first attempt. No budget by default.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The name used in logs and metric labels: not empty, no NUL byte.
    /// Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for `max_attempts(0)`, a zero deadline, or a name
    /// that is empty or holds a NUL byte.
    pub fn build(self) -> Result<Retry, ConfigError> {
        let limit = match self.limit {
            Some(Limit::Attempts(attempts)) => {
                Some(config::at_least("max_attempts", attempts, 1)? - 1)
            }
            Some(Limit::Retries(retries)) => Some(retries),
            None => None,
        };
        if let Some(deadline) = self.deadline {
            config::positive("deadline", deadline)?;
        }
        config::name("name", &self.name)?;
        let backoff = match self.backoff {
            Some(backoff) => backoff,
            None => Backoff::exponential(Duration::from_millis(100))
                .jitter(Jitter::Full)
                .max_delay(Duration::from_secs(10))
                .build()?,
        };
        let retries = limit.or(backoff.max_retries()).unwrap_or(2);
        let inner = Inner::new(
            backoff,
            retries,
            self.deadline,
            self.error_predicates,
            self.result_predicates,
            self.budget,
            self.name,
        );
        Ok(Retry::from_parts(Arc::new(inner), ()))
    }
}
