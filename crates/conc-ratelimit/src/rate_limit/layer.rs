//! [`RateLimitLayer`]: builds [`RateLimit`] services sharing one limiter.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::{Mode, RateLimit};

/// A tower [`Layer`] limiting requests with one shared
/// [`Limiter`](crate::Limiter) (any of the crate's limiters, a [`Keyed`](crate::Keyed)
/// one with any hasher), so every service it builds and every clone of them
/// charge the same limiter.
///
/// The key comes from `extract(&request)`: a user id, an IP address, or `()`
/// for a direct limiter (one limit over everything).
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
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RateLimitLayer<L, E> {
    limiter: Arc<L>,
    extract: Arc<E>,
    mode: Mode,
}

impl<L, E> RateLimitLayer<L, E> {
    /// A layer charging one unit of `limiter` per request, under the key
    /// `extract(&request)`, rejecting requests over the limit.
    pub fn new(limiter: Arc<L>, extract: E) -> Self {
        Self { limiter, extract: Arc::new(extract), mode: Mode::Reject }
    }

    /// Rejects or waits. Defaults to [`Mode::Reject`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The limiter every service of this layer charges.
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }
}

impl<L, E> Clone for RateLimitLayer<L, E> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            extract: Arc::clone(&self.extract),
            mode: self.mode,
        }
    }
}

impl<L, E> fmt::Debug for RateLimitLayer<L, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl<S, L, E> Layer<S> for RateLimitLayer<L, E> {
    type Service = RateLimit<S, L, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::from_parts(
            inner,
            Arc::clone(&self.limiter),
            Arc::clone(&self.extract),
            self.mode,
        )
    }
}
