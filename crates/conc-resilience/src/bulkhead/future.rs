//! The response future of a [`Bulkhead`](super::Bulkhead) service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use super::error::BulkheadError;
use super::permit::BulkheadPermit;
use crate::guarded::Guarded;

pin_project! {
    /// The response future of a [`Bulkhead`](super::Bulkhead) service: the
    /// refusal, or the inner response holding its slot until it completes or
    /// is dropped.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Bulkhead, BulkheadLayer, bulkhead::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
    /// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
    /// let mut service = BulkheadLayer::new(bulkhead.clone())
    ///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
    /// let future: ResponseFuture<_> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 7);
    /// assert_eq!(bulkhead.metrics().available, 1);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        state: Guarded<F, BulkheadPermit, BulkheadError>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(state: Guarded<F, BulkheadPermit, BulkheadError>) -> Self {
        Self { state }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().state.poll_with(cx, |permit, _| drop(permit))
    }
}
