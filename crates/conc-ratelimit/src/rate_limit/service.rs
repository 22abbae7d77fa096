//! [`RateLimit`]: the service [`RateLimitLayer`](super::RateLimitLayer) builds.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxError;
use tower::Service;

use super::future::ResponseFuture;
use crate::{Limiter, RateLimitError};

/// What the middleware does with a request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Fail the call at once with a [`RateLimitError::Limited`] naming the
    /// wait (answer it with a 429 and `Retry-After`). The default.
    #[default]
    Reject,
    /// Wait until the key has capacity, then call the inner service
    /// (backpressure). Dropping the response future gives the wait up and
    /// consumes nothing.
    Wait,
}

/// A service charging one unit of a shared [`Limiter`] per request before
/// calling the inner service; built by
/// [`RateLimitLayer`](super::RateLimitLayer). Clones share the limiter.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_ratelimit::{Keyed, Quota, RateLimit};
/// use tower::{Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let per_user = Arc::new(Keyed::new(Quota::per_minute(1)?));
/// let inner = service_fn(|user: u64| async move { Ok::<_, std::convert::Infallible>(user) });
/// let mut svc = RateLimit::new(inner, per_user, |user: &u64| *user);
/// assert_eq!(svc.ready().await?.call(7).await?, 7);
/// assert!(svc.ready().await?.call(7).await.is_err());
/// # Ok(()) }
/// ```
pub struct RateLimit<S, L, E> {
    inner: S,
    limiter: Arc<L>,
    extract: Arc<E>,
    mode: Mode,
}

impl<S, L, E> RateLimit<S, L, E> {
    /// Wraps `inner`, charging `limiter` one unit per request under the key
    /// `extract(&request)`, rejecting requests over the limit.
    pub fn new(inner: S, limiter: Arc<L>, extract: E) -> Self {
        Self::from_parts(inner, limiter, Arc::new(extract), Mode::Reject)
    }

    pub(super) fn from_parts(inner: S, limiter: Arc<L>, extract: Arc<E>, mode: Mode) -> Self {
        Self { inner, limiter, extract, mode }
    }

    /// Rejects or waits. Defaults to [`Mode::Reject`].
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, L, E> Clone for RateLimit<S, L, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
            extract: Arc::clone(&self.extract),
            mode: self.mode,
        }
    }
}

impl<S, L, E> fmt::Debug for RateLimit<S, L, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl<S, Req, L, E> Service<Req> for RateLimit<S, L, E>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    L: Limiter,
    E: Fn(&Req) -> L::Key,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, L>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = (self.extract)(&request);
        match (self.limiter.try_acquire(&key, 1), self.mode) {
            (Ok(()), _) => ResponseFuture::called(self.inner.call(request)),
            (
                Err(
                    refused
                    @ (RateLimitError::ExceedsCapacity { .. } | RateLimitError::Unavailable),
                ),
                _,
            )
            | (Err(refused), Mode::Reject) => {
                tracing::debug!(retry_after = ?refused.retry_after(), "conc-ratelimit: request rejected");
                ResponseFuture::rejected(refused)
            }
            (Err(refused), Mode::Wait) => {
                // The readied service goes with the request; this one gets a
                // fresh clone that must be polled ready again (tower's
                // clone-and-swap pattern).
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                let wait = refused.retry_after().unwrap_or_default();
                ResponseFuture::waiting(
                    Arc::clone(&self.limiter),
                    key,
                    (ready, request),
                    wait.max(Duration::from_nanos(1)),
                )
            }
        }
    }
}
