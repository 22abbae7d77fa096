//! Batch callbacks on a real `redis-server` under faults, with real workers
//! on real time (the seeded simulation harness drives the memory queue on
//! tokio's paused clock, so Redis gets its own chaos run): workers killed
//! while their handlers run (every call of theirs fails from then on, as
//! for a process that died), acknowledgements applied but reported lost,
//! and lease renewals dropped so leases expire under running handlers and
//! members run twice. `then` and `finally` are dispatched once, `progress`
//! once per member, `catch` once for a batch with a member that fails for
//! good, and every member is counted once.
//!
//! Skips when `redis-server` is missing, unless `CONC_REQUIRE_SERVICES=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::batch::PendingBatch;
use conc_bus::chain::Chain;
use conc_bus::job::TriggerKind;
use conc_bus::{
    FailedJob, FailedQuery, FailedStore, Job, JobContext, JobError, JobHandlers, JobId, JobOptions,
    Lease, PushError, Pushed, Queue, QueueBackend, QueueError, QueueSize, RedisQueue, Reservation,
    ReserveRequest, Selection, Settled, Settlement, Transition, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Member {
    n: u32,
}

impl Job for Member {
    const NAME: &'static str = "member";

    fn options() -> JobOptions {
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

/// The faults one worker's calls meet, drawn from a seeded sequence.
#[derive(Debug, Clone)]
struct Faulty {
    inner: RedisQueue,
    /// Set when the worker is killed: every call fails from then on.
    dead: Arc<AtomicBool>,
    rng: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
}

impl Faulty {
    fn new(inner: RedisQueue, seed: u64, faults: Arc<AtomicU64>) -> Self {
        Self { inner, dead: Arc::default(), rng: Arc::new(AtomicU64::new(seed | 1)), faults }
    }

    /// A number in `0..100` from the seeded sequence (xorshift).
    fn roll(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x % 100
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.dead.load(Ordering::Relaxed) {
            return Err(QueueError::Backend("the worker was killed".into()));
        }
        Ok(())
    }
}

impl QueueBackend for Faulty {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        if self.dead.load(Ordering::Relaxed) {
            return Err(PushError::Backend { error: "the worker was killed".into(), jobs });
        }
        self.inner.push(jobs).await
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        self.check()?;
        self.inner.reserve(request).await
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        self.check()?;
        // Renewals dropped, answered as if made: the lease runs out under
        // the running handler.
        let mut kept = Vec::with_capacity(batch.len());
        let mut answers: Vec<Option<Settled>> = Vec::with_capacity(batch.len());
        for (lease, transition) in batch {
            if let Transition::Extend { lease: length } = transition
                && self.roll() < 40
            {
                self.faults.fetch_add(1, Ordering::Relaxed);
                let expires_at = self.inner.now() + length.as_millis() as u64;
                answers.push(Some(Ok(Settlement::Extended { expires_at })));
                continue;
            }
            answers.push(None);
            kept.push((lease, transition));
        }
        let mut settled = self.inner.settle(kept).await?.into_iter();
        let settled: Vec<Settled> = answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| settled.next().expect("one answer each")))
            .collect();
        // An acknowledgement applied, its answer lost on the way back.
        if self.roll() < 10 {
            self.faults.fetch_add(1, Ordering::Relaxed);
            return Err(QueueError::Backend("the answer was lost".into()));
        }
        Ok(settled)
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        self.inner.size(queue).await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<conc_bus::Envelope>, QueueError> {
        self.inner.peek(queue, limit).await
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.inner.clear(queue).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.inner.set_paused(queue, paused).await
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.inner.set_capacity(queue, capacity).await
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.inner.queues().await
    }

    async fn wait(&self, queues: &[String], timeout: Duration) {
        self.inner.wait(queues, timeout).await;
    }

    fn now(&self) -> u64 {
        self.inner.now()
    }
}

impl FailedStore for Faulty {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.inner.failed(query).await
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.inner.failed_job(id).await
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        self.inner.failed_count(queue).await
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.inner.retry_failed(selection).await
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        self.inner.forget_failed(selection).await
    }
}

type Seen = Arc<Mutex<BTreeMap<String, BTreeSet<JobId>>>>;

/// The member that fails for good (in the last seed's batch).
const BROKEN: u32 = 999;

/// How many times members started running, over every seed.
static MEMBER_RUNS: AtomicU64 = AtomicU64::new(0);

