//! The tower `Service` of a [`Bulkhead`] around an inner service.
//!
//! `poll_ready` takes nothing: it looks whether a slot is free now. When
//! one is, `poll_ready` is the inner service's; when none is and the queue is
//! full (or there is none), `poll_ready` is `Ready` at once (without polling
//! the inner service) and `call` answers with the refusal. `call` takes the
//! slot for the request it is given, so the slot lives in the response
//! future and goes back when that future is dropped: a service readied for a
//! request that never comes holds nothing. When no slot is free at `call`
//! and the bulkhead has a queue, the response future waits in the queue, then
//! for a clone of the inner service to be ready, then calls it; dropping it
//! leaves the queue.

use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxError;
use tower::Service;

use super::Bulkhead;
use super::future::ResponseFuture;
use super::handle::acquire;
use super::permit::BulkheadPermit;
use super::shared::Peek;
use crate::readiness::Readiness;

impl<S, Request> Service<Request> for Bulkhead<S>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if let Readiness::Refused(_) | Readiness::Queue = self.ready {
            return Poll::Ready(Ok(()));
        }
        match self.shared.peek() {
            Peek::Slot => {
                std::task::ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
                self.ready = Readiness::Inner;
            }
            Peek::Queue => self.ready = Readiness::Queue,
            Peek::Full(error) => self.ready = Readiness::Refused(error),
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.ready, Readiness::Unpolled) {
            Readiness::Unpolled => ResponseFuture::not_ready(),
            Readiness::Refused(error) => {
                self.shared.count_rejection();
                ResponseFuture::refused(error)
            }
            Readiness::Inner if self.shared.try_take_fair() => {
                let permit = BulkheadPermit { shared: Arc::clone(&self.shared) };
                ResponseFuture::running(self.inner.call(request), permit)
            }
            Readiness::Inner if self.has_queue() => {
                // The slot went to someone else since `poll_ready`: wait for
                // one with the instance `poll_ready` readied.
                let clone = self.inner.clone();
                let readied = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::queued(self.wait(), readied, true, request)
            }
            Readiness::Inner => ResponseFuture::refused(self.shared.refuse()),
            Readiness::Queue => {
                ResponseFuture::queued(self.wait(), self.inner.clone(), false, request)
            }
        }
    }
}

impl<S> Bulkhead<S> {
    /// A slot of this bulkhead, waited for in its queue, as a boxed future
    /// owning a handle to the bulkhead.
    fn wait(&self) -> super::future::Wait {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { acquire(&shared).await })
    }
}
