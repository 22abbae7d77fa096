//! `conc-bus batches …` against a real SQLite queue file: batches that a
//! worker finished, one with a failed member, and pending ones are listed
//! (filtered by state and name, a page at a time), shown with their members
//! and callbacks, cancelled and pruned; an unknown batch is exit code 4
//! with nothing changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use conc_bus::batch::{BatchId, PendingBatch};
use conc_bus::{Job, JobContext, JobError, JobHandlers, Queue, SqliteQueue, Worker};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
struct Import {
    row: u32,
}

impl Job for Import {
    const NAME: &'static str = "import";
}

#[derive(Serialize, Deserialize)]
struct Notify;

impl Job for Notify {
    const NAME: &'static str = "notify";
}

struct Fixture {
    path: PathBuf,
    done: BatchId,
    failing: BatchId,
    waiting: BatchId,
    doomed: BatchId,
}

/// `import 1` (three members, all succeeded, `then` fired), `import 2` (row
/// 13 failed, failures allowed), and `export` and `doomed` pending on the
/// `slow` queue no worker takes.
async fn file_with_batches(dir: &Path) -> Fixture {
    let path = dir.join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone());
    let rows = |batch: PendingBatch, rows: &[u32]| {
        rows.iter().fold(batch, |batch, row| batch.add(Import { row: *row }))
    };
    let batch = PendingBatch::new().name("import 1").then(Notify).finally(Notify);
    let done = queue.dispatch_batch(rows(batch, &[1, 2, 3])).await.unwrap();
    let batch = PendingBatch::new().name("import 2").allow_failures(true).catch(Notify);
    let failing = queue.dispatch_batch(rows(batch, &[12, 13])).await.unwrap();
    let batch = PendingBatch::new().name("export").on_queue("slow").progress(Notify);
    let waiting = queue.dispatch_batch(rows(batch, &[20, 21])).await.unwrap();
    let batch = PendingBatch::new().name("doomed").on_queue("slow");
    let doomed = queue.dispatch_batch(rows(batch, &[30])).await.unwrap();
    let handlers = JobHandlers::new()
        .handle(|job: Import, _: JobContext| async move {
            if job.row == 13 {
                return Err(JobError::fatal(format!("row {} does not parse", job.row)));
            }
            Ok(())
        })
        .handle(|_: Notify, _: JobContext| async { Ok::<(), JobError>(()) });
    Worker::builder(backend, handlers).stop_when_empty(true).build().unwrap().run().await.unwrap();
    Fixture { path, done, failing, waiting, doomed }
}

