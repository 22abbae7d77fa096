//! Concurrency and resilience for Rust services: worker pools, pipelines,
//! fan-out/fan-in, rate limits, circuit breakers, bulkheads, retries, locks,
//! background job queues and process management, in focused crates behind
//! one facade.
//!
//! # Overview
//!
//! `conc` re-exports the `conc-*` crates as modules, each behind a cargo
//! feature, so an application depends on one crate and turns on what it uses.
//! The facade holds no logic of its own. Libraries that need one piece can
//! depend on that crate directly (`conc-ratelimit`, …) and stay smaller.
//!
//! | module | crate | feature | what it is |
//! |---|---|---|---|
//! | [`core`] | `conc-core` | always on | clocks, backoff, metric names, lifecycle, driver trait |
//! | [`pool`] | `conc-pool` | `pool` | async and blocking worker pools: priorities with aging, bounded queues, rejection policies, shutdown; the `Concurrency` facade |
//! | [`pipeline`] | `conc-pipeline` | `pipeline` | typed staged pipelines: per-stage concurrency, bounded buffers, retries, dead letters, metrics |
//! | [`fan`] | `conc-fan` | `fan` | fan-out over N workers with balancing; fan-in of many streams, fair, priority or custom |
//! | [`ratelimit`] | `conc-ratelimit` | `ratelimit` (+ `ratelimit-tower`, `ratelimit-redis`) | GCRA, token and leaky bucket, sliding windows; keyed with eviction; Laravel-style named limiters; tower layer; Redis |
//! | [`resilience`] | `conc-resilience` | `resilience` (+ `resilience-tower`) | circuit breaker, bulkhead, retry, timeout, fallback, load shedding, and a stack of them |
//! | [`lock`] | `conc-lock` | `lock` (+ `lock-sqlite`, `lock-redis`) | locks with TTL, owner and fence; funnels; memory, SQLite, Redis |
//! | [`bus`] | `conc-bus` | `bus` (+ `bus-sqlite`, `bus-redis`, `bus-resilience`, `bus-ratelimit`, `bus-lock`, `bus-encryption`, `bus-schedule`) | the command bus; typed background jobs on leased queues (memory, SQLite, Redis), workers, the failed store, the scheduler, batches, chains, unique and debounced jobs, job middleware, encryption |
//! | [`process`] | `conc-process` | `process` | runs with tree-wide timeouts, pools, pipes, supervision |
//!
//! # Feature flags
//!
//! - `pool`: [`pool`], the async and blocking worker pools and the
//!   `Concurrency` facade.
//! - `pipeline`: [`pipeline`], staged pipelines.
//! - `fan`: [`fan`], fan-out and fan-in.
//! - `ratelimit`: [`ratelimit`], the in-memory rate limiters;
//!   `ratelimit-tower` adds its tower layer and `ratelimit-redis` its Redis
//!   limiter.
//! - `resilience`: [`resilience`], fault tolerance for calls to other services;
//!   `resilience-tower` adds its tower layers.
//! - `lock`: [`lock`], the in-memory lock store; `lock-sqlite` and
//!   `lock-redis` add its SQLite and Redis stores.
//! - `bus`: [`bus`], the command bus, job queues, workers and the failed
//!   store; `bus-sqlite` adds the durable SQLite queue, `bus-redis` the Redis
//!   queue shared by many machines, `bus-resilience` and `bus-ratelimit` the
//!   command bus's breaker, retry, timeout and rate limits (and the
//!   `ThrottlesExceptions` and `RateLimited` job middleware), `bus-lock` the
//!   `WithoutOverlapping` job middleware, `bus-encryption` sealed job
//!   payloads, `bus-schedule` the scheduler.
//! - `process`: [`process`], running processes with timeouts that reach the
//!   whole process group, pools, pipes, a supervisor and the process driver.
//! - `full`: every sub-crate with every backend. Off by default; `default = []`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc::core::backoff::Backoff;
//!
//! let backoff = Backoff::fibonacci(Duration::from_millis(100)).max_retries(4).build()?;
//! let delays: Vec<_> = backoff.delays().collect();
//! assert_eq!(delays, [100, 100, 200, 300].map(Duration::from_millis));
//! # Ok::<(), conc::core::config::ConfigError>(())
//! ```
//!
//! Run the tour for a guided look: `cargo run -p conc-kit --example tour`.
//!
//! `conc::core` shares its name with the standard library's `core` crate. In a
//! module that brings it into scope with `use conc::core;`, write `::core::…`
//! for the standard one, or import paths below it instead
//! (`use conc::core::backoff::Backoff;`).
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88; it is raised only in a minor
//! release and never to a version younger than six months.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[doc(inline)]
pub use conc_core as core;

#[cfg(feature = "pool")]
#[cfg_attr(docsrs, doc(cfg(feature = "pool")))]
#[doc(inline)]
pub use conc_pool as pool;

#[cfg(feature = "pipeline")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
#[doc(inline)]
pub use conc_pipeline as pipeline;

#[cfg(feature = "fan")]
#[cfg_attr(docsrs, doc(cfg(feature = "fan")))]
#[doc(inline)]
pub use conc_fan as fan;

#[cfg(feature = "ratelimit")]
#[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
#[doc(inline)]
pub use conc_ratelimit as ratelimit;

#[cfg(feature = "resilience")]
#[cfg_attr(docsrs, doc(cfg(feature = "resilience")))]
#[doc(inline)]
pub use conc_resilience as resilience;

#[cfg(feature = "lock")]
#[cfg_attr(docsrs, doc(cfg(feature = "lock")))]
#[doc(inline)]
pub use conc_lock as lock;

#[cfg(feature = "bus")]
#[cfg_attr(docsrs, doc(cfg(feature = "bus")))]
#[doc(inline)]
pub use conc_bus as bus;

#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
#[doc(inline)]
pub use conc_process as process;

#[doc(no_inline)]
pub use conc_core::{BoxError, BoxFuture};

/// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct Readme;

/// The "which primitive do I need" guide's examples are compiled and run as
/// doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/choosing.md")]
struct ChoosingGuide;

/// The migration notes' examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/migrating.md")]
struct MigratingGuide;
