//! [`ThrottlesExceptionsLayer`]: after a run of failures of a key, its jobs
//! are released for a cooldown instead of run.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_core::config::ConfigError;
use conc_core::time::Clock;
use conc_resilience::{CircuitBreaker, FailureWindow};
use futures::FutureExt as _;
use tower::{Layer, Service};

use super::{JobRequest, KeyFn, name_key};
use crate::JobError;

/// A builder of a [`ThrottlesExceptionsLayer`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::middleware::ThrottlesExceptionsLayer;
///
/// assert!(ThrottlesExceptionsLayer::builder().max_exceptions(0).build().is_err());
/// let layer = ThrottlesExceptionsLayer::builder()
///     .max_exceptions(5)
///     .cooldown(Duration::from_secs(300))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use]
pub struct ThrottlesExceptionsBuilder {
    max_exceptions: u32,
    cooldown: Duration,
    key: KeyFn,
    counts: Arc<dyn Fn(&JobError) -> bool + Send + Sync>,
    clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for ThrottlesExceptionsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottlesExceptionsBuilder")
            .field("max_exceptions", &self.max_exceptions)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

impl ThrottlesExceptionsBuilder {
    /// Failures in a row of one key that open its breaker. Defaults to 10.
    pub fn max_exceptions(mut self, n: u32) -> Self {
        self.max_exceptions = n;
        self
    }

    /// How long an open breaker releases the key's jobs before letting one
    /// through to try. Defaults to 10 minutes.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The key a job's failures are counted under; `None` leaves the job
    /// alone. Defaults to the job type's name.
    pub fn key(
        mut self,
        key: impl Fn(&JobRequest) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Which failures count towards opening the breaker (Laravel's `when`);
    /// the others fail the attempt as usual but count neither way. Defaults
    /// to every error, fatal ones included.
    ///
    /// ```
    /// use conc_bus::middleware::ThrottlesExceptionsLayer;
    ///
    /// // Only retryable errors (a fatal one says the job itself is wrong).
    /// let layer = ThrottlesExceptionsLayer::builder().when(|error| error.is_retry()).build()?;
    /// # let _ = layer;
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn when(mut self, counts: impl Fn(&JobError) -> bool + Send + Sync + 'static) -> Self {
        self.counts = Arc::new(counts);
        self
    }

    /// The clock the breakers read. Defaults to conc-core's coarse clock;
    /// tests pass a clock that follows tokio's paused time.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `max_exceptions` when it is 0, or `cooldown`
    /// when it is zero.
    pub fn build(self) -> Result<ThrottlesExceptionsLayer, ConfigError> {
        if self.max_exceptions == 0 {
            return Err(ConfigError::new("max_exceptions", 0, "must be at least 1"));
        }
        conc_core::config::positive("cooldown", self.cooldown)?;
        // Checked once here, so building a key's breaker later cannot fail.
        self.breaker()?;
        Ok(ThrottlesExceptionsLayer {
            shared: Arc::new(Shared { config: self, breakers: Mutex::default() }),
        })
    }

    /// A breaker that opens after `max_exceptions` failures in a row and
    /// lets one probe through after `cooldown`.
    fn breaker(&self) -> Result<CircuitBreaker, ConfigError> {
        let builder = CircuitBreaker::builder()
            .sliding_window(FailureWindow::count(self.max_exceptions))
            .minimum_calls(self.max_exceptions)
            .failure_rate_threshold(1.0)
            .permitted_calls_in_half_open(1)
            .wait_in_open(self.cooldown);
        match &self.clock {
            Some(clock) => builder.clock(Arc::clone(clock)).build(),
            None => builder.build(),
        }
    }
}

struct Shared {
    config: ThrottlesExceptionsBuilder,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
}

/// Middleware that stops running the jobs of a key that keeps failing
/// (Laravel's `ThrottlesExceptions`), with a conc-resilience circuit breaker
/// per key (feature `resilience`).
///
/// Each key (the job type's name by default) has a breaker that opens after
/// `max_exceptions` failed attempts in a row (errors, fatal errors and
/// panics, or those [`when`](ThrottlesExceptionsBuilder::when) picks; a
/// release counts neither way). While it is open, the key's jobs
/// are **released** for the rest of the cooldown instead of run, so they do
/// not use up `max_exceptions` (their attempts still count against
/// `max_attempts`). After the cooldown one job runs as a probe: a success
/// closes the breaker, a failure opens it for another cooldown. A failure
/// below the threshold is retried with the job's own backoff.
///
/// **The state is per process**: each worker process (each layer) counts its
/// own failures, so with N processes a failing key may be tried up to N ×
/// `max_exceptions` times before every process backs off. Laravel keeps the
/// count in its cache (shared by workers that share the cache).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::middleware::ThrottlesExceptionsLayer;
/// use conc_bus::JobHandlers;
///
/// // After 3 failures in a row of calls to one provider, wait 5 minutes.
/// let layer = ThrottlesExceptionsLayer::builder()
///     .max_exceptions(3)
///     .cooldown(Duration::from_secs(300))
///     .key(|request| request.name().starts_with("sync-").then(|| "provider".to_owned()))
///     .build()?;
/// let handlers = JobHandlers::new().layer(layer);
/// # let _ = handlers;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ThrottlesExceptionsLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ThrottlesExceptionsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottlesExceptionsLayer").field("config", &self.shared.config).finish()
    }
}

impl ThrottlesExceptionsLayer {
    /// A builder.
    pub fn builder() -> ThrottlesExceptionsBuilder {
        ThrottlesExceptionsBuilder {
            max_exceptions: 10,
            cooldown: Duration::from_secs(600),
            key: name_key(),
            counts: Arc::new(|_: &JobError| true),
            clock: None,
        }
    }

