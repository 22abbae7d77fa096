//! The boxed future returned by object-safe async trait methods.

use std::future::Future;
use std::pin::Pin;

/// A heap-allocated, `Send` future: what the object-safe async methods of
/// [`Lifecycle`](crate::lifecycle::Lifecycle) and
/// [`Driver`](crate::driver::Driver) return.
///
/// # Examples
///
/// ```
/// use conc_core::BoxFuture;
///
/// fn answer() -> BoxFuture<'static, u32> {
///     Box::pin(async { 42 })
/// }
/// # let _ = answer();
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