fn conc_bus(path: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conc-bus"))
        .arg("--backend")
        .arg(format!("sqlite:{}", path.display()))
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

fn names(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn batches_are_listed_filtered_paged_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let f = file_with_batches(dir.path()).await;

    let table = ok(&conc_bus(&f.path, &["batches", "list"]));
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("id") && header.contains("progress"), "{table}");
    assert!(table.contains("import 1") && table.contains("########## 100%"), "{table}");
    assert!(table.contains("export") && table.contains("..........   0%"), "{table}");

    let all = json(&conc_bus(&f.path, &["--json", "batches", "list"]));
    assert_eq!(names(&all), ["doomed", "export", "import 2", "import 1"], "newest first");
    let pending = json(&conc_bus(&f.path, &["--json", "batches", "list", "--state", "pending"]));
    assert_eq!(names(&pending), ["doomed", "export"]);
    let finished = json(&conc_bus(&f.path, &["--json", "batches", "list", "--state", "finished"]));
    assert_eq!(names(&finished), ["import 2", "import 1"]);
    assert_eq!(finished[0]["failed"], 1);
    assert_eq!(finished[1]["progress"], 100);
    let imports = json(&conc_bus(&f.path, &["--json", "batches", "list", "--name", "import"]));
    assert_eq!(names(&imports), ["import 2", "import 1"]);

    let first = json(&conc_bus(&f.path, &["--json", "batches", "list", "--limit", "2"]));
    assert_eq!(names(&first), ["doomed", "export"]);
    let last = first[1]["id"].as_str().unwrap();
    let next = json(&conc_bus(&f.path, &["--json", "batches", "list", "--before", last]));
    assert_eq!(names(&next), ["import 2", "import 1"]);

    let bad = conc_bus(&f.path, &["batches", "list", "--state", "done"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a batch state"));

    // A batch with a failed member: its outcome, the failed job and callbacks.
    let shown = json(&conc_bus(&f.path, &["--json", "batches", "show", &f.failing.to_string()]));
    assert_eq!((shown["state"].as_str(), shown["total"].as_u64()), (Some("finished"), Some(2)));
    let members = shown["members"].as_array().unwrap();
    let failed: Vec<&Value> = members.iter().filter(|m| m["outcome"] == "Failed").collect();
    assert_eq!(failed.len(), 1, "{shown}");
    assert_eq!(failed[0]["failed"]["name"], "import");
    assert!(failed[0]["failed"]["error"].as_str().unwrap().contains("row 13 does not parse"));
    assert!(members.iter().any(|m| m["outcome"] == "Succeeded" && m["failed"].is_null()));
    assert_eq!(shown["callbacks"][0]["kind"], "Catch");
    assert_eq!(shown["callbacks"][0]["dispatched"], 1);

    let text = ok(&conc_bus(&f.path, &["batches", "show", &f.done.to_string()]));
    assert!(text.contains("state      finished"), "{text}");
    assert!(text.contains("3 total: 0 pending, 3 succeeded"), "{text}");
    let callbacks: Vec<&str> =
        text.lines().filter(|l| l.starts_with("then") || l.starts_with("finally")).collect();
    assert_eq!(callbacks.len(), 2, "{text}");
    assert!(callbacks.iter().all(|l| l.contains("notify") && l.contains("yes")), "{text}");

    let text =
        ok(&conc_bus(&f.path, &["batches", "show", &f.waiting.to_string(), "--members", "1"]));
    assert!(text.contains("progress   ....................   0%"), "{text}");
    assert!(text.contains("progress  notify  no"), "{text}");
    assert!(text.contains("members 1..1 of 2"), "{text}");

    let unknown = BatchId::new().to_string();
    let missing = conc_bus(&f.path, &["batches", "show", &unknown]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(&format!("no batch with id {unknown}"))
    );
}

#[tokio::test]
async fn batches_are_cancelled_and_pruned_by_kind_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let f = file_with_batches(dir.path()).await;
    let id = f.doomed.to_string();

    let unknown = BatchId::new().to_string();
    let missing = conc_bus(&f.path, &["batches", "cancel", &unknown]);
    assert_eq!(missing.status.code(), Some(4));
    let size = |path: &Path| {
        let backend = SqliteQueue::open(path).unwrap();
        let queue = Queue::new(backend);
        async move { queue.size("slow").await.unwrap().ready }
    };
    assert_eq!(size(&f.path).await, 3, "the refused cancel changed nothing");

    assert_eq!(
        ok(&conc_bus(&f.path, &["batches", "cancel", &id])),
        format!("cancelled batch {id}\n")
    );
    assert_eq!(size(&f.path).await, 2, "its waiting member is deleted");
    let again = json(&conc_bus(&f.path, &["--json", "batches", "cancel", &id]));
    assert_eq!(again["cancelled"], false);
    let shown = json(&conc_bus(&f.path, &["--json", "batches", "show", &id]));
    assert_eq!(
        (shown["state"].as_str(), shown["cancelled"].as_u64()),
        (Some("cancelled"), Some(1))
    );
    assert_eq!(shown["members"][0]["outcome"], "Cancelled");
    let cancelled =
        json(&conc_bus(&f.path, &["--json", "batches", "list", "--state", "cancelled"]));
    assert_eq!(names(&cancelled), ["doomed"]);

    // Finished batches by their end; unfinished and cancelled ones only when asked.
    let pruned = json(&conc_bus(&f.path, &["--json", "batches", "prune", "--hours", "0"]));
    assert_eq!(pruned["deleted"], 2);
    let left = json(&conc_bus(&f.path, &["--json", "batches", "list"]));
    assert_eq!(names(&left), ["doomed", "export"]);
    let text = ok(&conc_bus(&f.path, &["batches", "prune", "--hours", "0", "--cancelled", "0"]));
    assert_eq!(text, "deleted 1 batch(es)\n");
    let pruned = json(&conc_bus(&f.path, &["--json", "batches", "prune", "--unfinished", "0"]));
    assert_eq!(pruned["deleted"], 1);
    assert_eq!(ok(&conc_bus(&f.path, &["batches", "list"])), "no batches\n");
    let _ = f.waiting;
}
