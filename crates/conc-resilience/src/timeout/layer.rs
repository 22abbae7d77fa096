//! [`TimeoutLayer`]: wraps services in a [`Timeout`].

use tower::Layer;

use super::Timeout;

/// Wraps services in a [`Timeout`] bounding each call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Elapsed, Timeout, TimeoutLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
/// let mut service = TimeoutLayer::new(Timeout::new(Duration::from_secs(1))?)
///     .layer(service_fn(|delay: Duration| async move {
///         tokio::time::sleep(delay).await;
///         Ok::<_, std::io::Error>("done")
///     }));
/// assert_eq!(service.ready().await?.call(Duration::from_millis(10)).await?, "done");
/// let error = service.ready().await?.call(Duration::from_secs(5)).await.unwrap_err();
/// assert_eq!(error.downcast_ref::<Elapsed>(), Some(&Elapsed { after: Duration::from_secs(1) }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// A layer bounding every call of the services it wraps by `timeout`.
    pub fn new(timeout: Timeout) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.timeout.wrap(inner)
    }
}
