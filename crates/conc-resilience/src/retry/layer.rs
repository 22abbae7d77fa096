//! [`RetryLayer`]: wraps services in a [`Retry`].

use tower::Layer;

use super::Retry;

/// Wraps services in a [`Retry`] retrying by one policy (shared metrics and
/// budget).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{Retry, RetryLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
/// let retry = Retry::builder()
///     .backoff(Backoff::fixed(Duration::from_millis(10)).build()?)
///     .max_attempts(3)
///     .build()?;
/// let calls = Arc::new(AtomicU32::new(0));
/// let counted = Arc::clone(&calls);
/// let mut service = RetryLayer::new(retry).layer(service_fn(move |n: u32| {
///     let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
///     async move { if attempt < 3 { Err(std::io::Error::other("flaky")) } else { Ok(n + 1) } }
/// }));
/// assert_eq!(service.ready().await?.call(41).await?, 42);
/// assert_eq!(calls.load(Ordering::SeqCst), 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RetryLayer {
    retry: Retry,
}

impl RetryLayer {
    /// A layer retrying every service it wraps by `retry`.
    pub fn new(retry: Retry) -> Self {
        Self { retry }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.retry.wrap(inner)
    }
}
