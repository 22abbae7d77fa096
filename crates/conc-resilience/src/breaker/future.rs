//! The response future of a [`CircuitBreaker`](super::CircuitBreaker) service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use super::classify::Classify;
use super::error::Rejected;
use super::permit::OwnedPermit;
use crate::NotReady;

pin_project! {
    /// The response future of a [`CircuitBreaker`](super::CircuitBreaker)
    /// service: the refusal, or the inner response, recorded in the breaker
    /// as its [`Classify`] policy counts it when it completes (a dropped
    /// future gives its permit back without an outcome).
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{CircuitBreaker, CircuitBreakerLayer, breaker::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
    /// let mut service = CircuitBreakerLayer::new(CircuitBreaker::builder().build()?)
    ///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
    /// let future: ResponseFuture<_, _> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 7);
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: Guarded<F, OwnedPermit<C>, Rejected>,
    }
}

impl<F: fmt::Debug, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").field("state", &self.state).finish()
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn not_ready() -> Self {
        Self { state: Guarded::NotReady { done: false } }
    }

    pub(super) fn refused(rejected: Rejected) -> Self {
        Self { state: Guarded::Refused { error: Some(rejected) } }
    }

    pub(super) fn admitted(future: F, permit: OwnedPermit<C>) -> Self {
        Self { state: Guarded::Admitted { future, permit: Some(permit) } }
    }
}

impl<F, T, E, C> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().state.poll_with(cx, OwnedPermit::record)
    }
}

pin_project! {
    /// A call: not ready, refused, or running with its permit.
    #[derive(Debug)]
    #[project = GuardedProj]
    enum Guarded<F, P, R> {
        NotReady { done: bool },
        Refused { error: Option<R> },
        Admitted { #[pin] future: F, permit: Option<P> },
    }
}

impl<F, P, R> Guarded<F, P, R> {
    /// Polls the call; `finish` gets the permit and the result when it completes.
    fn poll_with<T, E>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        finish: impl FnOnce(P, &Result<T, E>),
    ) -> Poll<Result<T, BoxError>>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        R: std::error::Error + Send + Sync + 'static,
    {
        const DONE: &str = "response future polled after completion";
        match self.project() {
            GuardedProj::NotReady { done } => {
                assert!(!*done, "{DONE}");
                *done = true;
                Poll::Ready(Err(NotReady.into()))
            }
            GuardedProj::Refused { error } => Poll::Ready(Err(error.take().expect(DONE).into())),
            GuardedProj::Admitted { future, permit } => {
                let result = std::task::ready!(future.poll(cx));
                finish(permit.take().expect(DONE), &result);
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}
