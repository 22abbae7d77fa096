//! What the crate emits through the `metrics` facade: every `conc.bus.*` name
//! of `conc_core::metrics` is emitted, and nothing else is. (This binary
//! installs a global recorder, so it holds this one test.)

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use conc_bus::{Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
use conc_core::metrics::{ALL, BUS_JOBS_DEAD, BUS_JOBS_PUSHED, BUS_LEASES_LOST};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde::{Deserialize, Serialize};
use support::{Flaky, secs};

#[derive(Serialize, Deserialize)]
struct Step {
    kind: u8,
}

impl Job for Step {
    const NAME: &'static str = "step";
}

#[tokio::test(start_paused = true)]
async fn every_bus_metric_is_emitted_and_nothing_else() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    let backend = MemoryQueue::builder().clock(conc_bus::testing::PausedTime).build().unwrap();
    let queue = Queue::new(backend.clone());
    // processed, failed + retried, dead, released.
    for kind in 0..4 {
        queue.dispatch(Step { kind }).max_attempts(2).await.unwrap();
    }
    let handlers = JobHandlers::new().handle(|job: Step, ctx: JobContext| async move {
        match (job.kind, ctx.attempt()) {
            (0, _) | (1 | 3, 2) => Ok(()),
            (1 | 2, _) => Err(JobError::retry("failed")),
            _ => Err(JobError::release(Duration::from_millis(10))),
        }
    });
    let worker = Worker::builder(backend.clone(), handlers).build().unwrap();
    worker.start().unwrap();
    tokio::time::sleep(secs(30)).await;
    worker.stop(Duration::ZERO);
    worker.stopped().await;

    // leases lost: a worker whose renewals are refused.
    let flaky = Flaky::new(backend.clone());
    queue.dispatch(Step { kind: 0 }).on_queue("slow").await.unwrap();
    let slow = JobHandlers::new().handle(|_: Step, _: JobContext| async {
        tokio::time::sleep(secs(600)).await;
        Ok::<(), JobError>(())
    });
    flaky.refuse_extends(true);
    let stalled =
        Worker::builder(flaky.clone(), slow).queues(["slow"]).concurrency(1).build().unwrap();
    stalled.start().unwrap();
    tokio::time::sleep(secs(31)).await;
    let thief = Worker::builder(
        backend,
        JobHandlers::new().handle(|_: Step, _: JobContext| async { Ok::<(), JobError>(()) }),
    )
    .queues(["slow"])
    .stop_when_empty(true)
    .build()
    .unwrap();
    thief.run().await.unwrap();
    flaky.refuse_extends(false);
    tokio::time::sleep(secs(20)).await;
    stalled.stop(Duration::ZERO);
    stalled.stopped().await;

    // depth and failed-store gauges.
    queue.size("default").await.unwrap();
    queue.failed_count(None).await.unwrap();

    let snapshot = snapshotter.snapshot().into_vec();
    let emitted: BTreeSet<&str> = snapshot.iter().map(|(key, ..)| key.key().name()).collect();
    let declared: BTreeSet<&str> =
    // The scheduler's names (feature `schedule`) are checked by `schedule_metrics.rs`.
        ALL.iter()
            .map(|metric| metric.name)
            .filter(|name| name.starts_with("conc.bus.") && !name.starts_with("conc.bus.schedule."))
            .collect();
    assert_eq!(emitted, declared, "emitted (left) against declared (right)");
    let total = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(total(BUS_JOBS_PUSHED), 5);
    assert_eq!(total(BUS_JOBS_DEAD), 1);
    assert_eq!(total(BUS_LEASES_LOST), 1);
}
