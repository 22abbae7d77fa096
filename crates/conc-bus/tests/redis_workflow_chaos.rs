//! Batch callbacks on a real `redis-server` under faults, with real workers
//! on real time (the seeded simulation harness drives the memory queue on
//! tokio's paused clock, so Redis gets its own chaos run): workers killed
//! while their handlers run (every call of theirs fails from then on, as
//! for a process that died), acknowledgements applied but reported lost,
//! and lease renewals dropped so leases expire under running handlers and
//! members run twice. `then` and `finally` are dispatched once, `progress`
//! once per member, `catch` once for a batch with a member that fails for
//! good, and every member is counted once. Each callback's runs are
//! counted, by attempt: a callback may run again after a fault (a new
//! lease, a new attempt), never twice as the same attempt (which a
//! callback stored twice, or one lease handed out twice, would show).
//! Under the same faults a batch whose member fails without
//! `allow_failures`, and one cancelled while its members run, both swept a
//! few members per script call, fire `catch` and `finally` exactly once.
//!
//! Skips when `redis-server` is missing, unless `CONC_REQUIRE_SERVICES=1`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::batch::{BatchId, BatchInfo, PendingBatch};
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

/// The runs of each callback, by kind then job id: the attempt of each run.
type Seen = Arc<Mutex<BTreeMap<String, BTreeMap<JobId, Vec<u32>>>>>;

/// The member that fails for good.
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
                let mut seen = seen.lock().unwrap();
                seen.entry(kind).or_default().entry(ctx.id()).or_default().push(ctx.attempt());
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

/// Three faulty workers on one backend, one of which is killed mid-job
/// every fifth round (for the first sixty) and replaced.
struct Crew {
    backend: RedisQueue,
    queue: Queue<RedisQueue>,
    seen: Seen,
    injected: Arc<AtomicU64>,
    workers: Vec<(Worker<Faulty>, Faulty)>,
    seed: u64,
    draws: u64,
}

impl Crew {
    async fn new(url: String, seed: u64, sweep_chunk: usize) -> Self {
        let backend = RedisQueue::builder(url)
            .key_prefix(format!("chaos-{seed}:"))
            .sweep_chunk(sweep_chunk)
            .connect()
            .await
            .unwrap();
        let queue = Queue::new(backend.clone());
        let mut crew = Self {
            backend,
            queue,
            seen: Arc::default(),
            injected: Arc::default(),
            workers: Vec::new(),
            seed,
            draws: 0,
        };
        for _ in 0..3 {
            crew.hire();
        }
        crew
    }

    fn hire(&mut self) {
        self.draws += 1;
        let seed = self.seed * 1_000 + self.draws;
        let faulty = Faulty::new(self.backend.clone(), seed, Arc::clone(&self.injected));
        let w = worker(faulty.clone(), &self.seen);
        w.start().unwrap();
        self.workers.push((w, faulty));
    }

