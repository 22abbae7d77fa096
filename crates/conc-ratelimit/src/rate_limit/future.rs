//! [`ResponseFuture`]: the future of a [`RateLimit`](super::RateLimit) call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxError;
use pin_project_lite::pin_project;
use tower::Service;

use crate::{Limiter, RateLimitError};

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit): the inner
    /// service's future once admitted, an immediate error when rejected, or
    /// (in [`Mode::Wait`](super::Mode::Wait)) a wait for capacity followed by
    /// the call. The states live in this value: an admitted request
    /// allocates nothing, a refused one only its boxed error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conc_ratelimit::rate_limit::future::ResponseFuture;
    /// use conc_ratelimit::{Gcra, Quota, RateLimit};
    /// use tower::{Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let inner = service_fn(|n: u8| async move { Ok::<_, std::convert::Infallible>(n) });
    /// let mut svc = RateLimit::new(inner, Arc::new(Gcra::new(Quota::per_second(5)?)), |_: &u8| ());
    /// let future: ResponseFuture<_, u8, Gcra> = svc.call(3);
    /// assert_eq!(future.await?, 3);
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, L>
    where
        S: Service<Req>,
        L: Limiter,
    {
        #[pin]
        state: State<S, Req, L>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, L>
    where
        S: Service<Req>,
        L: Limiter,
    {
        Called {
            #[pin]
            future: S::Future,
        },
        Rejected {
            error: RateLimitError,
        },
        Waiting {
            limiter: Arc<L>,
            key: L::Key,
            // The readied service and the request, handed over once admitted.
            ready: Option<(S, Req)>,
            started: tokio::time::Instant,
            #[pin]
            sleep: tokio::time::Sleep,
        },
    }
}

impl<S: Service<Req>, Req, L: Limiter> ResponseFuture<S, Req, L> {
    pub(super) fn called(future: S::Future) -> Self {
        Self { state: State::Called { future } }
    }

    pub(super) fn rejected(error: RateLimitError) -> Self {
        Self { state: State::Rejected { error } }
    }

    pub(super) fn waiting(limiter: Arc<L>, key: L::Key, ready: (S, Req), wait: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            state: State::Waiting {
                limiter,
                key,
                ready: Some(ready),
                started: now,
                sleep: tokio::time::sleep_until(now + wait),
            },
        }
    }
}

impl<S, Req, L> Future for ResponseFuture<S, Req, L>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    L: Limiter,
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
                            let wait = retry_after.max(Duration::from_nanos(1));
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

impl<S: Service<Req>, Req, L: Limiter> fmt::Debug for ResponseFuture<S, Req, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
            State::Waiting { .. } => "waiting",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
