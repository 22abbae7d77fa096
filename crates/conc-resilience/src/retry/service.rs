//! The tower `Service` of a [`Retry`] around an inner service.
//!
//! The first attempt goes to the instance `poll_ready` readied; every retry
//! first waits for the inner service to be ready again (its `poll_ready`, on
//! the instance owned by the response future, a clone left in its place), so
//! a retry never skips the inner service's backpressure. The request is
//! cloned for each attempt. Which outcomes are retried is the policy's: its
//! `retry_if` predicates see the inner service's error type. The error is the
//! inner service's last error (or a readiness error met before a retry), as a
//! [`BoxError`].

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::Retry;
use super::future::ResponseFuture;

impl<S, Request> Service<Request> for Retry<S>
where
    S: Service<Request> + Clone,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
    Request: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The readied instance moves into the future; this one keeps a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = inner.call(request.clone());
        let retry = self.wrap(());
        let run = retry.begin();
        ResponseFuture::new(future, inner, request, run, retry)
    }
}
