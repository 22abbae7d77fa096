//! [`RateLimitLayer`]: tower middleware over a shared [`Keyed`] limiter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxError;
use conc_core::time::Clock;
use pin_project_lite::pin_project;
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

pin_project! {
    /// The response future of [`RateLimit`]: the inner service's future
    /// once admitted, an immediate error when rejected, or (in
    /// [`Mode::Wait`]) a wait for capacity followed by the call. No
    /// allocation per request: the states live in this value.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, K, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, K, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, K, C>
    where
        S: Service<Req>,
    {
        Called {
            #[pin]
            future: S::Future,
        },
        Rejected {
            error: RateLimitError,
        },
        Waiting {
            limiter: Arc<Keyed<K, C>>,
            key: K,
            // The readied service and the request, handed over once admitted.
            ready: Option<(S, Req)>,
            started: tokio::time::Instant,
            #[pin]
            sleep: tokio::time::Sleep,
        },
    }
}

impl<S, Req, K, C> Future for ResponseFuture<S, Req, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: std::hash::Hash + Eq + Clone,
    C: Clock,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Rejected { error } => return Poll::Ready(Err((*error).into())),
                StateProj::Waiting { limiter, key, ready, started, mut sleep } => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    match limiter.try_acquire(key, 1) {
                        Err(RateLimitError::Limited { retry_after }) => {
                            // A coarse clock can lag its retry-after: never
                            // spin on a zero sleep.
                            let wait = retry_after.max(std::time::Duration::from_nanos(1));
                            sleep.reset(tokio::time::Instant::now() + wait);
                            continue;
                        }
                        Err(error) => State::Rejected { error },
                        Ok(()) => {
                            metrics::histogram!(conc_core::metrics::RATELIMIT_WAIT)
                                .record(started.elapsed().as_secs_f64());
                            match ready.take() {
                                Some((mut service, request)) => {
                                    State::Called { future: service.call(request) }
                                }
                                // Only after completion: answer as a refusal
                                // would, never panic.
                                None => State::Rejected { error: RateLimitError::Unavailable },
                            }
                        }
                    }
                }
            };
            state.set(next);
        }
    }
}

impl<S: Service<Req>, Req, K, C> fmt::Debug for ResponseFuture<S, Req, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
            State::Waiting { .. } => "waiting",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<S, Req, K, E, C> Service<Req> for RateLimit<S, K, E, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: std::hash::Hash + Eq + Clone,
    E: Fn(&Req) -> K,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, K, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = (self.extract)(&request);
        let state = match (self.limiter.try_acquire(&key, 1), self.mode) {
            (Ok(()), _) => State::Called { future: self.inner.call(request) },
            (
                Err(
                    refused
                    @ (RateLimitError::ExceedsCapacity { .. } | RateLimitError::Unavailable),
                ),
                _,
            )
            | (Err(refused), Mode::Reject) => {
                tracing::debug!(retry_after = ?refused.retry_after(), "conc-ratelimit: request rejected");
                State::Rejected { error: refused }
            }
            (Err(refused), Mode::Wait) => {
                // The readied service goes with the request; this one gets a
                // fresh clone that must be polled ready again (tower's
                // clone-and-swap pattern).
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                let wait = refused.retry_after().unwrap_or_default();
                let now = tokio::time::Instant::now();
                State::Waiting {
                    limiter: Arc::clone(&self.limiter),
                    key,
                    ready: Some((ready, request)),
                    started: now,
                    sleep: tokio::time::sleep_until(
                        now + wait.max(std::time::Duration::from_nanos(1)),
                    ),
                }
            }
        };
        ResponseFuture { state }
    }
}
