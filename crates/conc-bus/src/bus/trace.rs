//! [`DispatchTraceLayer`]: a tracing span around every dispatch.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};
use tracing::Instrument;

use super::Dispatch;

/// The layer [`BusBuilder::trace`](super::BusBuilder::trace) adds: a
/// `dispatch` span per command carrying its type, and a debug event with the
/// outcome and how long it took.
///
/// # Examples
///
/// ```
/// use conc_bus::{Bus, DispatchTraceLayer};
///
/// let bus = Bus::builder().layer(DispatchTraceLayer::new()).build();
/// # let _ = bus;
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct DispatchTraceLayer;

impl DispatchTraceLayer {
    /// The layer.
    pub const fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for DispatchTraceLayer {
    type Service = DispatchTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DispatchTrace { inner }
    }
}

/// The service of [`DispatchTraceLayer`].
#[derive(Debug, Clone)]
pub struct DispatchTrace<S> {
    inner: S,
}

impl<S> Service<Dispatch> for DispatchTrace<S>
where
    S: Service<Dispatch>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = future::ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dispatch: Dispatch) -> Self::Future {
        let span = tracing::debug_span!(target: "conc_bus", "dispatch", command = dispatch.name());
        let inner = span.in_scope(|| self.inner.call(dispatch));
        future::ResponseFuture { inner: inner.instrument(span), started: Instant::now() }
    }
}

/// The future of [`DispatchTrace`].
pub mod future {
    use super::{Context, Future, Instant, Pin, Poll};

    pin_project_lite::pin_project! {
        /// Resolves to the inner service's answer, after logging it.
        #[must_use = "futures do nothing unless polled"]
        #[derive(Debug)]
        pub struct ResponseFuture<F> {
            #[pin]
            pub(super) inner: tracing::instrument::Instrumented<F>,
            pub(super) started: Instant,
        }
    }

    impl<F, T, E> Future for ResponseFuture<F>
    where
        F: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        type Output = Result<T, E>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let result = std::task::ready!(this.inner.poll(cx));
            let took = this.started.elapsed();
            match &result {
                Ok(_) => tracing::debug!(target: "conc_bus", ?took, "command handled"),
                Err(error) => tracing::debug!(target: "conc_bus", ?took, %error, "command failed"),
            }
            Poll::Ready(result)
        }
    }
}
