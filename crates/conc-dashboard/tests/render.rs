//! How long the dashboard takes to answer its pages over a big SQLite queue
//! file: 10,000 failed jobs, 3,000 queues and 20 workers of other processes
//! (their heartbeats); and over 10,000 batches. Each page is asserted on what it shows, and its median
//! time over 20 requests printed, never asserted (timings depend on the
//! machine): run it with
//!
//! ```sh
//! cargo test -p conc-dashboard --release --test render -- --nocapture
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use conc_bus::{
    AnyBackend, Envelope, Job, JobError, JobHandlers, JobOptions, Pushed, Queue, QueueBackend,
    SqliteQueue, Worker, WorkerBeat,
};
use conc_dashboard::Dashboard;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const FAILED: u32 = 10_000;
const QUEUES: u32 = 3_000;
const WORKERS: u32 = 20;

#[derive(Serialize, Deserialize)]
struct Export {
    day: u32,
}
impl Job for Export {
    const NAME: &'static str = "export-orders";
}

/// `FAILED` failed jobs (failed for good by a worker), one ready job on each
/// of `QUEUES` queues, and `WORKERS` heartbeats of workers elsewhere.
async fn fill(backend: &SqliteQueue) {
    let queue = Queue::new(backend.clone());
    let now = backend.now();
    let failing: Vec<Pushed> = (0..FAILED)
        .map(|day| {
            let options = JobOptions::new().queue("reports").max_attempts(1);
            Pushed::new(Envelope::new(&Export { day }, &options, now).unwrap(), now)
        })
        .collect();
    backend.push(failing).await.unwrap();
    let handlers = JobHandlers::new().handle(|job: Export, _| async move {
        Err::<(), _>(JobError::retry(format!("export of day {} failed", job.day)))
    });
    Worker::builder(backend.clone(), handlers)
        .queues(["reports"])
        .concurrency(64)
        .prefetch(64)
        .heartbeats(false)
        .stop_when_empty(true)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(queue.failed_count(None).await.unwrap(), u64::from(FAILED));
    let spread: Vec<Pushed> = (0..QUEUES)
        .map(|n| {
            let options = JobOptions::new().queue(format!("q{n:05}"));
            Pushed::new(Envelope::new(&Export { day: n }, &options, now).unwrap(), now)
        })
        .collect();
    backend.push(spread).await.unwrap();
    for n in 0..WORKERS {
        let mut beat = WorkerBeat::new(format!("w{n:02}"), "exporter");
        beat.host = format!("host-{}", n % 4);
        beat.pid = 1000 + n;
        beat.queues = vec![format!("q{n:05}")];
        (beat.beat_at, beat.interval_ms, beat.processed) = (backend.now(), 60_000, 100);
        (beat.previous_beat_at, beat.previous_processed) = (beat.beat_at - 60_000, 40);
        backend.record_worker(&beat).await.unwrap();
    }
}

async fn get(app: &axum::Router, path: &str) -> String {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

/// The median time of 20 requests of `path`, printed; the last body.
async fn measure(app: &axum::Router, path: &str) -> String {
    let mut times = Vec::new();
    let mut body = String::new();
    for _ in 0..20 {
        let started = Instant::now();
        body = get(app, path).await;
        times.push(started.elapsed());
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    let line = format!("{path:<40} {median:>12.1?}  ({} bytes)\n", body.len());
    std::io::stderr().write_all(line.as_bytes()).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_over_10k_failed_jobs_and_3000_queues() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    fill(&backend).await;
    let dashboard = Dashboard::builder(AnyBackend::new(backend.clone()))
        .sample_every(Duration::ZERO)
        .build()
        .unwrap();
    let app = dashboard.router();

    let overview = measure(&app, "/").await;
    assert!(overview.contains("id=\"queue-q00049\"") && !overview.contains("queue-q00050"));
    assert!(overview.contains("<b>3001</b>queues"), "3,000 queues and `reports`");
    assert!(overview.contains("<b>20</b>workers"), "the heartbeats");
    assert!(overview.contains("<b>1200</b>processed / min"), "60 a minute each");
    let deep = measure(&app, "/queues?page=59").await;
    assert!(deep.contains("id=\"queue-q02950\"") && deep.contains("id=\"queue-q02999\""));
    assert!(!deep.contains("queue-reports"), "the 3,001st is on the next page");
    let json: serde_json::Value =
        serde_json::from_str(&measure(&app, "/api/queues").await).unwrap();
    assert_eq!(
        (json["total"].as_u64(), json["items"].as_array().map(Vec::len)),
        (Some(3001), Some(50))
    );
    let workers = measure(&app, "/workers").await;
    assert!(workers.contains("host-3") && workers.contains("1019"), "pid of the last");
    let failed = measure(&app, "/failed").await;
    assert!(failed.contains("export of day 0 failed"));
    measure(&app, "/failed?queue=reports").await;

    // What a queue list cost when it sized every queue.
    let admin = conc_bus_cli::Admin::new(AnyBackend::new(backend.clone()));
    let started = Instant::now();
    assert_eq!(admin.queues().await.unwrap().len(), 3001);
    let line =
        format!("{:<40} {:>12.1?}\n", "every queue sized (Admin::queues)", started.elapsed());
    std::io::stderr().write_all(line.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_pages_over_10k_batches_filter_and_page_in_the_store() {
    use conc_bus::Synchronous;
    use conc_bus::batch::PendingBatch;

    const BATCHES: u32 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::builder(&path).synchronous(Synchronous::Normal).open().unwrap();
    let queue = Queue::new(backend.clone());
    let mut ids = Vec::new();
    for n in 0..BATCHES {
        let batch = PendingBatch::new().name(format!("import {n}")).on_queue("imports");
        let batch = batch.add(Export { day: n }).add(Export { day: n + 1 });
        let id = queue.dispatch_batch(batch).await.unwrap();
        if n % 4 == 0 {
            queue.cancel_batch(id).await.unwrap();
        }
        ids.push(id);
    }
    ids.reverse();
    let dashboard = Dashboard::builder(AnyBackend::with_workflows(backend))
        .sample_every(Duration::ZERO)
        .build()
        .unwrap();
    let app = dashboard.router();

    let first = measure(&app, "/batches").await;
    assert!(first.contains(&ids[0].to_string()) && !first.contains(&ids[50].to_string()));
    let deep = measure(&app, &format!("/batches?before={}", ids[9_949])).await;
    assert!(deep.contains(&ids[9_950].to_string()) && deep.contains(&ids[9_999].to_string()));
    let none = measure(&app, "/api/batches?state=finished").await;
    let none: serde_json::Value = serde_json::from_str(&none).unwrap();
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "none is finished");
    let cancelled = measure(&app, "/api/batches?state=cancelled").await;
    let cancelled: serde_json::Value = serde_json::from_str(&cancelled).unwrap();
    assert_eq!(cancelled["items"][0]["id"], ids[3].to_string(), "the newest cancelled");
    let named = measure(&app, "/api/batches?name=import%209999").await;
    let named: serde_json::Value = serde_json::from_str(&named).unwrap();
    assert_eq!(named["items"].as_array().map(Vec::len), Some(1));
    measure(&app, "/").await;
}