    /// One round: a tenth of a second, then every fifth round a worker dies.
    async fn round(&mut self, rounds: usize) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if rounds.is_multiple_of(5) && rounds < 60 {
            let (dead, gate) = self.workers.remove((rounds / 5) % self.workers.len());
            gate.dead.store(true, Ordering::Relaxed);
            dead.stop(Duration::ZERO);
            self.injected.fetch_add(1, Ordering::Relaxed);
            self.hire();
        }
    }

    /// Rounds until batch `id` is finished, `callbacks(info)` distinct
    /// callbacks ran and the queue is empty; the batch as it ended.
    async fn finish(&mut self, id: BatchId, callbacks: impl Fn(&BatchInfo) -> usize) -> BatchInfo {
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 600, "seed {}: the batch did not finish", self.seed);
            self.round(rounds).await;
            let info = self.queue.batch(id).await.unwrap().unwrap();
            let ran = self.seen.lock().unwrap().values().map(BTreeMap::len).sum::<usize>();
            if info.is_finished()
                && ran >= callbacks(&info)
                && self.queue.size("default").await.unwrap().total() == 0
            {
                break;
            }
        }
        for (w, _) in &self.workers {
            w.stop(Duration::ZERO);
        }
        assert!(self.injected.load(Ordering::Relaxed) > 0, "seed {}: faults fired", self.seed);
        self.queue.batch(id).await.unwrap().unwrap()
    }

    /// How many callbacks of `kind` were dispatched (distinct jobs that
    /// ran); checks that none ran twice as the same attempt.
    fn count(&self, kind: TriggerKind) -> usize {
        let seen = self.seen.lock().unwrap();
        let Some(runs) = seen.get(&format!("{kind:?}")) else { return 0 };
        for (job, attempts) in runs {
            let mut distinct = attempts.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                attempts.len(),
                "seed {}: {kind:?} callback {job} ran twice as one attempt: {attempts:?}",
                self.seed
            );
        }
        runs.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_callbacks_fire_exactly_once_on_redis_under_faults() {
    const MEMBERS: u32 = 12;
    let Some(redis) = conc_test_support::require_redis() else { return };
    for seed in 1..=3_u64 {
        let mut crew = Crew::new(redis.url(), seed, 1_000).await;
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
        let id = crew.queue.dispatch_batch(batch).await.unwrap();
        let total = u64::from(MEMBERS) + 1 + u64::from(broken);
        let failed = u64::from(broken);
        let info = crew.finish(id, |_| total as usize + 2).await;
        assert_eq!(
            (info.total, info.succeeded, info.failed, info.cancelled, info.pending),
            (total, total - failed, failed, 0, 0),
            "seed {seed}: every member counted once"
        );
        assert_eq!(crew.count(TriggerKind::Then), usize::from(!broken), "seed {seed}");
        assert_eq!(crew.count(TriggerKind::Finally), 1, "seed {seed}");
        assert_eq!(crew.count(TriggerKind::Progress), total as usize, "seed {seed}");
        assert_eq!(crew.count(TriggerKind::Catch), usize::from(broken), "seed {seed}");
    }
    // 14 runs per seed (12 members, a chain of two) and the broken one
    // without a fault: the faults made members run again, and each still
    // counted once.
    let runs = MEMBER_RUNS.load(Ordering::Relaxed);
    assert!(runs > 14 * 3 + 1, "some member ran twice ({runs} runs)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_and_a_cancel_under_faults_fire_catch_and_finally_once() {
    const MEMBERS: u32 = 30;
    let Some(redis) = conc_test_support::require_redis() else { return };
    for seed in 11..=12_u64 {
        // Four members per sweep call: the sweeps take several calls, made
        // by the cancelling caller and the faulty workers' reservations.
        let mut crew = Crew::new(redis.url(), seed, 4).await;
        let cancel = seed == 12;
        let mut batch =
            PendingBatch::new().then(Callback).catch(Callback).finally(Callback).progress(Callback);
        for n in 0..MEMBERS {
            batch = batch.add(Member { n });
            // Seed 11: a member among the first fails without
            // `allow_failures`, cancelling the batch while others run.
            if n == 2 && !cancel {
                batch = batch.add(Member { n: BROKEN });
            }
        }
        let id = crew.queue.dispatch_batch(batch).await.unwrap();
        let total = u64::from(MEMBERS) + u64::from(!cancel);
        if cancel {
            // Cancelled while the first members run.
            for rounds in 1..=8 {
                crew.round(rounds).await;
            }
            assert!(crew.queue.cancel_batch(id).await.unwrap(), "seed {seed}: still running");
        }
        // Progress for each member that ran to an outcome, then `catch`
        // (for the failure) and `finally`.
        let expected =
            |info: &BatchInfo| (info.succeeded + info.failed) as usize + usize::from(!cancel) + 1;
        let info = crew.finish(id, expected).await;
        assert!(info.is_cancelled(), "seed {seed}");
        assert_eq!(
            (info.total, info.failed, info.pending),
            (total, u64::from(!cancel), 0),
            "seed {seed}"
        );
        assert_eq!(info.succeeded + info.failed + info.cancelled, total, "seed {seed}");
        assert!(info.cancelled > 0, "seed {seed}: waiting members were cancelled");
        assert_eq!(crew.count(TriggerKind::Then), 0, "seed {seed}");
        assert_eq!(crew.count(TriggerKind::Catch), usize::from(!cancel), "seed {seed}");
        assert_eq!(crew.count(TriggerKind::Finally), 1, "seed {seed}");
        assert_eq!(
            crew.count(TriggerKind::Progress) as u64,
            info.succeeded + info.failed,
            "seed {seed}: progress once per member that ran to an outcome"
        );
    }
}
