//! The tower `Service` of a [`Bulkhead`] around an inner service.

use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::Bulkhead;
use super::future::ResponseFuture;
use super::handle::{Admission, acquire};
use crate::guarded::Guarded;

impl<S, Request> Service<Request> for Bulkhead<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.admission {
                Admission::None => {
                    self.admission = if self.has_queue() {
                        let shared = std::sync::Arc::clone(&self.shared);
                        Admission::Waiting(Box::pin(async move { acquire(&shared).await }))
                    } else {
                        match self.try_acquire() {
                            Ok(permit) => Admission::Admitted(permit),
                            Err(error) => Admission::Refused(error),
                        }
                    };
                }
                Admission::Waiting(wait) => match wait.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(permit)) => self.admission = Admission::Admitted(permit),
                    Poll::Ready(Err(error)) => self.admission = Admission::Refused(error),
                },
                Admission::Admitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
                Admission::Refused(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match std::mem::replace(&mut self.admission, Admission::None) {
            Admission::None | Admission::Waiting(_) => Guarded::NotReady { done: false },
            Admission::Refused(error) => Guarded::Refused { error: Some(error) },
            Admission::Admitted(permit) => {
                Guarded::Admitted { future: self.inner.call(request), permit: Some(permit) }
            }
        };
        ResponseFuture::new(state)
    }
}
