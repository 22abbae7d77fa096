//! The tower `Service` of a [`CircuitBreaker`] around an inner service.

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::CircuitBreaker;
use super::classify::Classify;
use super::future::ResponseFuture;
use crate::guarded::Guarded;

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
        if self.admission.is_none() {
            self.admission = Some(self.try_acquire_owned());
        }
        match &self.admission {
            Some(Ok(_)) => self.inner.poll_ready(cx).map_err(Into::into),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match self.admission.take() {
            None => Guarded::NotReady { done: false },
            Some(Err(rejected)) => Guarded::Refused { error: Some(rejected) },
            Some(Ok(permit)) => {
                Guarded::Admitted { future: self.inner.call(request), permit: Some(permit) }
            }
        };
        ResponseFuture::new(state)
    }
}
