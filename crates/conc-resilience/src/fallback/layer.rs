//! [`FallbackLayer`]: wraps services in a [`Fallback`].

use std::fmt;

use conc_core::BoxError;
use tower::Layer;

use super::Fallback;

/// Wraps services in a [`Fallback`] answering failures with its handlers.
///
/// The fallback sees every failure as a
/// [`ResilienceError<BoxError>`](crate::ResilienceError): the refusals and
/// timeouts of the other layers of this crate (wherever they sit below it in
/// the stack) are recognised by type and get their own
/// [`ErrorKind`](crate::ErrorKind); anything else is
/// [`ResilienceError::Inner`](crate::ResilienceError::Inner).
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, CircuitBreakerLayer, ErrorKind, Fallback, FallbackLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let fallback = Fallback::new().on(ErrorKind::BreakerOpen, |_| "cached page".to_owned());
/// let mut service = FallbackLayer::new(fallback).layer(
///     CircuitBreakerLayer::new(breaker.clone())
///         .layer(service_fn(|path: &'static str| async move { Ok::<_, std::io::Error>(format!("page {path}")) })),
/// );
/// assert_eq!(service.ready().await?.call("/").await?, "page /");
/// breaker.force_open();
/// assert_eq!(service.ready().await?.call("/").await?, "cached page");
/// # Ok(()) }
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct FallbackLayer<T> {
    fallback: Fallback<T, BoxError>,
}

impl<T> FallbackLayer<T> {
    /// A layer answering the failures `fallback` handles.
    pub fn new(fallback: Fallback<T, BoxError>) -> Self {
        Self { fallback }
    }
}

impl<T> Clone for FallbackLayer<T> {
    fn clone(&self) -> Self {
        Self { fallback: self.fallback.clone() }
    }
}

impl<T> fmt::Debug for FallbackLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").field("fallback", &self.fallback).finish()
    }
}

impl<S, T> Layer<S> for FallbackLayer<T> {
    type Service = Fallback<T, BoxError, S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.fallback.wrap(inner)
    }
}
