//! [`BulkheadLayer`]: wraps services in a [`Bulkhead`].

use tower::Layer;

use super::Bulkhead;

/// Wraps services in a [`Bulkhead`] sharing one bulkhead's slots.
///
/// # Examples
///
/// ```
/// use conc_resilience::{Bulkhead, BulkheadLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let bulkhead = Bulkhead::builder().max_concurrent(4).build()?;
/// let mut service = BulkheadLayer::new(bulkhead.clone())
///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) }));
/// assert_eq!(service.ready().await?.call(21).await?, 42);
/// assert_eq!(bulkhead.metrics().available, 4);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer running every service it wraps inside `bulkhead`.
    pub fn new(bulkhead: Bulkhead) -> Self {
        Self { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.bulkhead.wrap(inner)
    }
}
