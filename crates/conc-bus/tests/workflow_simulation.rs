//! Batch callbacks under the seeded chaos harness: workers killed at a
//! handler's await point, acknowledgements dropped or delayed, leases
//! expiring under running handlers. Every callback is dispatched exactly
//! once and every member is counted once, whatever the faults.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::batch::PendingBatch;
use conc_bus::chain::Chain;
use conc_bus::job::TriggerKind;
use conc_bus::testing::Simulation;
use conc_bus::{Job, JobContext, JobError, JobHandlers, JobId, JobOptions};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Member {
    n: u32,
}

impl Job for Member {
    const NAME: &'static str = "member";

    fn options() -> JobOptions {
        // Enough attempts to succeed through every fault of a plan.
        JobOptions::new().max_attempts(100)
    }
}

#[derive(Serialize, Deserialize)]
struct Callback;

impl Job for Callback {
    const NAME: &'static str = "callback";

    fn options() -> JobOptions {
        JobOptions::new().max_attempts(100)
    }
}

type Seen = Arc<Mutex<BTreeMap<String, BTreeSet<JobId>>>>;

fn handlers(seen: &Seen) -> JobHandlers {
    let seen = Arc::clone(seen);
    JobHandlers::new()
        .handle(|job: Member, ctx: JobContext| async move {
            tokio::time::sleep(Duration::from_millis(200 + u64::from(job.n % 7) * 100)).await;
            ctx.stop_if_cancelled().map_err(JobError::retry)?;
            Ok::<(), JobError>(())
        })
        .handle(move |_: Callback, ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                let kind = ctx.trigger().map(|t| format!("{:?}", t.kind)).unwrap_or_default();
                seen.lock().unwrap().entry(kind).or_default().insert(ctx.id());
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<(), JobError>(())
            }
        })
}

#[tokio::test(start_paused = true)]
async fn batch_callbacks_fire_exactly_once_under_seeded_faults() {
    const MEMBERS: u32 = 12;
    for seed in 0..24 {
        let seen: Seen = Arc::default();
        let mut batch = PendingBatch::new()
            .then(Callback)
            .finally(Callback)
            .progress(Callback)
            .add_chain(Chain::new(Member { n: 100 }).then(Member { n: 101 }));
        for n in 0..MEMBERS {
            batch = batch.add(Member { n });
        }
        let report = Simulation::new(handlers(&seen))
            .seed(seed)
            .workers(3)
            .concurrency(2)
            .lease(Duration::from_secs(10))
            .faults(8)
            .batch(batch)
            .run()
            .await
            .unwrap();
        assert!(report.finished, "seed {seed}: {report:?}");
        report.assert_holds();
        assert!(!report.faults.is_empty(), "seed {seed}: faults fired");
        let info = &report.batches[0];
        let total = u64::from(MEMBERS) + 1;
        assert_eq!((info.total, info.succeeded, info.pending), (total, total, 0), "seed {seed}");
        let seen = seen.lock().unwrap();
        let count = |kind: TriggerKind| seen.get(&format!("{kind:?}")).map_or(0, BTreeSet::len);
        assert_eq!(count(TriggerKind::Then), 1, "seed {seed}");
        assert_eq!(count(TriggerKind::Finally), 1, "seed {seed}");
        assert_eq!(count(TriggerKind::Progress), total as usize, "seed {seed}");
        assert_eq!(count(TriggerKind::Catch), 0, "seed {seed}");
    }
}

#[derive(Serialize, Deserialize)]
struct Slow;

impl Job for Slow {
    const NAME: &'static str = "slow";
}

#[derive(Serialize, Deserialize)]
struct Boom;

impl Job for Boom {
    const NAME: &'static str = "boom";
}

#[tokio::test(start_paused = true)]
async fn a_failure_cancels_the_batch_and_its_running_member_is_told_to_stop() {
    use conc_bus::testing::PausedTime;
    use conc_bus::{MemoryQueue, Queue, Worker};

    let backend = MemoryQueue::builder().clock(PausedTime).build().unwrap();
    let queue = Queue::new(backend.clone());
    let stopped: Arc<Mutex<Option<Duration>>> = Arc::default();
    let seen: Seen = Arc::default();
    let told = Arc::clone(&stopped);
    let handlers = handlers(&seen)
        .handle(move |_: Slow, ctx: JobContext| {
            let told = Arc::clone(&told);
            async move {
                let started = tokio::time::Instant::now();
                tokio::select! {
                    () = ctx.cancelled() => {
                        *told.lock().unwrap() = Some(started.elapsed());
                        Err(JobError::retry(conc_bus::Cancelled))
                    }
                    () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(()),
                }
            }
        })
        .handle(|_: Boom, _: JobContext| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<(), JobError>(JobError::fatal("boom"))
        });
    let batch = PendingBatch::new().add(Slow).add(Boom).catch(Callback).finally(Callback);
    let id = queue.dispatch_batch(batch).await.unwrap();
    let worker = Worker::builder(backend, handlers)
        .concurrency(2)
        .lease(Duration::from_secs(30))
        .stop_when_empty(true)
        .build()
        .unwrap();
    worker.run().await.unwrap();
    // Told at the first renewal after the failure (a renewal every 10 s).
    let after = stopped.lock().unwrap().expect("the running member was told to stop");
    assert!(after <= Duration::from_secs(11), "{after:?}");
    let info = queue.batch(id).await.unwrap().unwrap();
    assert_eq!((info.failed, info.cancelled, info.is_finished()), (1, 1, true));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.get("Catch").map(BTreeSet::len), Some(1));
    assert_eq!(seen.get("Finally").map(BTreeSet::len), Some(1));
}
