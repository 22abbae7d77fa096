//! The `conc-bus` binary against a real redis-server: queues and failed jobs
//! that worker processes left there are listed, shown, retried, paused and
//! cleared, and another client sees what the commands did; batches are
//! listed, shown, cancelled and pruned; an unreachable server is exit code 3.

use std::process::{Command, Output};

use conc_bus::batch::PendingBatch;
use conc_bus::{Job, JobContext, JobError, JobHandlers, Queue, RedisQueue, Worker};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
struct Charge {
    order: u32,
}

impl Job for Charge {
    const NAME: &'static str = "charge";
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_and_failed_jobs_on_redis_are_operated_from_the_command_line() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let url = redis.url();
    let backend = RedisQueue::connect(&url).await.unwrap();
    let queue = Queue::new(backend.clone());
    for order in 0..3 {
        queue.dispatch(Charge { order }).on_queue("payments").max_attempts(1).await.unwrap();
    }
    let handlers = JobHandlers::new().handle(|job: Charge, _: JobContext| async move {
        Err::<(), _>(JobError::retry(format!("card declined for order {}", job.order)))
    });
    Worker::builder(backend.clone(), handlers)
        .queues(["payments"])
        .stop_when_empty(true)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    queue.dispatch(Charge { order: 10 }).on_queue("mail").await.unwrap();
    queue.dispatch(Charge { order: 11 }).on_queue("mail").await.unwrap();

    let queues = json(&conc_bus(&url, &["--json", "queues"]));
    let find = |name: &str| queues.as_array().unwrap().iter().find(|q| q["name"] == name).cloned();
    assert_eq!(find("payments").unwrap()["failed"], 3, "{queues}");
    assert_eq!(find("mail").unwrap()["ready"], 2, "{queues}");

    let failed = json(&conc_bus(&url, &["--json", "failed", "list", "--queue", "payments"]));
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[0]["reason"], "AttemptsExhausted");
    let first = failed[0]["id"].as_str().unwrap().to_owned();
    let shown = ok(&conc_bus(&url, &["failed", "show", &first]));
    assert!(shown.contains("card declined for order"), "{shown}");

    let retried = json(&conc_bus(&url, &["--json", "failed", "retry", &first]));
    assert_eq!(retried["retried"][0], first.as_str());
    assert_eq!(ok(&conc_bus(&url, &["queue", "pause", "mail"])), "paused `mail`\n");
    let mail = json(&conc_bus(&url, &["--json", "queue", "show", "mail"]));
    assert_eq!(mail[0]["paused"], true);
    assert_eq!(ok(&conc_bus(&url, &["queue", "clear", "mail"])), "cleared 2 job(s) from `mail`\n");
    assert_eq!(ok(&conc_bus(&url, &["failed", "flush"])), "deleted 2 failed job(s)\n");

    // Batches on Redis: listed, shown with their members, cancelled (the
    // waiting members deleted), pruned.
    let batch = PendingBatch::new().name("nightly import").add(Charge { order: 20 });
    let batch = batch.add(Charge { order: 21 }).on_queue("imports");
    let id = queue.dispatch_batch(batch).await.unwrap().to_string();
    let listed = json(&conc_bus(&url, &["--json", "batches", "list"]));
    assert_eq!(listed[0]["name"], "nightly import", "{listed}");
    let shown = json(&conc_bus(&url, &["--json", "batches", "show", &id]));
    assert_eq!((shown["state"].as_str(), shown["total"].as_u64()), (Some("pending"), Some(2)));
    assert_eq!(shown["members"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(ok(&conc_bus(&url, &["batches", "cancel", &id])), format!("cancelled batch {id}\n"));
    assert_eq!(queue.size("imports").await.unwrap().total(), 0, "its waiting members are deleted");
    let shown = json(&conc_bus(&url, &["--json", "batches", "show", &id]));
    assert_eq!(
        (shown["state"].as_str(), shown["cancelled"].as_u64()),
        (Some("cancelled"), Some(2))
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pruned = json(&conc_bus(&url, &["--json", "batches", "prune", "--cancelled", "0"]));
    assert_eq!(pruned["deleted"], 1, "{pruned}");
    assert_eq!(ok(&conc_bus(&url, &["batches", "list"])), "no batches\n");

    // Another client of the same server sees what the commands did.
    assert_eq!(queue.size("mail").await.unwrap().total(), 0);
    assert!(queue.size("mail").await.unwrap().paused);
    assert_eq!(queue.size("payments").await.unwrap().ready, 1);
    assert_eq!(queue.failed_count(None).await.unwrap(), 0);
}

#[test]
fn an_unreachable_redis_server_is_exit_code_3() {
    let Some(mut redis) = conc_test_support::require_redis() else { return };
    let url = redis.url();
    redis.kill().unwrap();
    let output = conc_bus(&url, &["queues"]);
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach backend"), "{stderr}");
}

#[test]
fn a_malformed_redis_url_is_exit_code_2() {
    // No server needed: the URL is refused before anything is reached.
    let output = conc_bus("redis://127.0.0.1:notaport/", &["queues"]);
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a Redis URL"), "{stderr}");
}
