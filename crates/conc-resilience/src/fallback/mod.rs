//! Fallbacks: answer failed calls with a value instead, chosen by the kind
//! of failure.
//!
//! [`Fallback::apply`] replaces a handled [`ResilienceError`](crate::ResilienceError)
//! with its fallback value. With the `tower` feature, `FallbackLayer` wraps
//! a service in a [`Fallback<T, BoxError, S>`](Fallback) answering the
//! failures of the layers below it; its response future is
//! `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use conc_resilience::{Fallback, ResilienceError};
//!
//! let fallback: Fallback<&str, std::io::Error> = Fallback::new().on_rejection(|_| "try later");
//! let refused = conc_resilience::LoadShedder::builder(1).build()?.try_admit(2).unwrap_err();
//! assert_eq!(fallback.apply(Err(ResilienceError::Shed(refused))).unwrap(), "try later");
//! # Ok::<(), conc_core::config::ConfigError>(())
//! ```

mod handle;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

pub use handle::Fallback;
#[cfg(feature = "tower")]
pub use layer::FallbackLayer;
