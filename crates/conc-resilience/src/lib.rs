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
//! | [`Stack`] | stacks them in one documented order and runs a closure |
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
//! - `tower`: a tower `Layer` for every primitive, laid out as tower lays
//!   out its own middleware. The service *is* the primitive around an inner
//!   service, sharing its state: `CircuitBreakerLayer` makes a
//!   `CircuitBreaker<S>`, `BulkheadLayer` a `Bulkhead<S>`, `RetryLayer` a
//!   `Retry<S>`, `TimeoutLayer` a `Timeout<S>`, `LoadShedderLayer` a
//!   `LoadShedder<S>` and `FallbackLayer` a `Fallback<T, BoxError, S>`; each
//!   response future is `<module>::future::ResponseFuture`
//!   (`breaker::future::ResponseFuture`, …). They honour the tower
//!   contract (see [below](#tower)).
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
//! # tower
//!
//! | layer | service | refuses with (from `call`) |
//! |---|---|---|
//! | `CircuitBreakerLayer` | [`CircuitBreaker<S, C>`](CircuitBreaker) | [`Rejected`] |
//! | `BulkheadLayer` | [`Bulkhead<S>`](Bulkhead) (needs `S: Clone`) | [`BulkheadError`] |
//! | `RetryLayer` | [`Retry<S>`](Retry) | the inner service's last error |
//! | `TimeoutLayer` | [`Timeout<S>`](Timeout) | [`Elapsed`] |
//! | `LoadShedderLayer` | [`LoadShedder<S, U>`](LoadShedder) | [`Shed`] |
//! | `FallbackLayer` | [`Fallback<T, BoxError, S>`](Fallback) | the failure no handler answered |
//!
//! All follow the tower contract:
//!
//! - `poll_ready` is driven before every call of the inner service, internal
//!   retries included: a `Retry<S>` waits for the inner `poll_ready` (on a
//!   clone owned by the response future) before each retry.
//! - No admission outlives the request it was taken for: the breaker and the
//!   bulkhead take theirs (a breaker permit or half-open probe, a bulkhead
//!   slot) in `call`, for the request given, and keep it in the response
//!   future. `poll_ready` only looks whether one would be granted, so a
//!   service readied for a request that never comes (a request cancelled
//!   while it waits in a `tower::buffer::Buffer`) holds nothing, and clones
//!   never share one.
//! - A refusal is returned from `call` as an error, never from `poll_ready`
//!   (which `Buffer` and balancers treat as fatal), and the refused request
//!   never reaches the inner service. When the breaker or bulkhead would
//!   refuse, `poll_ready` is `Ready` at once and the inner service's
//!   `poll_ready` is not polled. Should the last probe or slot go to another
//!   caller between `poll_ready` and `call`, the request is refused (or, for a
//!   bulkhead with a queue, waits), and the inner service keeps the readiness
//!   it reserved for the next call. The load shedder decides in `call`.
//! - A bulkhead with a wait queue and no free slot makes `poll_ready` `Ready`
//!   while the queue has room; the response future waits in the queue (its
//!   waker registered), then for a clone of the inner service to be ready,
//!   then calls it. A bulkhead without a queue refuses at once.
//! - Dropping the response future drops the inner future and releases what
//!   the call holds: a breaker probe slot is given back without an outcome, a
//!   bulkhead slot is freed (or its place in the queue left), load units are
//!   returned.
//! - A call without a successful `poll_ready` first fails with [`NotReady`].
//!
//! Errors are `BoxError`s: the inner service's error, or the refusal
//! (downcast to tell them apart; a `Fallback` service does it for you).
//! Response futures are hand-written: no allocation per call. (A bulkhead
//! call that waits in the bulkhead's queue boxes that wait.)
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | circuit breaker | `failsafe` (a mutex per call, every call admitted in half-open), `recloser`, Resilience4j / Polly in other languages | [`CircuitBreaker`]: lock-free closed path, exactly N probes |
//! | bulkhead | tower `ConcurrencyLimit` (queues without bound), a `tokio::sync::Semaphore` | [`Bulkhead`]: bounded queue, max wait, metrics |
//! | retry | `backoff` (unmaintained), `backon`, tower `Retry` + `TpsBudget` (over-allocates, tower#857) | [`Retry`], [`RetryBudget`] |
//! | load shedding | tower `LoadShed` (sheds whenever the service is pending) | [`LoadShedder`]: load units, cooldown, queue-wait shedding |
//! | pipelines of strategies | Polly's `ResiliencePipeline`, Resilience4j's `Decorators` | [`Stack`] |
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
pub mod fallback;
mod loom;
mod readiness;
pub mod retry;
pub mod shed;
mod stack;
mod time;
pub mod timeout;

#[cfg(feature = "tower")]
pub use breaker::CircuitBreakerLayer;
pub use breaker::{
    BreakerConfig, BreakerError, BreakerEvent, BreakerMetrics, BreakerState, CallOutcome,
    CircuitBreaker, CircuitBreakerBuilder, Classify, ErrIsFailure, FailureWindow, HalfOpenTimeout,
    OpenWait, OwnedPermit, Permit, Rejected, TransitionReason,
};
#[cfg(feature = "tower")]
pub use bulkhead::BulkheadLayer;
pub use bulkhead::{
    Bulkhead, BulkheadBuilder, BulkheadError, BulkheadMetrics, BulkheadPermit, Refused,
};
pub use error::{ErrorKind, NotReady, ResilienceError};
pub use fallback::Fallback;
#[cfg(feature = "tower")]
pub use fallback::FallbackLayer;
#[cfg(feature = "tower")]
pub use retry::RetryLayer;
pub use retry::{
    Attempt, Retry, RetryBudget, RetryBudgetBuilder, RetryBudgetMetrics, RetryBuilder,
    RetryMetrics, StopReason,
};
#[cfg(feature = "tower")]
pub use shed::LoadShedderLayer;
pub use shed::{
    LoadPermit, LoadShedder, LoadShedderBuilder, LoadUnits, OneUnit, Shed, ShedMetrics,
};
pub use stack::{Stack, StackBuilder};
#[cfg(feature = "tower")]
pub use timeout::TimeoutLayer;
pub use timeout::{Elapsed, Timeout, TimeoutCall};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/resilience.md")]
struct ResilienceGuide;
