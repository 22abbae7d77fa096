//! [`CircuitBreakerLayer`]: wraps services in a [`CircuitBreaker`].

use std::fmt;

use tower::Layer;

use super::CircuitBreaker;
use super::classify::ErrIsFailure;

/// Wraps services in a [`CircuitBreaker`] sharing one breaker's state.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, CircuitBreakerLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let mut service = CircuitBreakerLayer::new(breaker.clone())
///     .layer(service_fn(|name: &'static str| async move { Ok::<_, std::io::Error>(format!("hello {name}")) }));
/// let reply = service.ready().await?.call("world").await?;
/// assert_eq!(reply, "hello world");
/// assert_eq!(breaker.metrics().calls, 1);
/// # Ok(()) }
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct CircuitBreakerLayer<C = ErrIsFailure> {
    breaker: CircuitBreaker<(), C>,
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer guarding every service it wraps with `breaker` (its state and
    /// its [`Classify`](super::Classify) policy).
    pub fn new(breaker: CircuitBreaker<(), C>) -> Self {
        Self { breaker }
    }
}

impl<C: Clone> Clone for CircuitBreakerLayer<C> {
    fn clone(&self) -> Self {
        Self { breaker: self.breaker.clone() }
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer").field("breaker", &self.breaker).finish()
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        self.breaker.wrap(inner)
    }
}
