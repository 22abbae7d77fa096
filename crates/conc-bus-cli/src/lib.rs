//! Operate conc-bus queues: sizes and waits, pause, resume, clear, the
//! workers of every process (from their heartbeats), the failed store (list, show, retry, forget, flush, prune) and batches (list,
//! show, cancel, prune), from the `conc-bus` binary or as a library.
//!
//! # Overview
//!
//! - [`connect`] opens a backend from its URL (`sqlite:PATH`, a path,
//!   `redis://…`, `memory:`), checking before it opens that it exists and is
//!   a queue (or that the server answers), so a wrong URL changes nothing.
//! - [`Admin`] holds the operations, over any backend ([`AnyBackend`](conc_bus::AnyBackend));
//!   each returns plain data ([`QueueReport`], [`FailedSummary`],
//!   [`FailedJob`](conc_bus::FailedJob), [`BatchReport`], [`BatchDetail`])
//!   that serializes to JSON.
//! - The `conc-bus` binary puts a command line on them (clap), printing
//!   tables by default and JSON with `--json`; errors go to stderr with an
//!   exit code saying which kind ([`AdminError::exit_code`]).
//!
//! `docs/bus-cli.md` is the guide.
//!
//! # Feature flags
//!
//! - `sqlite` (default): SQLite queue files.
//! - `redis` (default): queues on a Redis server (`redis://…`).
//!
//! # Examples
//!
//! ```
//! use conc_bus::{FailedQuery, Job, Queue};
//! use conc_bus_cli::{Admin, RetryFailed, connect};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { image: u32 }
//! impl Job for Resize { const NAME: &'static str = "resize"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let admin = Admin::new(connect("memory:").await?);
//! Queue::new(admin.backend().clone()).push(Resize { image: 7 }).await?;
//! assert_eq!(admin.queues().await?[0].ready, 1);
//! assert!(admin.failed(&FailedQuery::new()).await?.is_empty());
//! assert!(admin.retry(&RetryFailed::All).await?.is_empty());
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | queue sizes, pause, clear | Laravel `queue:monitor`, `queue:pause`, `queue:clear` | `conc-bus queues`, `queue pause`, `queue clear` |
//! | the workers of every process | Horizon's and Sidekiq's process lists | `conc-bus workers` |
//! | failed jobs | Laravel `queue:failed`, `queue:retry`, `queue:forget`, `queue:flush`, `queue:prune-failed`; Sidekiq's dead set | `conc-bus failed list`, `show`, `retry`, `forget`, `flush`, `prune` |
//! | batches | Laravel `queue:prune-batches`, Horizon's batches page; Sidekiq Pro's batch pages | `conc-bus batches list`, `show`, `cancel`, `prune` |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod admin;
mod batches;
mod connect;
mod error;
mod output;

pub use admin::{Admin, FailedSummary, QueueReport, RetryFailed, failed_job_json, visible_payload};
pub use batches::{
    BATCH_SCAN, BatchDetail, BatchMemberReport, BatchQuery, BatchReport, BatchState,
};
pub use connect::connect;
pub use error::AdminError;
pub use output::{short_duration, table, utc};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/bus-cli.md")]
struct Guide;
