//! A bulkhead: at most N calls at once, with an optional bounded wait queue.
//!
//! # Overview
//!
//! [`Bulkhead::try_acquire`] takes a slot or fails at once;
//! [`Bulkhead::acquire`] waits in a bounded FIFO queue for at most the
//! configured `max_wait`. A [`BulkheadPermit`] gives its slot back on `Drop`,
//! so a cancelled call, a panic or a dropped future never leaks capacity; a
//! slot freed while callers wait is handed straight to the oldest waiter, so
//! later callers cannot barge past the queue.
//!
//! The uncontended path takes a slot with a compare-and-swap and gives it
//! back with a `fetch_sub`, allocating nothing; the queue's lock is taken
//! only when someone waits.
//!
//! With the `tower` feature, `BulkheadLayer` wraps a service in a
//! [`Bulkhead<S>`](Bulkhead) sharing the bulkhead's slots; its response
//! future is `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{Bulkhead, BulkheadError};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
//! let bulkhead = Bulkhead::builder()
//!     .max_concurrent(2)
//!     .max_queued(8)
//!     .max_wait(Duration::from_millis(50))
//!     .build()?;
//!
//! let first = bulkhead.try_acquire().unwrap();
//! let _second = bulkhead.try_acquire().unwrap();
//! assert!(matches!(bulkhead.try_acquire(), Err(BulkheadError::Full { .. })));
//! drop(first);
//! let value = bulkhead.call(async { 42 }).await.unwrap();
//! assert_eq!(value, 42);
//! assert_eq!(bulkhead.metrics().available, 1);
//! # Ok(()) }
//! ```

mod builder;
mod error;
mod handle;
mod metrics;
mod permit;
mod queue;
mod shared;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

#[cfg(test)]
mod tests;

pub use builder::BulkheadBuilder;
pub use error::{BulkheadError, Refused};
pub use handle::Bulkhead;
#[cfg(feature = "tower")]
pub use layer::BulkheadLayer;
pub use metrics::BulkheadMetrics;
pub use permit::BulkheadPermit;

/// The largest `max_concurrent` a bulkhead accepts.
///
/// # Examples
///
/// ```
/// use conc_resilience::{Bulkhead, bulkhead::MAX_CONCURRENT};
///
/// assert!(Bulkhead::builder().max_concurrent(MAX_CONCURRENT + 1).build().is_err());
/// ```
pub const MAX_CONCURRENT: u32 = u32::MAX >> 1;
