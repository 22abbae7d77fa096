//! The tower `Service` of a [`Fallback`] around an inner service.
//!
//! Only response failures are answered: a readiness error from `poll_ready`
//! is passed on unchanged (tower treats it as the service being broken, and
//! no layer of this crate refuses from `poll_ready`). A failure no handler
//! answers is returned as it came, so it can still be downcast to its type.

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::Fallback;
use super::future::ResponseFuture;

impl<S, Request> Service<Request> for Fallback<S::Response, BoxError, S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.wrap(()))
    }
}
