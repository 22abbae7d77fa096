//! Worker heartbeats on the memory backend, on tokio's paused clock: a
//! running worker is listed with its counts and throughput, a worker that
//! stops gracefully leaves the list at once, one that vanishes without
//! stopping leaves it after its missed-beat window.

use std::time::Duration;

use conc_bus::{
    BeatState, Job, JobContext, JobError, JobHandlers, MISSED_BEATS, MemoryQueue, Queue,
    QueueBackend, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    fail: bool,
}

impl Job for Task {
    const NAME: &'static str = "task";
}

fn backend() -> MemoryQueue {
    MemoryQueue::builder().clock(conc_bus::testing::PausedTime).build().unwrap()
}

fn handlers() -> JobHandlers {
    JobHandlers::new().handle(|job: Task, _: JobContext| async move {
        if job.fail { Err(JobError::fatal("boom")) } else { Ok(()) }
    })
}

fn worker(backend: &MemoryQueue) -> Worker<MemoryQueue> {
    Worker::builder(backend.clone(), handlers())
        .name("mailer")
        .queues(["mail", "default"])
        .concurrency(3)
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_running_worker_is_listed_with_its_counts_and_leaves_at_once_when_stopped() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let worker = worker(&backend);
    worker.start().unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    queue.push_bulk(vec![Task { fail: false }; 4]).await.unwrap();
    queue.push(Task { fail: true }).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let listed = backend.workers().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let beat = &listed[0];
    assert_eq!(beat.id, worker.id());
    assert_eq!((beat.name.as_str(), beat.concurrency), ("mailer", 3));
    assert_eq!(beat.queues, ["mail", "default"]);
    assert_eq!(beat.pid, std::process::id());
    assert!(!beat.host.is_empty());
    assert_eq!(beat.state, BeatState::Running);
    assert_eq!((beat.processed, beat.failed, beat.busy), (4, 1, 0));
    assert_eq!(beat.interval_ms, 1_000);
    assert!(beat.beat_at > beat.started_at, "{beat:?}");
    // Four jobs between two beats a second apart, or none since: a rate
    // from one beat, whichever pair it carries.
    let rate = beat.jobs_per_minute().expect("not a first beat").round() as u64;
    assert!(matches!(rate, 0 | 240), "{rate}");

    worker.stop(Duration::from_secs(1));
    worker.stopped().await;
    assert!(backend.workers().await.unwrap().is_empty(), "removed at once");
}

#[tokio::test(start_paused = true)]
async fn a_vanished_worker_is_listed_until_it_missed_three_beats() {
    let backend = backend();
    let worker = worker(&backend);
    let running = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.run().await })
    };
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let last = backend.workers().await.unwrap()[0].beat_at;
    // The worker's task dies without stopping: no goodbye, no more beats.
    running.abort();
    let _ = running.await;
    let now = backend.now();
    let window = 1_000 * MISSED_BEATS;
    tokio::time::sleep(Duration::from_millis(last + window - now)).await;
    assert_eq!(backend.workers().await.unwrap().len(), 1, "at the edge of its window");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(backend.workers().await.unwrap().is_empty(), "gone after three missed beats");
}

#[tokio::test(start_paused = true)]
async fn a_stopping_worker_says_so_at_once_and_heartbeats_can_be_turned_off() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let handlers = JobHandlers::new().handle(|_: Task, ctx: JobContext| async move {
        // Runs until the worker's grace is over.
        ctx.cancelled().await;
        Ok::<(), JobError>(())
    });
    let slow = Worker::builder(backend.clone(), handlers)
        .queues(["default"])
        .heartbeat_interval(Duration::from_secs(60))
        .grace(Duration::from_secs(30))
        .build()
        .unwrap();
    queue.push(Task { fail: false }).await.unwrap();
    slow.start().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(backend.workers().await.unwrap()[0].busy, 1);
    slow.stop(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        backend.workers().await.unwrap()[0].state,
        BeatState::Stopping,
        "not a minute later"
    );

    let silent =
        Worker::builder(backend.clone(), JobHandlers::new()).heartbeats(false).build().unwrap();
    silent.start().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids: Vec<String> = backend.workers().await.unwrap().into_iter().map(|b| b.id).collect();
    assert_eq!(ids, [slow.id()]);
}

#[tokio::test(start_paused = true)]
async fn a_worker_whose_queues_are_all_paused_says_so() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    let worker = worker(&backend);
    worker.start().unwrap();
    let state = async || backend.workers().await.unwrap()[0].state;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state().await, BeatState::Running);
    queue.pause("mail").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state().await, BeatState::Running, "`default` is still taken from");
    queue.pause("default").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state().await, BeatState::Paused);
    queue.resume("mail").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state().await, BeatState::Running);
    worker.stop(Duration::ZERO);
    worker.stopped().await;
}

#[test]
fn a_heartbeat_interval_out_of_range_is_refused_by_name() {
    let error = Worker::builder(MemoryQueue::new(), JobHandlers::new())
        .heartbeat_interval(Duration::from_millis(1))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("heartbeat_interval"), "{error}");
}
