//! A circuit breaker: stops calling a dependency that keeps failing, then
//! probes it with a fixed number of calls before trusting it again.
//!
//! # Overview
//!
//! [`CircuitBreaker::try_acquire`] admits a call with a [`Permit`] or refuses it
//! with [`Rejected`] (which carries `retry_after`). The caller runs the call and
//! consumes the permit with [`success`](Permit::success),
//! [`failure`](Permit::failure), [`ignore`](Permit::ignore) or
//! [`record`](Permit::record). Dropping a permit without consuming it (a
//! cancelled future, a panic) records nothing and gives a half-open probe slot
//! back, so half-open can never be wedged by callers that went away.
//! [`CircuitBreaker::call`] wraps a future in exactly that.
//!
//! How a result counts is the breaker's [`Classify`] policy, part of its
//! type: [`ErrIsFailure`] by default (every `Err` a failure), or a closure
//! over the call's own `Result<T, E>`.
//!
//! The breaker computes a failure rate, and optionally a slow-call rate, over a
//! [`FailureWindow`] of the last N calls or the last T seconds, and opens when
//! either is **at least** its threshold once the window holds the minimum
//! number of calls. After the wait in open (fixed or growing with a
//! [`Backoff`](conc_core::backoff::Backoff)) it goes half-open on the next
//! call and admits exactly the permitted number of probes; their rates decide
//! between closing and opening again.
//!
//! The closed path is a few atomic operations (one load to admit; to record,
//! a `fetch_add` on the ring position and a read of the slot, written only
//! when the outcome differs): no lock, no allocation, and no clock read
//! unless slow calls (two reads per call) or a time window are configured.
//!
//! With the `tower` feature, `CircuitBreakerLayer` wraps a service in a
//! [`CircuitBreaker<S, C>`](CircuitBreaker) sharing the breaker's state; its
//! response future is `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{BreakerError, CircuitBreaker, FailureWindow};
//!
//! # futures::executor::block_on(async {
//! let breaker = CircuitBreaker::builder()
//!     .sliding_window(FailureWindow::count(20))
//!     .minimum_calls(5)
//!     .failure_rate_threshold(0.5)
//!     .wait_in_open(Duration::from_secs(10))
//!     .build()?;
//!
//! for _ in 0..5 {
//!     let result: Result<(), BreakerError<&str>> = breaker.call(async { Err("connection refused") }).await;
//!     assert!(matches!(result, Err(BreakerError::Inner(_))));
//! }
//! // Five failures out of five: open, and calls are refused without running.
//! match breaker.call(async { Ok::<_, &str>(()) }).await {
//!     Err(BreakerError::Rejected(rejected)) => assert!(rejected.retry_after().is_some()),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # Ok::<(), conc_core::config::ConfigError>(())
//! # }).unwrap();
//! ```

mod builder;
mod classify;
mod config;
mod core;
mod error;
mod event;
mod handle;
mod metrics;
mod permit;
mod state;
pub(crate) mod window;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

#[cfg(test)]
mod tests;

pub use builder::CircuitBreakerBuilder;
pub use classify::{CallOutcome, Classify, ErrIsFailure};
pub use config::{
    BreakerConfig, FailureWindow, HalfOpenTimeout, MAX_HALF_OPEN_CALLS, MAX_WINDOW_BUCKETS,
    MAX_WINDOW_CALLS, MAX_WINDOW_DURATION, OpenWait,
};
pub use error::{BreakerError, Rejected};
pub use event::{BreakerEvent, TransitionReason};
pub use handle::CircuitBreaker;
#[cfg(feature = "tower")]
pub use layer::CircuitBreakerLayer;
pub use metrics::BreakerMetrics;
pub use permit::{OwnedPermit, Permit};
pub use state::BreakerState;
