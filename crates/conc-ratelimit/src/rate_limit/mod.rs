//! tower middleware limiting requests with any [`Limiter`](crate::Limiter),
//! laid out as tower lays out its own: [`RateLimitLayer`] builds the service
//! [`RateLimit`], whose future is [`future::ResponseFuture`].
//!
//! One limiter, shared through an `Arc`, serves every service the layer
//! builds and every clone of them, so a limit holds across connections
//! (tower's own `RateLimit` is per service value and not `Clone`). The key
//! comes from `extract(&request)`: a user id, an IP address, or `()` for a
//! direct limiter.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use conc_ratelimit::{Gcra, Quota, RateLimitLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // One limit over everything: a direct limiter and a key of `()`.
//! let everyone = Arc::new(Gcra::new(Quota::per_second(1)?));
//! let mut svc = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(everyone, |_: &u32| ()))
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n * 2) }));
//!
//! assert_eq!(svc.ready().await?.call(21).await?, 42);
//! assert!(svc.ready().await?.call(1).await.is_err()); // over the limit
//! # Ok(()) }
//! ```

pub mod future;
mod layer;
mod service;

pub use layer::RateLimitLayer;
pub use service::{Mode, RateLimit};
