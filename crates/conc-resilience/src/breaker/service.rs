//! The tower `Service` of a [`CircuitBreaker`] around an inner service.
//!
//! `poll_ready` takes nothing: it asks the breaker whether it would admit a
//! call now. When it would not, `poll_ready` is `Ready` at once (without
//! polling the inner service) and `call` answers with the refusal. When it
//! would, `poll_ready` is the inner service's. `call` takes the admission
//! (a permit, a half-open probe) for the request it is given, so the
//! admission lives in the response future and goes back when that future is
//! dropped: a service readied for a request that never comes holds nothing.
//! The breaker can change between `poll_ready` and `call` (another caller
//! takes the last probe): the request is refused then, and the inner
//! service keeps the readiness it reserved for the next call.

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::CircuitBreaker;
use super::classify::Classify;
use super::future::ResponseFuture;
use crate::readiness::Readiness;

impl<S, C, Request> Service<Request> for CircuitBreaker<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if let Readiness::Refused(_) = self.ready {
            return Poll::Ready(Ok(()));
        }
        if let Err(rejected) = self.shared.peek() {
            self.ready = Readiness::Refused(rejected);
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
        self.ready = Readiness::Inner;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.ready, Readiness::Unpolled) {
            Readiness::Unpolled | Readiness::Queue => ResponseFuture::not_ready(),
            Readiness::Refused(rejected) => ResponseFuture::refused(self.shared.reject(rejected)),
            Readiness::Inner => match self.try_acquire_owned() {
                Ok(permit) => ResponseFuture::admitted(self.inner.call(request), permit),
                Err(rejected) => ResponseFuture::refused(rejected),
            },
        }
    }
}