fn handlers(seen: &Seen) -> JobHandlers {
    let seen = Arc::clone(seen);
    JobHandlers::new()
        .handle(|job: Member, ctx: JobContext| async move {
            MEMBER_RUNS.fetch_add(1, Ordering::Relaxed);
            if job.n == BROKEN {
                return Err(JobError::fatal("member 999 is broken"));
            }
            tokio::time::sleep(Duration::from_millis(200 + u64::from(job.n % 5) * 300)).await;
            ctx.stop_if_cancelled().map_err(JobError::retry)?;
            Ok::<(), JobError>(())
        })
        .handle(move |_: Callback, ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                let kind = ctx.trigger().map(|t| format!("{:?}", t.kind)).unwrap_or_default();
                seen.lock().unwrap().entry(kind).or_default().insert(ctx.id());
                Ok::<(), JobError>(())
            }
        })
}

fn worker(backend: Faulty, seen: &Seen) -> Worker<Faulty> {
    Worker::builder(backend, handlers(seen))
        .concurrency(3)
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_callbacks_fire_exactly_once_on_redis_under_faults() {
    const MEMBERS: u32 = 12;
    let Some(redis) = conc_test_support::require_redis() else { return };
    for seed in 1..=3_u64 {
        let backend = RedisQueue::builder(redis.url())
            .key_prefix(format!("chaos-{seed}:"))
            .connect()
            .await
            .unwrap();
        let queue = Queue::new(backend.clone());
        let seen: Seen = Arc::default();
        let injected = Arc::new(AtomicU64::new(0));
        let mut batch = PendingBatch::new()
            .then(Callback)
            .finally(Callback)
            .progress(Callback)
            .add_chain(Chain::new(Member { n: 100 }).then(Member { n: 101 }));
        for n in 0..MEMBERS {
            batch = batch.add(Member { n });
        }
        // The last seed's batch has a member that fails for good.
        let broken = seed == 3;
        if broken {
            batch = batch.add(Member { n: BROKEN }).catch(Callback).allow_failures(true);
        }
        let id = queue.dispatch_batch(batch).await.unwrap();
        let mut workers: Vec<(Worker<Faulty>, Faulty)> = Vec::new();
        let mut draws = 0_u64;
        for _ in 0..3 {
            draws += 1;
            let faulty = Faulty::new(backend.clone(), seed * 1_000 + draws, Arc::clone(&injected));
            let w = worker(faulty.clone(), &seen);
            w.start().unwrap();
            workers.push((w, faulty));
        }
        let total = u64::from(MEMBERS) + 1 + u64::from(broken);
        let failed = u64::from(broken);
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 600, "seed {seed}: the batch did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Every fifth round a worker dies mid-job and another starts.
            if rounds % 5 == 0 && rounds < 60 {
                let (dead, gate) = workers.remove((rounds / 5) % workers.len());
                gate.dead.store(true, Ordering::Relaxed);
                dead.stop(Duration::ZERO);
                injected.fetch_add(1, Ordering::Relaxed);
                draws += 1;
                let faulty =
                    Faulty::new(backend.clone(), seed * 1_000 + draws, Arc::clone(&injected));
                let w = worker(faulty.clone(), &seen);
                w.start().unwrap();
                workers.push((w, faulty));
            }
            let info = queue.batch(id).await.unwrap().unwrap();
            let callbacks = seen.lock().unwrap().values().map(BTreeSet::len).sum::<usize>();
            if info.is_finished() && callbacks >= total as usize + 2 {
                let size = queue.size("default").await.unwrap();
                if size.total() == 0 {
                    break;
                }
            }
        }
        for (w, _) in &workers {
            w.stop(Duration::ZERO);
        }
        assert!(injected.load(Ordering::Relaxed) > 0, "seed {seed}: faults fired");
        let info = queue.batch(id).await.unwrap().unwrap();
        assert_eq!(
            (info.total, info.succeeded, info.failed, info.cancelled, info.pending),
            (total, total - failed, failed, 0, 0),
            "seed {seed}: every member counted once"
        );
        let seen = seen.lock().unwrap();
        let count = |kind: TriggerKind| seen.get(&format!("{kind:?}")).map_or(0, BTreeSet::len);
        assert_eq!(count(TriggerKind::Then), usize::from(!broken), "seed {seed}");
        assert_eq!(count(TriggerKind::Finally), 1, "seed {seed}");
        assert_eq!(count(TriggerKind::Progress), total as usize, "seed {seed}");
        assert_eq!(count(TriggerKind::Catch), usize::from(broken), "seed {seed}");
    }
    // 14 runs per seed (12 members, a chain of two) and the broken one
    // without a fault: the faults made members run again, and each still
    // counted once.
    let runs = MEMBER_RUNS.load(Ordering::Relaxed);
    assert!(runs > 14 * 3 + 1, "some member ran twice ({runs} runs)");
}
