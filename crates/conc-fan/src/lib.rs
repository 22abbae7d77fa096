//! Fan-out over N workers with batching and load balancing, and fan-in of
//! many streams with fair, priority or custom merging.
//!
//! # Overview
//!
//! - [`FanOut`] spreads the items of a stream over N worker tasks, in
//!   batches, picking workers by [`Balance`] (round robin, least loaded or a
//!   function of the loads), and gives the results back in input order or as
//!   they finish. Per-worker loads are visible ([`FanOutStream::loads`]).
//!   Timeouts, caught panics, retries, dead letters and an [`ErrorPolicy`]
//!   apply per item (see [Error policy](#error-policy)). The items in flight
//!   are bounded, so a slow consumer slows the source. The fan-out counts
//!   what its workers did over every run ([`FanOut::metrics`]).
//! - [`FanIn`] merges any number of streams, added and removed while it runs
//!   (also from other tasks, through a [`FanInHandle`]), in the order a
//!   [`MergeStrategy`] decides: [`RoundRobin`] (fair: every ready input
//!   progresses), [`Priority`] (strict) or your own. It keeps a queue of
//!   ready inputs fed by per-input wakers, so the cost per item stays flat
//!   from 8 inputs to 10,000, where merges that scan every input per poll
//!   slow down linearly. It takes part in tokio's cooperative budget, so an
//!   always-ready input cannot starve inputs woken by timers, whatever the
//!   runtime flavour.
//! - [`FanPattern`] chains the two: merge many sources, process on N workers.
//!
//! # Error policy
//!
//! An item fails when its processor returns an error, panics (the panic is
//! caught and becomes [`ItemError::Panicked`] with its message) or outlives the
//! [`timeout`](FanOutBuilder::timeout). Then, in order:
//!
//! 1. With a [`Recovery`] set by [`FanOutBuilder::recover`], the item is
//!    retried with a clone of the input after each delay of its
//!    [`conc_core::backoff::Backoff`], waited on tokio's clock. While it
//!    waits, its worker goes on with the items after it.
//! 2. An item that failed its last attempt goes to the recovery's dead letter
//!    sink ([`DeadLetterQueue`], bounded, or your [`DeadLetterSink`]) as a
//!    [`DeadLetter`] holding the item, the last error, the worker
//!    ([`Origin::Worker`]), the attempts and the failure times. The output
//!    stream skips it and counts it ([`FanOutStream::dead_lettered`]).
//! 3. Otherwise the [`ErrorPolicy`] decides: [`Fail`](ErrorPolicy::Fail)
//!    yields the error and stops the workers, [`Skip`](ErrorPolicy::Skip)
//!    drops it and counts it. The error is [`FanError::Worker`], carrying the
//!    worker, the attempt count and the last attempt's [`ItemError`].
//!
//! The item vocabulary ([`ItemError`], [`ErrorPolicy`], [`DeadLetter`],
//! [`DeadLetterSink`], [`DeadLetterQueue`], [`Origin`], [`StartError`]) is
//! conc-core's [`conc_core::item`], re-exported here: `conc-pipeline` speaks
//! it too, so one sink serves a pipeline stage and a fan-out alike.
//!
//! [`FanOut::process_batch`] processes every item whatever the policy and
//! returns each one's result in its slot.
//!
//! # Feature flags
//!
//! None; the crate needs tokio's `rt`, `sync` and `time`.
//!
//! # Examples
//!
//! ```
//! use conc_fan::{FanIn, FanOut, Priority};
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
//! // Urgent items first, then the rest.
//! let mut inbox = FanIn::with_strategy(Priority::default());
//! inbox.add_with_priority(futures::stream::iter(["bulk-1", "bulk-2"]), 0);
//! inbox.add_with_priority(futures::stream::iter(["urgent"]), 9);
//! let order: Vec<&str> = inbox.collect().await;
//! assert_eq!(order, ["urgent", "bulk-1", "bulk-2"]);
//!
//! // Eight workers, results in input order.
//! let resize = FanOut::builder()
//!     .workers(8)
//!     .build(|image: u32| async move { Ok::<_, std::io::Error>(image / 2) })?;
//! let sizes: Vec<u32> = resize
//!     .process_stream(futures::stream::iter([640, 1024, 2048]))
//!     .map(Result::unwrap)
//!     .collect()
//!     .await;
//! assert_eq!(sizes, [320, 512, 1024]);
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | run a stream's items N at a time | futures `buffer_unordered(n)` on one task | [`FanOut`]: N tasks, batched hand-offs, ordered or not |
//! | a worker pool with balancing | ants `MultiPool` (`RoundRobin` / `LeastTasks`) | [`Balance`] |
//! | merge N streams | futures `select_all`, tokio-stream `StreamMap` (scans every input) | [`FanIn`]: readiness queue, add/remove while running |
//! | a custom merge order | futures `select_with_strategy` (two streams only) | [`MergeStrategy`] over any number |
//! | prioritised merge | Akka `MergePrioritized` | [`Priority`] |
//! | retry failed items, keep the rest | a retry loop inside the task | [`Recovery`]: a conc-core backoff, then a [`DeadLetterQueue`] |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod error;
mod fan_in;
mod fan_out;
mod pattern;
mod recovery;
mod strategy;

pub use conc_core::item::{
    DeadLetter, DeadLetterQueue, DeadLetterSink, ErrorPolicy, ItemError, Origin, StartError,
};
pub use error::FanError;
pub use fan_in::{FanIn, FanInHandle, FanInMetrics};
pub use fan_out::{
    Balance, FanOut, FanOutBuilder, FanOutMetrics, FanOutStream, PickWorker, WorkerLoad,
};
pub use pattern::FanPattern;
pub use recovery::Recovery;
pub use strategy::{InputKey, MergeStrategy, Priority, RoundRobin};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/fan.md")]
struct FanGuide;
