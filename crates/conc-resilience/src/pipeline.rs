//! Composition: one builder that stacks the primitives in a fixed, documented
//! order and runs a closure through them.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use conc_core::metrics::FALLBACK_USED;
use tracing::Instrument;

use crate::{
    Attempt, Bulkhead, BulkheadError, CircuitBreaker, Elapsed, LoadShedder, Rejected, Retry, Shed,
    Timeout,
};

/// What kind of failure a [`ResilienceError`] is, for fallbacks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation's own error.
    Inner,
    /// The circuit breaker refused the call.
    BreakerOpen,
    /// The bulkhead refused the call.
    BulkheadFull,
    /// A timeout cut the call (or the whole run) off.
    Timeout,
    /// The load shedder refused the call.
    Shed,
}

impl ErrorKind {
    /// Whether the call was refused before it ran (breaker, bulkhead, shedder).
    pub fn is_rejection(self) -> bool {
        matches!(self, Self::BreakerOpen | Self::BulkheadFull | Self::Shed)
    }
}

/// The error of a [`Pipeline`] run: the operation's own error, or which
/// primitive stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResilienceError<E> {
    /// The operation ran and failed (after any retries).
    Inner(E),
    /// The circuit breaker refused the call.
    BreakerOpen(Rejected),
    /// The bulkhead refused the call.
    BulkheadFull(BulkheadError),
    /// A timeout elapsed.
    Timeout(Elapsed),
    /// The load shedder refused the call.
    Shed(Shed),
}

impl<E> ResilienceError<E> {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Inner(_) => ErrorKind::Inner,
            Self::BreakerOpen(_) => ErrorKind::BreakerOpen,
            Self::BulkheadFull(_) => ErrorKind::BulkheadFull,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Shed(_) => ErrorKind::Shed,
        }
    }

    /// The operation's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for ResilienceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inner(error) => error.fmt(f),
            Self::BreakerOpen(rejected) => rejected.fmt(f),
            Self::BulkheadFull(error) => error.fmt(f),
            Self::Timeout(elapsed) => elapsed.fmt(f),
            Self::Shed(shed) => shed.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ResilienceError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Inner(error) => Some(error),
            Self::BreakerOpen(rejected) => Some(rejected),
            Self::BulkheadFull(error) => Some(error),
            Self::Timeout(elapsed) => Some(elapsed),
            Self::Shed(shed) => Some(shed),
        }
    }
}

type Handler<T, E> = Arc<dyn Fn(&ResilienceError<E>) -> Option<T> + Send + Sync>;

/// Answers failed calls with a value instead, chosen by the kind of failure.
///
/// # Examples
///
/// ```
/// use conc_resilience::{ErrorKind, Fallback, ResilienceError};
///
/// let fallback: Fallback<&str, std::io::Error> = Fallback::new()
///     .on(ErrorKind::BreakerOpen, |_| "cached page")
///     .on_inner(|error: &std::io::Error| (error.kind() == std::io::ErrorKind::NotFound).then_some("empty page"));
/// let refused = conc_resilience::CircuitBreaker::builder().build()?;
/// refused.force_open();
/// let rejected = refused.try_acquire().unwrap_err();
/// assert_eq!(fallback.apply(Err(ResilienceError::BreakerOpen(rejected))).unwrap(), "cached page");
/// # Ok::<(), conc_resilience::ConfigError>(())
/// ```
pub struct Fallback<T, E> {
    handlers: Vec<Handler<T, E>>,
    used: metrics::Counter,
}

impl<T, E> Clone for Fallback<T, E> {
    fn clone(&self) -> Self {
        Self { handlers: self.handlers.clone(), used: self.used.clone() }
    }
}

impl<T, E> fmt::Debug for Fallback<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("handlers", &self.handlers.len()).finish_non_exhaustive()
    }
}

impl<T, E> Default for Fallback<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> Fallback<T, E> {
    /// A fallback that handles nothing yet.
    pub fn new() -> Self {
        Self { handlers: Vec::new(), used: metrics::counter!(FALLBACK_USED) }
    }

    /// Answers failures of `kind` with `value(&error)`. Handlers are tried in
    /// the order added; the first that answers wins.
    #[must_use]
    pub fn on(
        mut self,
        kind: ErrorKind,
        value: impl Fn(&ResilienceError<E>) -> T + Send + Sync + 'static,
    ) -> Self {
        self.handlers.push(Arc::new(move |error| (error.kind() == kind).then(|| value(error))));
        self
    }

    /// Answers every rejection (breaker open, bulkhead full, shed) with `value`.
    #[must_use]
    pub fn on_rejection(
        mut self,
        value: impl Fn(&ResilienceError<E>) -> T + Send + Sync + 'static,
    ) -> Self {
        self.handlers
            .push(Arc::new(move |error| error.kind().is_rejection().then(|| value(error))));
        self
    }

    /// Answers the operation's own errors for which `value` returns `Some`.
    #[must_use]
    pub fn on_inner(mut self, value: impl Fn(&E) -> Option<T> + Send + Sync + 'static) -> Self {
        self.handlers.push(Arc::new(move |error| match error {
            ResilienceError::Inner(inner) => value(inner),
            _ => None,
        }));
        self
    }

    /// Replaces a handled failure with its fallback value; passes everything else through.
    ///
    /// # Errors
    ///
    /// The failure, when no handler answers it.
    pub fn apply(&self, result: Result<T, ResilienceError<E>>) -> Result<T, ResilienceError<E>> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => match self.handlers.iter().find_map(|handler| handler(&error)) {
                Some(value) => {
                    self.used.increment(1);
                    Ok(value)
                }
                None => Err(error),
            },
        }
    }
}

