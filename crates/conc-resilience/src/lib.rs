//! Fault tolerance for code that calls other services: circuit breaker,
//! bulkhead, retry, timeout, fallback and load shedding.
//!
//! # Overview
//!
//! | primitive | what it does |
//! |---|---|
//! | [`CircuitBreaker`] | stops calling a failing dependency; count or time window, failure and slow-call rates, exactly N half-open probes, growing wait in open, manual states, events, run-time changes |
//! | [`Bulkhead`] | at most N calls at once, with an optional bounded FIFO wait queue |
//! | [`Retry`], [`RetryBudget`] | retries with a [`Backoff`](conc_core::backoff::Backoff), attempt limits, a deadline never slept past, a budget with exact fractional maths |
//! | [`Timeout`] | bounds one call and drops it when time is up |
//! | [`Fallback`] | answers failures by kind, rejections included |
//! | [`LoadShedder`] | admits work by load units, sheds above a maximum, cools down |
//! | [`Pipeline`] | stacks them in one documented order and runs a closure |
//!
//! The guide (`docs/resilience.md`) has the defaults of every primitive beside
//! Resilience4j's and Polly's.
//!
//! Every primitive admits work with a `#[must_use]` permit that is released on
//! `Drop`, so a cancelled future never leaks capacity, and every rejection is
//! a cheap value (no allocation, no backtrace) that says when to retry.
//!
//! # Feature flags
//!
//! - `tower`: [`layer`], a tower `Layer` and `Service` for every primitive:
//!   `CircuitBreakerLayer`, `BulkheadLayer`, `RetryLayer`, `TimeoutLayer`,
//!   `LoadShedLayer` and `FallbackLayer`. They honour the tower contract
//!   (`poll_ready` before every call, retries included; admission reserved
//!   per instance; refusals from `call`, never from `poll_ready`; dropping a
//!   response future releases what it holds).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_resilience::{CircuitBreaker, Rejected};
//!
//! let breaker = CircuitBreaker::builder()
//!     .minimum_calls(2)
//!     .wait_in_open(Duration::from_secs(30))
//!     .build()?;
//!
//! fn fetch() -> Result<String, std::io::Error> {
//!     Err(std::io::Error::other("connection reset"))
//! }
//!
//! for _ in 0..2 {
//!     let permit = breaker.try_acquire()?;
//!     permit.record(&fetch());
//! }
//! let rejected: Rejected = breaker.try_acquire().unwrap_err();
//! assert!(rejected.retry_after().unwrap() <= Duration::from_secs(30));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | circuit breaker | `failsafe` (a mutex per call, every call admitted in half-open), `recloser`, Resilience4j / Polly in other languages | [`CircuitBreaker`]: lock-free closed path, exactly N probes |
//! | bulkhead | tower `ConcurrencyLimit` (queues without bound), a `tokio::sync::Semaphore` | [`Bulkhead`]: bounded queue, max wait, snapshot |
//! | retry | `backoff` (unmaintained), `backon`, tower `Retry` + `TpsBudget` (over-allocates, tower#857) | [`Retry`], [`RetryBudget`] |
//! | load shedding | tower `LoadShed` (sheds whenever the service is pending) | [`LoadShedder`]: load units, cooldown, queue-wait shedding |
//! | pipelines | Polly's `ResiliencePipeline`, Resilience4j's `Decorators` | [`Pipeline`] |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod breaker;
pub mod bulkhead;
mod error;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod layer;
mod loom;
mod pipeline;
pub mod retry;
mod shed;
mod time;
mod timeout;

pub use breaker::{
    BreakerConfig, BreakerError, BreakerEvent, BreakerMetrics, BreakerState, CircuitBreaker,
    CircuitBreakerBuilder, HalfOpenTimeout, OpenWait, Outcome, OwnedPermit, Permit, Rejected,
    SlidingWindow, TransitionReason,
};
pub use bulkhead::{
    Bulkhead, BulkheadBuilder, BulkheadError, BulkheadPermit, BulkheadSnapshot, Refused,
};
pub use error::ConfigError;
#[cfg(feature = "tower")]
pub use layer::{
    BulkheadFuture, BulkheadLayer, BulkheadService, CircuitBreakerFuture, CircuitBreakerLayer,
    CircuitBreakerService, FallbackFuture, FallbackLayer, FallbackService, LoadShedFuture,
    LoadShedLayer, LoadShedService, LoadUnits, NotReady, OneUnit, RetryFuture, RetryLayer,
    RetryService, TimeoutFuture, TimeoutLayer, TimeoutService,
};
pub use pipeline::{ErrorKind, Fallback, Pipeline, PipelineBuilder, ResilienceError};
pub use retry::{
    Attempt, Retry, RetryBudget, RetryBudgetBuilder, RetryBuilder, RetryMetrics, StopReason,
};
pub use shed::{LoadPermit, LoadShedder, LoadShedderBuilder, Shed, ShedSnapshot};
pub use timeout::{Elapsed, Timeout};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/resilience.md")]
struct ResilienceGuide;
