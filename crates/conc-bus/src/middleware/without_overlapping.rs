//! [`WithoutOverlappingLayer`]: at most one job of a key runs at a time,
//! across workers and processes sharing the lock store.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_lock::{LockBackend, LockStore, MemoryBackend};
use tower::{Layer, Service};

use super::{JobRequest, KeyFn, name_key};
use crate::JobError;

/// Middleware that runs at most one job of a key at a time (Laravel's
/// `WithoutOverlapping`), over a conc-lock [`LockStore`] (feature `lock`):
/// in memory for the workers of one process, in a SQLite file for the
/// processes of one machine, in Redis for many machines.
///
/// - The lock is named `overlap:{job name}:{key}`, or `overlap:{key}` when
///   [`shared`](Self::shared), so jobs of different types with the same key
///   exclude each other. The key defaults to the job type's name (one job of
///   that type at a time); [`key`](Self::key) picks one from the job, or
///   `None` to leave a job alone.
/// - A job that finds the lock taken is released for
///   [`release_after`](Self::release_after) (0 s by default) or, with
///   [`dont_release`](Self::dont_release), dropped (acknowledged without
///   running). A release does not count against `max_exceptions`; its
///   attempt counts against `max_attempts`.
/// - The lock is taken with a time to live of
///   [`expire_after`](Self::expire_after) (60 s by default) and kept alive
///   while the job runs (the guard extends it every third of that time), so
///   a long job keeps it and a worker that dies frees it within that time.
///   A running job holds it until it ends: bound that with the job's
///   `timeout`.
/// - It is released when the attempt ends, whatever the outcome: success,
///   error, release, timeout, or a panic (the guard's drop releases it).
///
/// These are efficiency locks (see conc-lock): a worker that stalls past
/// the time to live can overlap with the next holder.
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::WithoutOverlappingLayer;
/// use conc_bus::JobHandlers;
/// use conc_lock::LockStore;
/// use std::time::Duration;
///
/// // One job touching an account at a time, whatever its type.
/// let layer = WithoutOverlappingLayer::new(LockStore::memory())
///     .key(|request| Some(format!("account:{}", request.envelope().payload)))
///     .shared()
///     .release_after(Duration::from_secs(10));
/// let handlers = JobHandlers::new().layer(layer);
/// # let _ = handlers;
/// ```
pub struct WithoutOverlappingLayer<B: LockBackend = MemoryBackend> {
    store: LockStore<B>,
    key: KeyFn,
    shared: bool,
    release_after: Option<Duration>,
    expire_after: Duration,
}

impl<B: LockBackend> Clone for WithoutOverlappingLayer<B> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            key: Arc::clone(&self.key),
            shared: self.shared,
            release_after: self.release_after,
            expire_after: self.expire_after,
        }
    }
}

impl<B: LockBackend> std::fmt::Debug for WithoutOverlappingLayer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithoutOverlappingLayer")
            .field("shared", &self.shared)
            .field("release_after", &self.release_after)
            .field("expire_after", &self.expire_after)
            .finish_non_exhaustive()
    }
}

impl<B: LockBackend> WithoutOverlappingLayer<B> {
    /// Jobs take their locks in `store`.
    pub fn new(store: LockStore<B>) -> Self {
        Self {
            store,
            key: name_key(),
            shared: false,
            release_after: Some(Duration::ZERO),
            expire_after: Duration::from_secs(60),
        }
    }

    /// The key of a job's lock; `None` runs the job without one. Defaults to
    /// the job type's name.
    #[must_use]
    pub fn key(
        mut self,
        key: impl Fn(&JobRequest) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Shares keys across job types: the lock name leaves out the job's name.
    /// Off by default.
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// A job that finds the lock taken is released for `delay`. Defaults to
    /// 0 s.
    #[must_use]
    pub fn release_after(mut self, delay: Duration) -> Self {
        self.release_after = Some(delay);
        self
    }

    /// A job that finds the lock taken is dropped (acknowledged without
    /// running) instead of released.
    #[must_use]
    pub fn dont_release(mut self) -> Self {
        self.release_after = None;
        self
    }

    /// The lock's time to live: how long it outlives a worker that died
    /// holding it (a running job keeps extending it). Defaults to 60 s; the
    /// lock store refuses one under 1 ms (the attempt then fails with its
    /// error).
    #[must_use]
    pub fn expire_after(mut self, ttl: Duration) -> Self {
        self.expire_after = ttl;
        self
    }
}

impl<B: LockBackend, S> Layer<S> for WithoutOverlappingLayer<B> {
    type Service = WithoutOverlapping<B, S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithoutOverlapping { inner, layer: self.clone() }
    }
}

/// The service of [`WithoutOverlappingLayer`].
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::{WithoutOverlapping, WithoutOverlappingLayer};
/// use conc_lock::{LockStore, MemoryBackend};
/// use tower::Layer;
///
/// let layer = WithoutOverlappingLayer::new(LockStore::memory());
/// let _service: WithoutOverlapping<MemoryBackend, ()> = layer.layer(());
/// ```
pub struct WithoutOverlapping<B: LockBackend, S> {
    inner: S,
    layer: WithoutOverlappingLayer<B>,
}

impl<B: LockBackend, S: Clone> Clone for WithoutOverlapping<B, S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), layer: self.layer.clone() }
    }
}

impl<B: LockBackend, S> std::fmt::Debug for WithoutOverlapping<B, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithoutOverlapping").field("layer", &self.layer).finish_non_exhaustive()
    }
}

impl<B, S> Service<JobRequest> for WithoutOverlapping<B, S>
where
    B: LockBackend,
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
        let name = if self.layer.shared {
            format!("overlap:{key}")
        } else {
            format!("overlap:{}:{key}", request.name())
        };
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let lock = layer.store.lock(&name, layer.expire_after).map_err(JobError::retry)?;
            let Some(guard) = lock.get().await.map_err(JobError::retry)? else {
                tracing::debug!(target: "conc_bus", job = request.name(), lock = %name, "overlapping: not run");
                return match layer.release_after {
                    Some(delay) => Err(JobError::release(delay)),
                    None => Ok(()),
                };
            };
            // Dropped on a panic or a cancelled attempt: the drop releases it.
            let guard = guard.keep_alive();
            let outcome = inner.call(request).await;
            if let Err(error) = guard.release().await {
                tracing::warn!(target: "conc_bus", lock = %name, %error, "overlap lock not released; it expires on its own");
            }
            outcome
        })
    }
}
