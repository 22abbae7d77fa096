//! The response future of a [`Retry`] service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;
use tower::Service;

use super::{Retry, RunState};

pin_project! {
    /// The response future of a [`Retry`](super::Retry) service: attempts,
    /// the delays between them, and the wait for the inner service's
    /// readiness before each retry.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use conc_resilience::{Retry, RetryLayer, retry::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
    /// static CALLS: AtomicU32 = AtomicU32::new(0);
    /// let flaky = service_fn(|n: u32| async move {
    ///     let first = CALLS.fetch_add(1, Ordering::SeqCst) == 0;
    ///     if first { Err(std::io::Error::other("once")) } else { Ok(n) }
    /// });
    /// let mut service = RetryLayer::new(Retry::builder().build()?).layer(flaky);
    /// let retried: ResponseFuture<_, u32> = service.ready().await?.call(7);
    /// assert_eq!(retried.await?, 7, "the second attempt answered");
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Request>
    where
        S: Service<Request>,
    {
        #[pin]
        state: State<S::Future>,
        inner: S,
        request: Request,
        run: RunState,
        retry: Retry,
    }
}

impl<S: Service<Request>, Request> ResponseFuture<S, Request> {
    pub(super) fn new(
        future: S::Future,
        inner: S,
        request: Request,
        run: RunState,
        retry: Retry,
    ) -> Self {
        Self { state: State::Calling { future }, inner, request, run, retry }
    }
}

impl<S, Request> fmt::Debug for ResponseFuture<S, Request>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.run.attempt())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Sleeping { #[pin] sleep: tokio::time::Sleep },
        Readying,
        Done,
    }
}

impl<S, Request> Future for ResponseFuture<S, Request>
where
    S: Service<Request>,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
    Request: Clone,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = std::task::ready!(future.poll(cx));
                    let delay = if this.retry.should_retry(&result) {
                        this.retry.plan_retry(this.run)
                    } else {
                        None
                    };
                    if let Some(delay) = delay {
                        this.state.set(State::Sleeping { sleep: tokio::time::sleep(delay) });
                    } else {
                        this.state.set(State::Done);
                        return Poll::Ready(result.map_err(Into::into));
                    }
                }
                StateProj::Sleeping { sleep } => {
                    std::task::ready!(sleep.poll(cx));
                    this.retry.begin_retry(this.run);
                    this.state.set(State::Readying);
                }
                StateProj::Readying => match std::task::ready!(this.inner.poll_ready(cx)) {
                    Ok(()) => {
                        let future = this.inner.call(this.request.clone());
                        this.state.set(State::Calling { future });
                    }
                    Err(error) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                },
                StateProj::Done => panic!("retry response future polled after completion"),
            }
        }
    }
}
