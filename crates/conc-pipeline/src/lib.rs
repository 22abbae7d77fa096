//! Typed staged pipelines: per-stage concurrency, bounded buffers, ordered or
//! unordered output, retries, a dead letter sink and per-stage metrics.
//!
//! # Overview
//!
//! A [`Pipeline`] is a chain of named stages built with
//! [`Pipeline::builder`]. Each stage takes the previous stage's output type,
//! so a chain that does not fit does not compile:
//!
//! - [`stage`](PipelineBuilder::stage), [`map`](PipelineBuilder::map) and
//!   [`blocking`](PipelineBuilder::blocking) add an async fallible, async
//!   infallible or blocking processor with its concurrency and buffer;
//!   [`filter`](PipelineBuilder::filter) drops items;
//!   [`then`](PipelineBuilder::then) adds a [`Stage`] with every setting:
//!   [`unordered`](Stage::unordered), [`timeout`](Stage::timeout),
//!   [`retry`](Stage::retry) (a [`conc_core::backoff::Backoff`], waited on
//!   tokio's clock), [`on_error`](Stage::on_error) ([`ErrorPolicy::Fail`] or
//!   [`Skip`](ErrorPolicy::Skip)), [`dead_letter`](Stage::dead_letter) and
//!   [`spawn`](Stage::spawn). [`build`](PipelineBuilder::build) checks every
//!   stage and refuses a bad setting with a
//!   [`ConfigError`](conc_core::config::ConfigError) naming the stage.
//! - A built pipeline runs [`process`](Pipeline::process) (one item),
//!   [`process_batch`](Pipeline::process_batch) (one [`Outcome`] per input, in
//!   input order) and [`process_stream`](Pipeline::process_stream) (a stream
//!   in, a stream out), and counts per stage over every run
//!   ([`Pipeline::metrics`]).
//!
//! **How it runs.** By default the stages are stream combinators polled by
//! the consumer: no task per stage and no channel between stages. Each stage
//! keeps up to `concurrency` items in flight in reusable slots (nothing is
//! allocated per item) and polls a pending item only when its own waker
//! fires. A stage marked [`spawn`](Stage::spawn) runs, with everything before
//! it, on its own tokio task and hands items to the next stage through a
//! bounded queue, in batches of up to [`hand_off_batch`](Stage::hand_off_batch)
//! items: use it for parallelism across cores, and so that a stage keeps
//! working while the consumer is busy between items. The output stream
//! spends a unit of tokio's cooperative budget per input it takes, so an
//! always-ready source lets the runtime run its timers and IO between runs
//! of items, on a current-thread runtime too.
//!
//! **Backpressure.** Every stage holds a bounded number of items (its
//! concurrency plus its buffer; a spawned stage also its hand-off queue), and
//! nothing pulls from the source unless there is room, so a slow last stage
//! slows the source and memory stays bounded whatever the input rate.
//!
//! **Errors.** A processor's error, a caught panic or a timeout fails that
//! item only ([`ItemError`]). The stage retries it if asked, then hands it to
//! its dead letter sink ([`DeadLetter`] keeps the item, the stage as its
//! [`Origin`], the error, the attempts and the times), skips it, or fails the
//! run, which ends the output stream with the error.
//!
//! The item vocabulary ([`ItemError`], [`ErrorPolicy`], [`DeadLetter`],
//! [`DeadLetterSink`], [`DeadLetterQueue`], [`Origin`], [`StartError`]) is
//! conc-core's [`conc_core::item`], re-exported here: `conc-fan` speaks it
//! too, so one sink serves a pipeline stage and a fan-out alike.
//!
//! **Cancellation.** Dropping the output stream drops every stage and aborts
//! spawned stage tasks; [`PipelineStream::drain`] stops the source and lets
//! the items in flight finish.
//!
//! # Feature flags
//!
//! None; the crate needs tokio's `rt`, `sync` and `time`.
//!
//! # Examples
//!
//! ```
//! use futures::StreamExt;
//! use conc_pipeline::{DeadLetterQueue, Pipeline, Stage};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
//! let rejected = DeadLetterQueue::new(1_000);
//! let pipeline = Pipeline::builder()
//!     .then(
//!         Stage::new("parse", |line: String| async move { line.parse::<u32>() })
//!             .concurrency(4)
//!             .dead_letter(rejected.clone()),
//!     )
//!     .filter(|n| *n > 0)
//!     .map("price", 8, 32, |n: u32| async move { f64::from(n) * 1.25 })
//!     .build()?;
//!
//! let lines = ["4", "oops", "0", "8"].map(String::from);
//! let prices: Vec<f64> = pipeline
//!     .process_stream(futures::stream::iter(lines))
//!     .filter_map(|price| async move { price.ok() })
//!     .collect()
//!     .await;
//! assert_eq!(prices, [5.0, 10.0]);
//! assert_eq!(rejected.take()[0].item, "oops");
//! assert_eq!(pipeline.metrics().stage("parse").unwrap().dead_lettered, 1);
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | concurrent map, ordered or not | futures `buffered` / `buffer_unordered` chains | [`Stage::concurrency`], [`Stage::unordered`]; no allocation per item |
//! | stages on their own tasks | tokio `mpsc` channels and a spawned task per stage | [`Stage::spawn`] with batched hand-offs through a bounded queue; aborted on drop |
//! | per-stage supervision | Akka Streams supervision (Stop / Resume) | [`ErrorPolicy`], [`Stage::retry`] |
//! | a dead letter queue | — (no in-process anchor has one) | [`DeadLetterQueue`], [`DeadLetterSink`] |
//! | per-stage throughput and latency | — | [`Pipeline::metrics`] |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod error;
mod handoff;
mod metrics;
mod pipeline;
mod processor;
mod slot;
mod stage;
mod window;

pub use conc_core::item::{
    DeadLetter, DeadLetterQueue, DeadLetterSink, ErrorPolicy, ItemError, Origin, StartError,
};
pub use error::PipelineError;
pub use metrics::{PipelineMetrics, StageMetrics};
pub use pipeline::{DrainHandle, Pipeline, PipelineBuilder, PipelineStream};
pub use slot::Outcome;
pub use stage::Stage;

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/pipeline.md")]
struct PipelineGuide;
