//! The response future of a [`Fallback`] service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use super::Fallback;
use crate::{BulkheadError, Elapsed, Rejected, ResilienceError, Shed};

pin_project! {
    /// The response future of a [`Fallback`](super::Fallback) service: the
    /// inner response, or the fallback's answer to its failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Fallback, FallbackLayer, fallback::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
    /// let mut service = FallbackLayer::new(Fallback::new().on_inner(|_| Some(0_u32)))
    ///     .layer(service_fn(|_: u32| async { Err::<u32, _>(std::io::Error::other("down")) }));
    /// let future: ResponseFuture<_, u32> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 0);
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, T> {
        #[pin]
        future: F,
        fallback: Fallback<T, BoxError>,
    }
}

impl<F, T> ResponseFuture<F, T> {
    pub(super) fn new(future: F, fallback: Fallback<T, BoxError>) -> Self {
        Self { future, fallback }
    }
}

impl<F: fmt::Debug, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("future", &self.future)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.future.poll(cx)) {
            Ok(value) => Poll::Ready(Ok(value)),
            Err(error) => {
                Poll::Ready(this.fallback.apply(Err(classify(error.into()))).map_err(unclassify))
            }
        }
    }
}

/// Tells the refusals and timeouts of this crate's layers from the inner service's errors.
fn classify(error: BoxError) -> ResilienceError<BoxError> {
    let error = match error.downcast::<Rejected>() {
        Ok(rejected) => return ResilienceError::BreakerOpen(*rejected),
        Err(error) => error,
    };
    let error = match error.downcast::<BulkheadError>() {
        Ok(refused) => return ResilienceError::BulkheadFull(*refused),
        Err(error) => error,
    };
    let error = match error.downcast::<Elapsed>() {
        Ok(elapsed) => return ResilienceError::Timeout(*elapsed),
        Err(error) => error,
    };
    match error.downcast::<Shed>() {
        Ok(shed) => ResilienceError::Shed(*shed),
        Err(error) => ResilienceError::Inner(error),
    }
}

/// The failure as the layer below returned it.
fn unclassify(error: ResilienceError<BoxError>) -> BoxError {
    match error {
        ResilienceError::Inner(error) => error,
        ResilienceError::BreakerOpen(rejected) => rejected.into(),
        ResilienceError::BulkheadFull(refused) => refused.into(),
        ResilienceError::Timeout(elapsed) => elapsed.into(),
        ResilienceError::Shed(shed) => shed.into(),
    }
}
