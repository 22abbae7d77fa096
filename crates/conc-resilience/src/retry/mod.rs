//! Retries with a backoff, a total deadline and an optional retry budget.
//!
//! # Overview
//!
//! [`Retry::run`] calls an operation, and calls it again after each delay of a
//! [`Backoff`](conc_core::backoff::Backoff) while it fails with a retryable
//! outcome, until an attempt succeeds, the attempts run out, the deadline
//! would be passed or the budget is spent. It returns the last outcome as it
//! is. The operation receives an [`Attempt`] telling which attempt it is.
//!
//! - `max_attempts` counts the first call, `max_retries` does not (both exist
//!   because libraries disagree: Resilience4j counts the first call, Polly does not).
//! - The deadline bounds the whole run: a delay that would end at or past it
//!   is not slept; the last outcome is returned instead. (Bounding each
//!   attempt is [`Timeout`](crate::Timeout)'s job; put one inside.) Delays
//!   and the deadline are measured on tokio's clock, so tests run on its
//!   paused clock.
//! - Which outcomes are retried: every `Err` by default; narrow it with
//!   [`retry_if`](RetryBuilder::retry_if), and retry some `Ok` values with
//!   [`retry_if_result`](RetryBuilder::retry_if_result).
//!
//! With the `tower` feature, `RetryLayer` wraps a service in a
//! [`Retry<S>`](Retry); its response future is `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_core::backoff::Backoff;
//! use conc_resilience::Retry;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let retry = Retry::builder()
//!     .backoff(Backoff::exponential(Duration::from_millis(100)).build()?)
//!     .max_attempts(4)
//!     .deadline(Duration::from_secs(5))
//!     .retry_if(|error: &std::io::Error| error.kind() != std::io::ErrorKind::PermissionDenied)
//!     .build()?;
//!
//! let value = retry
//!     .run(|attempt| async move {
//!         if attempt.number() < 3 { Err(std::io::Error::other("flaky")) } else { Ok(attempt.number()) }
//!     })
//!     .await?;
//! assert_eq!(value, 3);
//! # Ok(()) }
//! ```

mod attempt;
mod budget;
mod builder;
mod handle;
mod metrics;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

pub(crate) use attempt::FIRST;
pub use attempt::{Attempt, StopReason};
pub use budget::{RetryBudget, RetryBudgetBuilder, RetryBudgetMetrics};
pub use builder::RetryBuilder;
pub use handle::Retry;
pub(crate) use handle::RunState;
#[cfg(feature = "tower")]
pub use layer::RetryLayer;
pub use metrics::RetryMetrics;
