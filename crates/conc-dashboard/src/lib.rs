//! A web dashboard for conc-bus queues, on axum: throughput, waits and
//! workers; queues with pause and resume; recent and failed jobs with retry
//! and forget; batches with their progress; charts over time. Mount it into
//! an application's router or run it beside the workers.
//!
//! # Overview
//!
//! - [`Dashboard`] serves server-rendered pages (no template engine, no
//!   JavaScript build step: a few lines of inline script refresh the page)
//!   and the same data as JSON under `/api/...` or to `Accept:
//!   application/json`.
//! - Pages: the overview (jobs per minute processed and failed, runtime per
//!   job, wait per queue, workers and their state), queues (size, oldest
//!   wait, pause and resume), workers, recent jobs, failed jobs (error chain,
//!   attempts, payload; retry and forget), batches (a progress bar each;
//!   a batch's callbacks and members, failed ones linking to their failed
//!   job; cancel), metrics charts from an in-process sampler. Every list is
//!   paged. Batches need a backend made with
//!   [`AnyBackend::with_workflows`](conc_bus::AnyBackend::with_workflows).
//! - Queues, failed jobs and workers come from the backend, so they cover
//!   every process: workers record heartbeats
//!   ([`WorkerBeat`](conc_bus::WorkerBeat)) with their counts, from which the
//!   overview adds up jobs per minute. Runtimes, waits and recent jobs come
//!   from the workers attached with [`DashboardBuilder::worker`], because the
//!   backend keeps no finished jobs. Queue lists size only the page shown.
//! - Access: by default only loopback clients; a [`gate`](DashboardBuilder::gate)
//!   closure decides on top (Horizon's `viewHorizon`). Actions are POSTs that
//!   must carry the dashboard's CSRF token and come from its own origin.
//!   Payloads that [`conc_bus_cli::visible_payload`] hides (encrypted jobs)
//!   are never shown.
//! - The `conc-dashboard` binary serves it alone over a backend URL
//!   (`--backend sqlite:jobs.db`).
//!
//! `docs/dashboard.md` is the guide.
//!
//! # Feature flags
//!
//! - `sqlite` (default): SQLite queue files for the binary's `--backend`.
//!
//! # Examples
//!
//! ```
//! use std::net::SocketAddr;
//! use conc_bus::{AnyBackend, JobHandlers, MemoryQueue, Worker};
//! use conc_dashboard::Dashboard;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = MemoryQueue::new();
//! let worker = Worker::builder(backend.clone(), JobHandlers::new()).build()?;
//! let dashboard = Dashboard::builder(AnyBackend::new(backend)).worker(&worker).build()?;
//!
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my application" }))
//!     .nest("/jobs", dashboard.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let serve =
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>());
//! # drop(serve);
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | a queue dashboard | Laravel Horizon, Sidekiq's Web UI, bull-board, apalis-board | [`Dashboard`] |
//! | access control | Horizon's `viewHorizon` gate | [`DashboardBuilder::gate`], loopback only by default |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod access;
mod batch_pages;
mod builder;
mod html;
mod model;
mod pages;
mod routes;
mod state;

pub use builder::{Dashboard, DashboardBuilder};
pub use model::{
    BatchList, JobOutcome, Overview, Page, QueueSample, RecentJob, Sample, Timing, WorkerReport,
};
pub use state::{OVERVIEW_BATCHES, SAMPLED_QUEUES};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/dashboard.md")]
struct Guide;
