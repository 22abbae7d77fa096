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

#[tokio::test]
async fn a_mistyped_queue_is_refused_by_name_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_failed_jobs(dir.path()).await;
    let url = format!("sqlite:{}", path.display());
    let names = || -> Vec<Value> {
        let queues = json(&conc_bus(&url, &["--json", "queues"]));
        queues.as_array().unwrap().iter().map(|q| q["name"].clone()).collect()
    };
    let before = names();
    for action in ["pause", "resume", "clear"] {
        let output = conc_bus(&url, &["queue", action, "mial"]);
        assert_eq!(output.status.code(), Some(4), "{action}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no queue named `mial`"), "{action}: {stderr}");
    }
    assert_eq!(names(), before, "no queue appeared");
    assert_eq!(before, ["default", "mail", "payments"]);

    // Pausing a queue before its first job is asked for explicitly.
    let paused = ok(&conc_bus(&url, &["queue", "pause", "--create", "imports"]));
    assert_eq!(paused, "paused `imports`\n");
    let imports = json(&conc_bus(&url, &["--json", "queue", "show", "imports"]));
    assert_eq!(imports[0]["paused"], true);
    assert_eq!(ok(&conc_bus(&url, &["queue", "resume", "imports"])), "resumed `imports`\n");
}

#[tokio::test]
async fn queues_are_listed_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let now = conc_bus::QueueBackend::now(&backend);
    let jobs: Vec<conc_bus::Pushed> = (0..2_000u32)
        .map(|n| {
            let options = conc_bus::JobOptions::new().queue(format!("q{n:04}"));
            let envelope = conc_bus::Envelope::new(&Charge { order: n }, &options, now).unwrap();
            conc_bus::Pushed::new(envelope, now)
        })
        .collect();
    conc_bus::QueueBackend::push(&backend, jobs).await.unwrap();
    let url = format!("sqlite:{}", path.display());

    let started = std::time::Instant::now();
    let table = ok(&conc_bus(&url, &["queues"]));
    let elapsed = started.elapsed();
    let line = format!("`conc-bus queues` over 2,000 queues (first page of 100): {elapsed:?}");
    std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes()).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 100 + 1, "header, a page, the footer");
    assert!(lines[1].starts_with("q0000"), "{table}");
    assert_eq!(lines[101], "100 of 2000 queues shown; next page: --offset 100");

    let page = json(&conc_bus(&url, &["--json", "queues", "--offset", "1990", "--limit", "50"]));
    let names: Vec<&str> =
        page.as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10);
    assert_eq!((names[0], names[9]), ("q1990", "q1999"));
    assert_eq!(page[0]["ready"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_of_another_process_are_listed_with_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let url = format!("sqlite:{}", path.display());
    assert_eq!(ok(&conc_bus(&url, &["workers"])), "no workers\n");

    let queue = Queue::new(backend.clone());
    for order in 0..3 {
        queue.dispatch(Charge { order }).on_queue("payments").await.unwrap();
    }
    let handlers =
        JobHandlers::new().handle(|_: Charge, _: JobContext| async move { Ok::<(), JobError>(()) });
    let worker = Worker::builder(backend.clone(), handlers)
        .name("charger")
        .queues(["payments"])
        .heartbeat_interval(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    worker.start().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while conc_bus::QueueBackend::workers(&backend)
        .await
        .unwrap()
        .first()
        .is_none_or(|beat| beat.processed < 3)
    {
        assert!(std::time::Instant::now() < deadline, "the beat never showed the jobs");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let listed = json(&conc_bus(&url, &["--json", "workers"]));
    let beat = &listed.as_array().unwrap()[0];
    assert_eq!(beat["name"], "charger");
    assert_eq!(beat["pid"], std::process::id());
    assert_eq!(beat["queues"][0], "payments");
    assert_eq!(beat["processed"], 3);
    assert_eq!(beat["state"], "running");
    assert!(beat["jobs_per_minute"].is_u64(), "{beat}");
    let table = ok(&conc_bus(&url, &["workers"]));
    assert!(table.starts_with("worker"), "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("charger"), "{table}");

    // Its only queue paused: its next beat says so.
    assert_eq!(ok(&conc_bus(&url, &["queue", "pause", "payments"])), "paused `payments`\n");
    while conc_bus::QueueBackend::workers(&backend).await.unwrap()[0].state
        != conc_bus::BeatState::Paused
    {
        assert!(std::time::Instant::now() < deadline, "the beat never said paused");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(json(&conc_bus(&url, &["--json", "workers"]))[0]["state"], "paused");

    worker.stop(std::time::Duration::from_secs(1));
    worker.stopped().await;
    assert_eq!(ok(&conc_bus(&url, &["workers"])), "no workers\n");
}
