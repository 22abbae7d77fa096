//! The `conc-bus` binary against a real SQLite queue file: tables and JSON,
//! every failed-job operation, pause, resume and clear, and the errors of a
//! wrong URL (nothing created, nothing changed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use conc_bus::{Job, JobContext, JobError, JobHandlers, Queue, SqliteQueue, Worker};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
struct Charge {
    order: u32,
}

impl Job for Charge {
    const NAME: &'static str = "charge";
}

/// A queue file with `failing` jobs failed (two on `default`, the rest on
/// `payments`) and two ready jobs on `mail`.
async fn file_with_failed_jobs(dir: &Path) -> PathBuf {
    let path = dir.join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone());
    for order in 0..5 {
        let on = if order < 2 { "default" } else { "payments" };
        queue.dispatch(Charge { order }).on_queue(on).max_attempts(1).await.unwrap();
    }
    let handlers = JobHandlers::new().handle(|job: Charge, _: JobContext| async move {
        Err::<(), _>(JobError::retry(format!("card declined for order {}", job.order)))
    });
    Worker::builder(backend, handlers)
        .queues(["default", "payments"])
        .stop_when_empty(true)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    queue.dispatch(Charge { order: 10 }).on_queue("mail").await.unwrap();
    queue.dispatch(Charge { order: 11 }).on_queue("mail").await.unwrap();
    path
}

fn conc_bus(backend: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conc-bus"))
        .arg("--backend")
        .arg(backend)
        .args(args)
        .env_remove("CONC_BUS_BACKEND")
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

#[tokio::test]
async fn queues_and_failed_jobs_are_listed_shown_retried_forgotten_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_failed_jobs(dir.path()).await;
    let url = format!("sqlite:{}", path.display());

    let table = ok(&conc_bus(&url, &["queues"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("queue"), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("mail") && l.contains(" 2 ")), "{table}");

    let queues = json(&conc_bus(&url, &["--json", "queues"]));
    let find = |name: &str| queues.as_array().unwrap().iter().find(|q| q["name"] == name).cloned();
    assert_eq!(find("payments").unwrap()["failed"], 3);
    assert_eq!(find("mail").unwrap()["ready"], 2);

    let failed = json(&conc_bus(&url, &["failed", "list", "--json", "--queue", "payments"]));
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[0]["reason"], "AttemptsExhausted");
    let first = failed[0]["id"].as_str().unwrap().to_owned();

    let shown = ok(&conc_bus(&url, &["failed", "show", &first]));
    assert!(shown.contains("payload    {\"order\":2}"), "{shown}");
    assert!(shown.contains("card declined for order 2"), "{shown}");
    let shown = json(&conc_bus(&url, &["--json", "failed", "show", &first]));
    assert_eq!(shown["envelope"]["history"][0]["error"], "card declined for order 2");

    // Retry one by id: it leaves the failed store and is ready on its queue.
    let retried = json(&conc_bus(&url, &["--json", "failed", "retry", &first]));
    assert_eq!(retried["retried"][0], first.as_str());
    let payments = json(&conc_bus(&url, &["--json", "queue", "show", "payments"]));
    assert_eq!((payments[0]["ready"].clone(), payments[0]["failed"].clone()), (1.into(), 2.into()));

    // Retry by queue, forget one, prune none (all are recent), flush the rest.
    let by_queue = json(&conc_bus(&url, &["--json", "failed", "retry", "--queue", "payments"]));
    assert_eq!(by_queue["retried"].as_array().unwrap().len(), 2);
    let rest = json(&conc_bus(&url, &["--json", "failed", "list"]));
    let forget = rest[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(&conc_bus(&url, &["failed", "forget", &forget])), format!("forgot {forget}\n"));
    assert_eq!(json(&conc_bus(&url, &["--json", "failed", "prune", "--hours", "1"]))["deleted"], 0);
    assert_eq!(ok(&conc_bus(&url, &["failed", "flush"])), "deleted 1 failed job(s)\n");
    assert_eq!(ok(&conc_bus(&url, &["failed", "list"])), "no failed jobs\n");
}

#[tokio::test]
async fn retry_all_pause_resume_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_failed_jobs(dir.path()).await;
    let url = path.display().to_string(); // a bare path works too

    assert_eq!(ok(&conc_bus(&url, &["failed", "retry", "--all"])), "retried 5 job(s)\n");
    assert_eq!(ok(&conc_bus(&url, &["queue", "pause", "mail"])), "paused `mail`\n");
    let mail = json(&conc_bus(&url, &["--json", "queue", "show", "mail"]));
    assert_eq!(mail[0]["paused"], true);
    assert_eq!(ok(&conc_bus(&url, &["queue", "resume", "mail"])), "resumed `mail`\n");
    assert_eq!(ok(&conc_bus(&url, &["queue", "clear", "mail"])), "cleared 2 job(s) from `mail`\n");

    // A worker of another process sees what the commands did.
    let queue = Queue::new(SqliteQueue::open(&path).unwrap());
    assert_eq!(queue.size("mail").await.unwrap().total(), 0);
    assert_eq!(queue.size("payments").await.unwrap().ready, 3);
    assert_eq!(queue.failed_count(None).await.unwrap(), 0);
}

#[test]
fn a_wrong_url_or_a_missing_file_is_a_clear_error_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let output = conc_bus(&format!("sqlite:{}", missing.display()), &["queues"]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!missing.exists(), "nothing was created");

    let output = conc_bus("postgres://localhost/jobs", &["queues"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scheme"));

    let output = conc_bus("", &["queues"]);
    assert_eq!(output.status.code(), Some(2));

    // A file that is not a queue file is left as it was.
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "not a database").unwrap();
    let output = conc_bus(&foreign.display().to_string(), &["queue", "clear", "default"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "not a database");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no -wal or -shm file appeared");

    let output = conc_bus("memory:", &["batches", "list"]);
    assert_eq!(ok(&output), "no batches\n", "a memory queue keeps batches");
    let output = conc_bus("memory:", &["batches", "show", "not-an-id"]);
    assert_eq!(output.status.code(), Some(2), "clap refuses a malformed batch id");
}

#[tokio::test]
async fn an_unknown_id_is_refused_and_nothing_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_failed_jobs(dir.path()).await;
    let url = format!("sqlite:{}", path.display());
    let known =
        json(&conc_bus(&url, &["--json", "failed", "list"]))[0]["id"].as_str().unwrap().to_owned();
    let unknown = "00000000000000000000000000";
    let output = conc_bus(&url, &["failed", "retry", &known, unknown]);
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(json(&conc_bus(&url, &["--json", "failed", "list"])).as_array().unwrap().len(), 5);
    let output = conc_bus(&url, &["failed", "show", "not-an-id"]);
    assert_eq!(output.status.code(), Some(2), "clap refuses a malformed id");
}

static_assertions::assert_impl_all!(conc_bus_cli::Admin: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus_cli::AdminError: Send, Sync);
static_assertions::assert_impl_all!(conc_bus_cli::QueueReport: Send, Sync);
static_assertions::assert_impl_all!(conc_bus_cli::BatchDetail: Send, Sync);
static_assertions::assert_impl_all!(conc_bus_cli::BatchQuery: Send, Sync);
