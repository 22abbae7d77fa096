//! The tower `Service` of a [`Timeout`] around an inner service.
//!
//! The time counts from the first poll of the response future (readiness
//! waits are not included: bound those with the service's own backpressure).
//! When it runs out the inner response future is dropped, releasing whatever
//! it held, and the call fails with [`Elapsed`](super::Elapsed) as a
//! [`BoxError`].

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::Timeout;
use super::future::ResponseFuture;

impl<S, Request> Service<Request> for Timeout<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.wrap(()))
    }
}