    /// The breaker of `key`, made on first use.
    fn breaker(&self, key: &str) -> CircuitBreaker {
        let mut breakers = self.shared.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(breaker) = breakers.get(key) {
            return breaker.clone();
        }
        let breaker = self.shared.config.breaker().expect("the settings were checked by build");
        breakers.insert(key.to_owned(), breaker.clone());
        breaker
    }
}

impl<S> Layer<S> for ThrottlesExceptionsLayer {
    type Service = ThrottlesExceptions<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ThrottlesExceptions { inner, layer: self.clone() }
    }
}

/// The service of [`ThrottlesExceptionsLayer`].
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::{ThrottlesExceptions, ThrottlesExceptionsLayer};
/// use tower::Layer;
///
/// let layer = ThrottlesExceptionsLayer::builder().build()?;
/// let _service: ThrottlesExceptions<()> = layer.layer(());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ThrottlesExceptions<S> {
    inner: S,
    layer: ThrottlesExceptionsLayer,
}

impl<S> std::fmt::Debug for ThrottlesExceptions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottlesExceptions").field("layer", &self.layer).finish_non_exhaustive()
    }
}

impl<S> Service<JobRequest> for ThrottlesExceptions<S>
where
    S: Service<JobRequest, Response = (), Error = JobError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = JobError;
    type Future = BoxFuture<'static, Result<(), JobError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: JobRequest) -> Self::Future {
        let Some(key) = (self.layer.shared.config.key)(&request) else {
            return Box::pin(self.inner.call(request));
        };
        let breaker = self.layer.breaker(&key);
        let permit = match breaker.try_acquire_owned() {
            Ok(permit) => permit,
            Err(rejected) => {
                let wait = rejected.retry_after().unwrap_or(self.layer.shared.config.cooldown);
                tracing::debug!(target: "conc_bus", job = request.name(), %key, ?wait, "exceptions throttled");
                return Box::pin(async move { Err(JobError::release(wait)) });
            }
        };
        let future = self.inner.call(request);
        let counts = Arc::clone(&self.layer.shared.config.counts);
        Box::pin(async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(outcome) => {
                    match &outcome {
                        Ok(()) => permit.success(),
                        Err(JobError::Release(_)) => permit.ignore(),
                        Err(error) if counts(error) => permit.failure(),
                        Err(_) => permit.ignore(),
                    }
                    outcome
                }
                Err(panic) => {
                    permit.failure();
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }
}
