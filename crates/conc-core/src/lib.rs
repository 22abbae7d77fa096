//! Stable integration points of the conc toolkit: clocks, backoff maths,
//! metric names, lifecycle and driver traits.
//!
//! # Overview
//!
//! `conc-core` is the small crate every other `conc-*` crate depends on. It is
//! kept stable on purpose (like `tower-service` or `futures-core`): it holds the
//! shared vocabulary, no runtime and almost no dependencies (`metrics` and
//! `thiserror`; no tokio).
//!
//! | module | what it gives you |
//! |---|---|
//! | [`time`] | the [`Clock`](time::Clock) trait; precise, coarse (cached, for hot paths) and manual (for tests) clocks; the [`Timeline`](time::Timeline) components read them through |
//! | [`backoff`] | the one backoff implementation: fixed, linear, exponential, fibonacci, decorrelated jitter, custom; jitter; caps; limits |
//! | [`config`] | [`ConfigError`](config::ConfigError), the one shape of a refused setting (field, value, reason), and the checks builders use |
//! | [`item`] | the vocabulary of item processors: [`ItemError`](item::ItemError), [`ErrorPolicy`](item::ErrorPolicy), [`DeadLetter`](item::DeadLetter) and its sink, [`StartError`](item::StartError) |
//! | [`metrics`] | every metric name as a constant, `describe_metrics()`, the [`MetricsSource`](metrics::MetricsSource) snapshot trait |
//! | [`lifecycle`] | the [`Lifecycle`](lifecycle::Lifecycle) trait and a [`Registry`](lifecycle::Registry) that shuts components down in reverse order by a deadline |
//! | [`ready`] | [`ReadyQueue`](ready::ReadyQueue): per-slot wakers that queue only the woken slots, for streams over many futures |
//! | [`hash`] | [`FoldHash`](hash::FoldHash): a fast hash with random keys for the in-memory keyed tables on hot paths |
//! | [`handoff`] | a bounded queue that hands items from tasks to one consumer in bulk, waking a side only when it waited |
//! | [`recent`] | [`RecentLog`](recent::RecentLog): a shared, bounded log keeping the newest entries and counting the dropped ones |
//! | [`driver`] | the [`Driver`](driver::Driver) trait behind `Concurrency::run`: a batch of tasks in, results in input order out |
//!
//! Most users reach these through the umbrella crate `conc` (`conc::core`).
//!
//! # Feature flags
//!
//! None. The crate always builds the same.
//!
//! # Examples
//!
//! A retry schedule, decided on a clock a test controls:
//!
//! ```
//! use std::time::Duration;
//! use conc_core::backoff::Backoff;
//! use conc_core::time::{Clock, ManualClock};
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100))
//!     .max_delay(Duration::from_secs(1))
//!     .max_retries(5)
//!     .build()?;
//! let clock = ManualClock::new();
//! let start = clock.now();
//! for delay in backoff.delays() {
//!     clock.advance(delay); // a real caller sleeps here
//! }
//! assert_eq!(clock.now() - start, Duration::from_millis(100 + 200 + 400 + 800 + 1000));
//! # Ok::<(), conc_core::config::ConfigError>(())
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | backoff schedules | `backoff` (unmaintained), `backon` (jitter can exceed its cap) | [`backoff`]: the cap applies after jitter, property-tested |
//! | cheap time on hot paths | `quanta`, `coarsetime` | [`time::CoarseClock`] |
//! | test clocks | `mock_instant`, hand-rolled | [`time::ManualClock`] |
//! | component shutdown | hand-written signal plumbing | [`lifecycle::Registry`] |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88 (the workspace's `rust-version`);
//! it is raised only in a minor release and never to a version younger than
//! six months.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod backoff;
pub mod config;
pub mod driver;
mod error;
mod future;
pub mod handoff;
pub mod hash;
pub mod item;
pub mod lifecycle;
mod loom;
pub mod metrics;
pub mod ready;
pub mod recent;
pub mod time;

pub use error::BoxError;
pub use future::BoxFuture;

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/core.md")]
struct CoreGuide;
