//! [`RateLimitLayer`]: tower middleware over a shared [`Keyed`] limiter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxError;
use conc_core::time::Clock;
use tower::{Layer, Service};

use crate::{Keyed, RateLimitError};

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

/// A tower [`Layer`] limiting requests per key with one [`Keyed`] limiter
/// shared by every service it builds and every clone of them, so a limit
/// holds across connections (tower's own `RateLimit` is per service value
/// and not `Clone`).
///
/// The key comes from `extract(&request)`: a user id, an IP address, or `()`
/// for one limit over everything.
///
/// `poll_ready` is the inner service's; the limit is applied in `call`, so a
/// `call` without a preceding ready `poll_ready` is the inner service's
/// concern, never a panic here.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_ratelimit::{Keyed, Mode, Quota, RateLimitLayer};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let per_user = Arc::new(Keyed::new(Quota::per_second(1)?));
/// let layer = RateLimitLayer::new(per_user, |user: &String| user.clone()).mode(Mode::Reject);
/// let mut svc = ServiceBuilder::new().layer(layer).service(service_fn(|user: String| async move {
///     Ok::<_, std::convert::Infallible>(format!("hi {user}"))
/// }));
///
/// assert_eq!(svc.ready().await?.call("ann".to_owned()).await?, "hi ann");
/// assert!(svc.ready().await?.call("ann".to_owned()).await.is_err()); // over the limit
/// assert_eq!(svc.ready().await?.call("bob".to_owned()).await?, "hi bob");
/// # Ok(()) }
/// ```
pub struct RateLimitLayer<K, E, C = conc_core::time::CoarseClock> {
    limiter: Arc<Keyed<K, C>>,
    extract: Arc<E>,
    mode: Mode,
}

impl<K, E, C> RateLimitLayer<K, E, C> {
    /// A layer charging one unit of `limiter` per request, under the key
    /// `extract(&request)`, rejecting requests over the limit.
    pub fn new(limiter: Arc<Keyed<K, C>>, extract: E) -> Self {
        Self { limiter, extract: Arc::new(extract), mode: Mode::Reject }
    }

    /// Rejects or waits. Defaults to [`Mode::Reject`].
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

impl<K, E, C> Clone for RateLimitLayer<K, E, C> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            extract: Arc::clone(&self.extract),
            mode: self.mode,
        }
    }
}

impl<K, E, C> fmt::Debug for RateLimitLayer<K, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl<S, K, E, C> Layer<S> for RateLimitLayer<K, E, C> {
    type Service = RateLimit<S, K, E, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: Arc::clone(&self.limiter),
            extract: Arc::clone(&self.extract),
            mode: self.mode,
        }
    }
}

/// The service [`RateLimitLayer`] builds; clones share the limiter.
pub struct RateLimit<S, K, E, C = conc_core::time::CoarseClock> {
    inner: S,
    limiter: Arc<Keyed<K, C>>,
    extract: Arc<E>,
    mode: Mode,
}

impl<S: Clone, K, E, C> Clone for RateLimit<S, K, E, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
            extract: Arc::clone(&self.extract),
            mode: self.mode,
        }
    }
}

impl<S, K, E, C> fmt::Debug for RateLimit<S, K, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// The response future of [`RateLimit`].
pub type ResponseFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, Req, K, E, C> Service<Req> for RateLimit<S, K, E, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    E: Fn(&Req) -> K,
    C: Clock + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = (self.extract)(&request);
        match (self.limiter.try_acquire(&key, 1), self.mode) {
            (Ok(()), _) => {
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
            (
                Err(
                    refused
                    @ (RateLimitError::ExceedsCapacity { .. } | RateLimitError::Unavailable),
                ),
                _,
            )
            | (Err(refused), Mode::Reject) => {
                tracing::debug!(retry_after = ?refused.retry_after(), "conc-ratelimit: request rejected");
                Box::pin(async move { Err(refused.into()) })
            }
            (Err(_), Mode::Wait) => {
                // The readied service goes with the request; this one gets a
                // fresh clone that must be polled ready again (tower's
                // clone-and-swap pattern).
                let fresh = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, fresh);
                let limiter = Arc::clone(&self.limiter);
                Box::pin(async move {
                    limiter.acquire(&key, 1).await?;
                    ready.call(request).await.map_err(Into::into)
                })
            }
        }
    }
}
