//! The dashboard in a real headless Chromium, against a running worker on a
//! real SQLite file: a failing job shows up in the failed list, the retry
//! button puts it back and the count follows, pausing a queue stops its
//! processing and resuming starts it again; a batch's progress bar advances
//! as the worker finishes its members one by one (each waits for a permit
//! the test hands out), and its failed member links to the failed job.
//! Writes screenshots under `target/`: `dashboard-overview.png`,
//! `dashboard-metrics.png`, `dashboard-failed.png`,
//! `dashboard-failed-job.png` and `dashboard-batches.png`.
//!
//! Skips with a printed reason when chromedriver or Chromium is missing,
//! unless `CONC_REQUIRE_SERVICES=1`. Every wait polls the page for the state it
//! expects, with a generous deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conc_bus::batch::PendingBatch;
use conc_bus::{AnyBackend, Job, JobError, JobHandlers, Queue, SqliteQueue, Worker};
use conc_dashboard::Dashboard;
use conc_test_support::{Browser, HarnessError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
struct Export {
    day: u32,
}
impl Job for Export {
    const NAME: &'static str = "export-orders";
}

/// A batch member: waits for a permit from the test, then succeeds (row 3 fails).
#[derive(Serialize, Deserialize)]
struct Row {
    n: u32,
}
impl Job for Row {
    const NAME: &'static str = "import-row";
}

#[derive(Serialize, Deserialize)]
struct Ping;
impl Job for Ping {
    const NAME: &'static str = "ping";
}

#[derive(Debug, thiserror::Error)]
#[error("export service unavailable")]
struct Unavailable(#[source] std::io::Error);

const WAIT: Duration = Duration::from_secs(30);

/// The texts of every element matching `css`.
fn texts(browser: &Browser, css: &str) -> Result<Vec<String>, HarnessError> {
    let script =
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)";
    let value = browser.execute(script, &[Value::from(css)])?;
    Ok(value
        .as_array()
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// Waits until the text of `css` is `expected` (the pages refresh themselves).
fn wait_text(browser: &Browser, css: &str, expected: &str) -> Result<(), HarnessError> {
    browser.wait_for(&format!("`{css}` to read `{expected}`"), WAIT, |b| {
        Ok(b.text(css)?.filter(|text| text == expected).map(drop))
    })
}

/// Waits until the progress bar `id` stands at `expected` percent (the page
/// refreshes itself).
fn wait_progress(browser: &Browser, id: &str, expected: u8) -> Result<(), HarnessError> {
    let script =
        "var e = document.getElementById(arguments[0]); return e ? +e.dataset.progress : null";
    browser.wait_for(&format!("`{id}` at {expected}%"), WAIT, |b| {
        let value = b.execute(script, &[Value::from(id)])?;
        Ok((value.as_u64() == Some(u64::from(expected))).then_some(()))
    })
}

/// Clicks `css` once it is there.
fn click(browser: &Browser, css: &str) -> Result<(), HarnessError> {
    browser.wait_for(&format!("`{css}` to be clickable"), WAIT, |b| Ok(b.click(css)?.then_some(())))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

#[test]
fn retry_and_pause_from_the_browser() -> Result<(), Box<dyn std::error::Error>> {
    let Some(browser) = conc_test_support::require_browser() else { return Ok(()) };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _entered = runtime.enter();

    let dir = tempfile::tempdir()?;
    let backend = SqliteQueue::open(dir.path().join("jobs.db"))?;
    let queue = Queue::new(backend.clone());
    let export_up = Arc::new(AtomicBool::new(false));
    let up = Arc::clone(&export_up);
    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = Arc::clone(&permits);
    let handlers = JobHandlers::new()
        .handle(move |_: Export, _| {
            let up = up.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err(JobError::retry(Unavailable(std::io::Error::other("connection refused"))))
                }
            }
        })
        .handle(|_: Ping, _| async { Ok::<(), JobError>(()) })
        .handle(move |row: Row, _| {
            let permits = Arc::clone(&gate);
            async move {
                permits.acquire().await.map_err(JobError::fatal)?.forget();
                if row.n == 3 { Err(JobError::fatal("row 3 does not parse")) } else { Ok(()) }
            }
        });
    let worker = Worker::builder(backend.clone(), handlers)
        .name("browser-worker")
        .queues(["default", "other"])
        .poll_interval(Duration::from_millis(20))
        .build()?;
    let dashboard = Dashboard::builder(AnyBackend::with_workflows(backend))
        .worker(&worker)
        .refresh(Duration::from_secs(1))
        .sample_every(Duration::from_millis(200))
        .build()?;
    worker.start()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = dashboard.clone();
    runtime.spawn(async move { server.serve(listener, std::future::pending()).await });

    // A failing job appears in the failed list.
    runtime.block_on(async { queue.dispatch(Export { day: 17 }).max_attempts(1).await })?;
    browser.goto(&format!("{base}/failed"))?;
    wait_text(&browser, "#failed-count", "1")?;
    let row = browser.wait_for("a failed row", WAIT, |b| b.text("tr[id^='failed-']"))?;
    assert!(row.contains("export-orders"), "{row}");
    assert!(row.contains("export service unavailable: connection refused"), "{row}");
    browser.screenshot(&target_dir().join("dashboard-failed.png"))?;

    // Its page shows the payload and the attempt.
    click(&browser, "tr[id^='failed-'] a")?;
    let payload = browser.wait_for("the payload", WAIT, |b| b.text("#payload"))?;
    assert!(payload.contains("\"day\": 17"), "{payload}");
    browser.screenshot(&target_dir().join("dashboard-failed-job.png"))?;

    // Retry moves it back: the count drops and the worker processes it.
    export_up.store(true, Ordering::SeqCst);
    click(&browser, "button[id^='retry-']")?;
    wait_text(&browser, "#failed-count", "0")?;
    assert!(browser.text("tr[id^='failed-']")?.is_none(), "the row is gone");
    browser.goto(&format!("{base}/recent"))?;
    browser.wait_for("export-orders processed", WAIT, |b| {
        let rows = texts(b, "tbody tr")?;
        Ok(rows
            .iter()
            .any(|r| r.contains("export-orders") && r.contains("processed"))
            .then_some(()))
    })?;

    // Pausing `default` stops its processing while `other` goes on.
    browser.goto(&format!("{base}/queues"))?;
    click(&browser, "#pause-default")?;
    wait_text(&browser, "#queue-default .state", "paused")?;
    runtime.block_on(queue.push(Export { day: 18 }))?;
    runtime.block_on(async { queue.dispatch(Ping).on_queue("other").await })?;
    browser.goto(&format!("{base}/recent"))?;
    browser.wait_for("the ping on `other` processed", WAIT, |b| {
        Ok(texts(b, "tbody tr")?.iter().any(|r| r.contains("ping")).then_some(()))
    })?;
    // The worker takes `default` before `other`: having run the ping, it
    // passed over the paused queue's job, which is still waiting.
    browser.goto(&format!("{base}/queues"))?;
    wait_text(&browser, "#queue-default .ready", "1")?;

    // Resuming lets it run.
    click(&browser, "#resume-default")?;
    wait_text(&browser, "#queue-default .state", "active")?;
    wait_text(&browser, "#queue-default .ready", "0")?;
    browser.goto(&format!("{base}/recent"))?;
    browser.wait_for("both exports processed", WAIT, |b| {
        let rows = texts(b, "tbody tr")?;
        let done = rows.iter().filter(|r| r.contains("export-orders") && r.contains("processed"));
        Ok((done.count() == 2).then_some(()))
    })?;

    // Screenshots for people to look at.
    browser.goto(&format!("{base}/metrics?refresh=0"))?;
    browser.wait_for("the throughput chart", WAIT, |b| {
        b.text("#chart-throughput").map(|t| t.map(drop))
    })?;
    browser.screenshot(&target_dir().join("dashboard-metrics.png"))?;
    browser.goto(&format!("{base}/?refresh=0"))?;
    wait_text(&browser, "#worker-browser-worker td:nth-child(3)", "running")?;
    browser.screenshot(&target_dir().join("dashboard-overview.png"))?;

    // A batch's progress bar advances as the worker finishes its members,
    // one per permit the test hands out.
    let batch = PendingBatch::new().name("import customers").on_queue("other").allow_failures(true);
    let batch = (1..=4).fold(batch, |batch, n| batch.add(Row { n })).finally(Ping);
    let id = runtime.block_on(queue.dispatch_batch(batch))?;
    browser.goto(&format!("{base}/batches/{id}"))?;
    wait_progress(&browser, "batch-progress", 0)?;
    for done in 1..=4_u8 {
        permits.add_permits(1);
        if done == 2 {
            // Half way, in the list, for people to look at.
            browser.goto(&format!("{base}/batches?refresh=0"))?;
            wait_progress(&browser, &format!("progress-{id}"), 50)?;
            browser.screenshot(&target_dir().join("dashboard-batches.png"))?;
            browser.goto(&format!("{base}/batches/{id}"))?;
        }
        wait_progress(&browser, "batch-progress", done * 25)?;
    }
    wait_text(&browser, "#batch-counts", "4 total: 0 pending, 3 succeeded, 1 failed, 0 cancelled")?;
    wait_text(&browser, "#callback-finally td:nth-child(3)", "yes")?;
    // The failed member links to its failed job.
    click(&browser, "tr[id^='member-'] a")?;
    let payload = browser.wait_for("the failed row's payload", WAIT, |b| b.text("#payload"))?;
    assert!(payload.contains("\"n\": 3"), "{payload}");

    worker.stop(Duration::ZERO);
    runtime.block_on(worker.stopped());
    Ok(())
}