/// Builds a [`Pipeline`]. Every stage is optional.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PipelineBuilder {
    shed: Option<(LoadShedder, u64)>,
    total_timeout: Option<Timeout>,
    retry: Option<Retry>,
    breaker: Option<CircuitBreaker>,
    bulkhead: Option<Bulkhead>,
    attempt_timeout: Option<Timeout>,
}

impl PipelineBuilder {
    /// Admits each run through `shedder`, costing `units`.
    pub fn load_shedder(mut self, shedder: LoadShedder, units: u64) -> Self {
        self.shed = Some((shedder, units));
        self
    }

    /// Bounds the whole run, retries and delays included.
    pub fn total_timeout(mut self, timeout: Timeout) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// Retries attempts that fail with the operation's own error or an
    /// attempt timeout. Rejections by the breaker or bulkhead are not retried.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Guards each attempt with `breaker`; an attempt timeout counts as a failure.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Runs each attempt in a slot of `bulkhead`.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Bounds each attempt.
    pub fn attempt_timeout(mut self, timeout: Timeout) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Builds the pipeline.
    pub fn build(self) -> Pipeline {
        Pipeline {
            shed: self.shed,
            total_timeout: self.total_timeout,
            retry: self.retry,
            breaker: self.breaker,
            bulkhead: self.bulkhead,
            attempt_timeout: self.attempt_timeout,
        }
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
/// [`Pipeline::run_with_fallback`]. Each run is wrapped in a `tracing` span
/// (`resilience_pipeline`, debug level, target `conc_resilience::pipeline`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{Bulkhead, CircuitBreaker, Pipeline, Retry, Timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pipeline = Pipeline::builder()
///     .total_timeout(Timeout::new(Duration::from_secs(10))?)
///     .retry(Retry::builder().backoff(Backoff::fixed(Duration::from_millis(200)).build()?).max_attempts(3).build()?)
///     .circuit_breaker(CircuitBreaker::builder().minimum_calls(20).build()?)
///     .bulkhead(Bulkhead::builder().max_concurrent(32).build()?)
///     .attempt_timeout(Timeout::new(Duration::from_secs(2))?)
///     .build();
///
/// let answer = pipeline
///     .run(|attempt| async move {
///         if attempt.is_retry() { Ok(42) } else { Err(std::io::Error::other("first try fails")) }
///     })
///     .await?;
/// assert_eq!(answer, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Pipeline {
    shed: Option<(LoadShedder, u64)>,
    total_timeout: Option<Timeout>,
    retry: Option<Retry>,
    breaker: Option<CircuitBreaker>,
    bulkhead: Option<Bulkhead>,
    attempt_timeout: Option<Timeout>,
}

impl Pipeline {
    /// A builder with no stage.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Runs `operation` through every configured stage.
    ///
    /// # Errors
    ///
    /// [`ResilienceError`] naming the stage that stopped the run, or the
    /// operation's last error.
    pub async fn run<T, E, F, Fut>(&self, operation: F) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        let _load = match &self.shed {
            Some((shedder, units)) => {
                Some(shedder.try_admit(*units).map_err(ResilienceError::Shed)?)
            }
            None => None,
        };
        // One span per run (a no-op unless a subscriber enables debug spans
        // for this target); retries and rejections are logged inside it.
        let span = tracing::debug_span!(target: "conc_resilience::pipeline", "resilience_pipeline");
        let run = async {
            match &self.total_timeout {
                Some(timeout) => {
                    timeout.call(self.retried(operation)).await.map_err(ResilienceError::Timeout)?
                }
                None => self.retried(operation).await,
            }
        };
        run.instrument(span).await
    }

    /// Runs `operation` and answers handled failures with `fallback`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), for failures the fallback does not handle.
    pub async fn run_with_fallback<T, E, F, Fut>(
        &self,
        fallback: &Fallback<T, E>,
        operation: F,
    ) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        fallback.apply(self.run(operation).await)
    }

    async fn retried<T, E, F, Fut>(&self, mut operation: F) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        let Some(retry) = &self.retry else {
            return self.attempt(&mut operation, crate::retry::FIRST).await;
        };
        let mut run = retry.begin();
        loop {
            let result = self.attempt(&mut operation, run.attempt()).await;
            let again = match &result {
                Ok(value) => retry.retry_value(value),
                Err(ResilienceError::Inner(error)) => retry.retry_error(error),
                Err(ResilienceError::Timeout(_)) => true,
                Err(_) => false,
            };
            if !again || !retry.pause(&mut run).await {
                return result;
            }
        }
    }

    async fn attempt<T, E, F, Fut>(
        &self,
        operation: &mut F,
        attempt: Attempt,
    ) -> Result<T, ResilienceError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: 'static,
        E: 'static,
    {
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.try_acquire().map_err(ResilienceError::BreakerOpen)?),
            None => None,
        };
        let _slot = match &self.bulkhead {
            Some(bulkhead) => {
                Some(bulkhead.acquire().await.map_err(ResilienceError::BulkheadFull)?)
            }
            None => None,
        };
        let outcome = match &self.attempt_timeout {
            Some(timeout) => timeout.call(operation(attempt)).await,
            None => Ok(operation(attempt).await),
        };
        match outcome {
            Ok(result) => {
                if let Some(permit) = permit {
                    permit.record(&result);
                }
                result.map_err(ResilienceError::Inner)
            }
            Err(elapsed) => {
                if let Some(permit) = permit {
                    permit.failure();
                }
                Err(ResilienceError::Timeout(elapsed))
            }
        }
    }
}
