//! A timeout for one call.
//!
//! [`Timeout::call`] runs a future for at most the timeout and drops it when
//! the time is up, so permits the call held are released. With the `tower`
//! feature, `TimeoutLayer` wraps a service in a [`Timeout<S>`](Timeout);
//! its response future is `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{Elapsed, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::config::ConfigError> {
//! let timeout = Timeout::new(Duration::from_secs(1))?;
//! assert_eq!(timeout.call(async { 7 }).await, Ok(7));
//! let slow = timeout.call(tokio::time::sleep(Duration::from_secs(5))).await;
//! assert_eq!(slow, Err(Elapsed { after: Duration::from_secs(1) }));
//! # Ok(()) }
//! ```

mod call;
mod error;
mod handle;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

pub use call::TimeoutCall;
pub use error::Elapsed;
pub use handle::Timeout;
#[cfg(feature = "tower")]
pub use layer::TimeoutLayer;
