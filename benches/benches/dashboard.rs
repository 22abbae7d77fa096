//! `conc-dashboard`: how long the server takes to answer a page with 10,000
//! failed jobs in a SQLite queue file (the target is under 50 ms).
//!
//! Each request goes through the dashboard's axum router in the process (no
//! socket, so no network time): access check, the backend's queries, the HTML
//! or JSON. The file is filled once before the clock starts: 10,000 jobs, each
//! failed for good by a worker, plus 100 ready jobs on two queues.
//!
//! - `dashboard/failed_10k`: the failed list, a page of 50 jobs: `ours/first`
//!   (the first page), `ours/deep` (the page after the 9,950th job, through
//!   its cursor), `ours/json` (the first page from `/api/failed`), and
//!   `ours/filtered` (the first page of one queue's 5,000).
//! - `dashboard/pages_10k`: the other pages over the same file: the overview,
//!   the queues, one failed job, the metrics charts (720 samples).
//! - `dashboard/batches_10k`: another file with 10,000 batches of two
//!   members each (every fourth cancelled): `ours/list` (the first page of
//!   50), `ours/deep` (the page before the 9,950th newest, through its
//!   cursor), `ours/state_scan` (`?state=finished`, which none is: the
//!   filter looks through all 10,000), `ours/batch` (one batch's page with
//!   its members), `ours/overview` (with its card over the newest 100).
//!
//! There is no peer: no Rust dashboard for these queues exists to compare with.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use conc_bus::batch::{BatchId, PendingBatch};
use conc_bus::{AnyBackend, FailedQuery, Job, JobError, JobHandlers, Queue, SqliteQueue, Worker};
use conc_dashboard::Dashboard;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const FAILED: u32 = 10_000;
const BATCHES: u32 = 10_000;

/// A queue file with `BATCHES` batches of two members on a queue no worker
/// takes, every fourth one cancelled; the ids, newest first.
async fn fill_batches(backend: &SqliteQueue) -> Result<Vec<BatchId>, Box<dyn std::error::Error>> {
    let queue = Queue::new(backend.clone());
    let mut ids = Vec::new();
    for n in 0..BATCHES {
        let batch = PendingBatch::new().name(format!("import {n}")).on_queue("imports");
        let batch = batch
            .add(Export { day: n, customer: format!("customer-{n}") })
            .add(Export { day: n + 1, customer: format!("customer-{n}") });
        let id = queue.dispatch_batch(batch).await?;
        if n % 4 == 0 {
            queue.cancel_batch(id).await?;
        }
        ids.push(id);
    }
    ids.reverse();
    Ok(ids)
}

#[derive(Serialize, Deserialize)]
struct Export {
    day: u32,
    customer: String,
}
impl Job for Export {
    const NAME: &'static str = "export-orders";
}

/// A queue file with `FAILED` failed jobs (half on `reports`, half on
/// `default`) and 100 ready ones.
async fn fill(backend: &SqliteQueue) -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::new(backend.clone());
    let jobs = |range: std::ops::Range<u32>| {
        range.map(|day| Export { day, customer: format!("customer-{day}") }).collect::<Vec<_>>()
    };
    for chunk in (0..FAILED).step_by(1000) {
        for job in jobs(chunk..chunk + 1000) {
            let on = if job.day % 2 == 0 { "reports" } else { "default" };
            queue.dispatch(job).on_queue(on).max_attempts(1).await?;
        }
    }
    let handlers = JobHandlers::new().handle(|job: Export, _| async move {
        Err::<(), _>(JobError::retry(format!(
            "export of day {} failed: service unavailable",
            job.day
        )))
    });
    Worker::builder(backend.clone(), handlers)
        .queues(["default", "reports"])
        .concurrency(64)
        .prefetch(64)
        .stop_when_empty(true)
        .build()?
        .run()
        .await?;
    assert_eq!(queue.failed_count(None).await?, u64::from(FAILED));
    queue.pause("mail").await?;
    for job in jobs(0..100) {
        let on = if job.day % 2 == 0 { "mail" } else { "thumbnails" };
        let delay = Duration::from_secs(3600 * u64::from(job.day % 3 == 0));
        queue.dispatch(job).on_queue(on).delay(delay).await?;
    }
    Ok(())
}

async fn get(app: &axum::Router, path: &str) -> usize {
    let mut request = Request::get(path).body(Body::empty()).expect("a request");
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    let response = app.clone().oneshot(request).await.expect("the router answers");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    to_bytes(response.into_body(), usize::MAX).await.expect("a body").len()
}

fn dashboard(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).expect("a queue file");
    runtime.block_on(fill(&backend)).expect("the queue file is filled");
    let (dashboard, deep) = runtime.block_on(async {
        let dashboard = Dashboard::builder(AnyBackend::new(backend.clone()))
            .sample_every(Duration::ZERO)
            .build()
            .expect("a dashboard");
        for _ in 0..720 {
            dashboard.sample_now().await.expect("a sample");
        }
        let queue = Queue::new(backend.clone());
        let before = queue.failed(&FailedQuery::new().limit(9950)).await.expect("failed jobs");
        (dashboard, before.last().expect("9,950 failed jobs").envelope.id)
    });
    let app = dashboard.router();
    let one = runtime.block_on(async {
        Queue::new(backend.clone()).failed(&FailedQuery::new().limit(1)).await.expect("one")[0]
            .envelope
            .id
    });

    let mut group = c.benchmark_group("dashboard/failed_10k");
    for (name, path) in [
        ("ours/first", "/failed".to_owned()),
        ("ours/deep", format!("/failed?after={deep}")),
        ("ours/json", "/api/failed".to_owned()),
        ("ours/filtered", "/failed?queue=reports".to_owned()),
    ] {
        group.bench_function(name, |b| b.to_async(&runtime).iter(|| get(&app, &path)));
    }
    group.finish();

    let mut group = c.benchmark_group("dashboard/pages_10k");
    for (name, path) in [
        ("ours/overview", "/".to_owned()),
        ("ours/queues", "/queues".to_owned()),
        ("ours/failed_job", format!("/failed/{one}")),
        ("ours/metrics_720_samples", "/metrics".to_owned()),
    ] {
        group.bench_function(name, |b| b.to_async(&runtime).iter(|| get(&app, &path)));
    }
    group.finish();

    let batch_dir = tempfile::tempdir().expect("a temporary directory");
    let batches = SqliteQueue::open(batch_dir.path().join("batches.db")).expect("a queue file");
    let ids = runtime.block_on(fill_batches(&batches)).expect("the batches are stored");
    let app = Dashboard::builder(AnyBackend::with_workflows(batches))
        .sample_every(Duration::ZERO)
        .build()
        .expect("a dashboard")
        .router();
    let mut group = c.benchmark_group("dashboard/batches_10k");
    for (name, path) in [
        ("ours/list", "/batches".to_owned()),
        ("ours/deep", format!("/batches?before={}", ids[9949])),
        ("ours/state_scan", "/batches?state=finished".to_owned()),
        ("ours/batch", format!("/batches/{}", ids[5000])),
        ("ours/overview", "/".to_owned()),
    ] {
        group.bench_function(name, |b| b.to_async(&runtime).iter(|| get(&app, &path)));
    }
    group.finish();
}

criterion_group!(benches, dashboard);
criterion_main!(benches);
