//! [`RateLimitedLayer`]: over the limit, a job is put back for the limiter's
//! wait instead of running.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_core::time::Clock;
use conc_ratelimit::{Keyed, RateLimitError};
use tower::{Layer, Service};

use super::{JobRequest, KeyFn, name_key};
use crate::JobError;

/// A check of one unit against an in-process limiter.
type Check = Arc<dyn Fn(&str) -> Result<(), RateLimitError> + Send + Sync>;

/// Where the limit is counted.
#[derive(Clone)]
enum Source {
    /// A keyed limiter in this process.
    Memory(Check),
    /// A GCRA limit in Redis, shared by every worker process.
    #[cfg(feature = "redis")]
    Redis(Arc<conc_ratelimit::RedisLimiter>, conc_ratelimit::Quota),
}

impl Source {
    async fn check(&self, key: &str) -> Result<(), RateLimitError> {
        match self {
            Self::Memory(check) => check(key),
            #[cfg(feature = "redis")]
            Self::Redis(limiter, quota) => limiter.try_acquire(key, *quota, 1).await,
        }
    }
}

/// Middleware that admits a job only within a rate limit (Laravel's
/// `RateLimited` and `RateLimitedWithRedis`), from conc-ratelimit (feature
/// `ratelimit`).
///
/// Each attempt takes one unit for its key (by default the job type's name,
/// so the limit is per job type; [`key`](Self::key) picks another, or leaves
/// a job unlimited). Over the limit the job is **released**, not failed: it
/// goes back to its queue and is available again after the limiter's wait.
/// A release does not count against `max_exceptions`; the attempt it ends
/// counts against `max_attempts`, as attempts are counted at reservation
/// (Laravel counts it the same way). With [`dont_release`](Self::dont_release)
/// a limited job is dropped (acknowledged without running) instead.
///
/// The limit lives in this process ([`new`](Self::new), a [`Keyed`] GCRA
/// limiter) or in Redis ([`redis`](Self::redis), feature `redis`), where
/// every worker process shares it. A Redis that cannot be reached (under the
/// limiter's closed failure policy) releases the job for one second.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_bus::middleware::RateLimitedLayer;
/// use conc_bus::JobHandlers;
/// use conc_ratelimit::{Keyed, Quota};
///
/// // Ten backups a minute per customer; other jobs are not limited.
/// let limiter = Arc::new(Keyed::<String>::new(Quota::per_minute(10)?));
/// let layer = RateLimitedLayer::new(limiter).key(|request| {
///     (request.name() == "backup").then(|| format!("backup:{}", request.envelope().payload))
/// });
/// let handlers = JobHandlers::new().layer(layer);
/// # let _ = handlers;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimitedLayer {
    source: Source,
    key: KeyFn,
    release: bool,
}

impl std::fmt::Debug for RateLimitedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitedLayer").field("release", &self.release).finish_non_exhaustive()
    }
}

impl RateLimitedLayer {
    /// Limits jobs with `limiter`, in this process.
    pub fn new<C, S>(limiter: Arc<Keyed<String, C, S>>) -> Self
    where
        C: Clock + Send + Sync + 'static,
        S: std::hash::BuildHasher + Clone + Send + Sync + 'static,
    {
        let check = move |key: &str| limiter.try_acquire(&key.to_owned(), 1);
        Self { source: Source::Memory(Arc::new(check)), key: name_key(), release: true }
    }

    /// Limits jobs to `quota` per key in Redis, shared by every worker
    /// process (feature `redis`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(limiter: conc_ratelimit::RedisLimiter, quota: conc_ratelimit::Quota) -> Self {
        Self { source: Source::Redis(Arc::new(limiter), quota), key: name_key(), release: true }
    }

    /// The key a job's attempts are counted under; `None` leaves the job
    /// unlimited. Defaults to the job type's name.
    #[must_use]
    pub fn key(
        mut self,
        key: impl Fn(&JobRequest) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Drops a limited job (acknowledged without running) instead of
    /// releasing it. Off by default.
    #[must_use]
    pub fn dont_release(mut self) -> Self {
        self.release = false;
        self
    }
}

impl<S> Layer<S> for RateLimitedLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, layer: self.clone() }
    }
}

/// The service of [`RateLimitedLayer`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_bus::middleware::{RateLimited, RateLimitedLayer};
/// use conc_ratelimit::{Keyed, Quota};
/// use tower::Layer;
///
/// let layer = RateLimitedLayer::new(Arc::new(Keyed::<String>::new(Quota::per_second(5)?)));
/// let _service: RateLimited<()> = layer.layer(());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimited<S> {
    inner: S,
    layer: RateLimitedLayer,
}

impl<S> std::fmt::Debug for RateLimited<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimited").field("layer", &self.layer).finish_non_exhaustive()
    }
}

impl<S> Service<JobRequest> for RateLimited<S>
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
        let Some(key) = (self.layer.key)(&request) else {
            return Box::pin(self.inner.call(request));
        };
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let wait = match layer.source.check(&key).await {
                Ok(()) => return inner.call(request).await,
                Err(RateLimitError::Limited { retry_after }) => retry_after,
                Err(RateLimitError::Unavailable) => Duration::from_secs(1),
                Err(error) => return Err(JobError::fatal(error)),
            };
            tracing::debug!(target: "conc_bus", job = request.name(), %key, ?wait, "rate limited");
            if layer.release { Err(JobError::release(wait)) } else { Ok(()) }
        })
    }
}
