//! Job middleware with real workers: rate limits that release instead of
//! failing, overlap locks (in memory, and two workers sharing a SQLite lock
//! file and a SQLite queue), exception throttling, and batch members
//! skipped once their batch is cancelled. On tokio's paused clock, except
//! where SQLite files are shared between workers.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_bus::batch::PendingBatch;
use conc_bus::middleware::{
    RateLimitedLayer, SkipIfBatchCancelledLayer, ThrottlesExceptionsLayer, WithoutOverlappingLayer,
};
use conc_bus::{
    FailReason, FailedQuery, Job, JobContext, JobError, JobHandlers, JobOptions, MemoryQueue,
    Queue, SqliteQueue, Worker, WorkerEvent,
};
use conc_core::metrics::MetricsSource;
use conc_lock::{LockStore, MemoryBackend, SqliteBackend};
use conc_ratelimit::{Keyed, Quota, TokioClock};
use serde::{Deserialize, Serialize};
use support::drain;
use tokio::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    n: u32,
}

impl Job for Task {
    const NAME: &'static str = "task";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(20).backoff([Duration::from_secs(1)])
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Other;

impl Job for Other {
    const NAME: &'static str = "other";
}

static_assertions::assert_impl_all!(conc_bus::middleware::JobRequest: Send);
static_assertions::assert_impl_all!(RateLimitedLayer: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus::middleware::RateLimited<()>: Send, Sync, Clone);
static_assertions::assert_impl_all!(WithoutOverlappingLayer: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus::middleware::WithoutOverlapping<MemoryBackend, ()>: Send, Sync, Clone);
static_assertions::assert_impl_all!(ThrottlesExceptionsLayer: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus::middleware::ThrottlesExceptions<()>: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus::middleware::ThrottlesExceptionsBuilder: Send, Sync);
static_assertions::assert_impl_all!(SkipIfBatchCancelledLayer<MemoryQueue>: Send, Sync, Clone);
static_assertions::assert_impl_all!(conc_bus::middleware::SkipIfBatchCancelled<MemoryQueue, ()>: Send, Sync, Clone);

fn backend() -> MemoryQueue {
    MemoryQueue::builder().clock(conc_bus::testing::PausedTime).build().unwrap()
}

/// The paused time of each call, in whole seconds from `start`.
#[derive(Clone)]
struct Calls {
    start: Instant,
    times: Arc<Mutex<Vec<u64>>>,
}

impl Calls {
    fn new() -> Self {
        Self { start: Instant::now(), times: Arc::default() }
    }
    fn record(&self) {
        self.times.lock().unwrap().push(self.start.elapsed().as_secs());
    }
    fn times(&self) -> Vec<u64> {
        self.times.lock().unwrap().clone()
    }
}

/// How many handlers run at once, and the most seen.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<AtomicU32>,
    most: Arc<AtomicU32>,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn most(&self) -> u32 {
        self.most.load(Ordering::SeqCst)
    }
}

/// A lock store in memory whose times to live follow tokio's paused clock.
fn paused_locks() -> LockStore<MemoryBackend<TokioClock>> {
    LockStore::new(MemoryBackend::builder().clock(TokioClock).build())
}

fn limiter(quota: Quota) -> Arc<Keyed<String, TokioClock>> {
    Arc::new(Keyed::builder(quota).clock(TokioClock).build())
}

#[tokio::test(start_paused = true)]
async fn over_the_limit_jobs_are_released_for_the_wait_not_failed() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.push(Task { n }).await.unwrap();
    }
    queue.push(Other).await.unwrap();
    let calls = Calls::new();
    let seen = calls.clone();
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            seen.record();
            async { Ok::<(), JobError>(()) }
        })
        .handle(|_: Other, _: JobContext| async { Ok(()) })
        // One task every 10 s; `other` is not limited (layer_for).
        .layer_for::<Task, _>(RateLimitedLayer::new(limiter(
            Quota::with_period(Duration::from_secs(10)).unwrap(),
        )));
    let worker = Worker::builder(backend, handlers).concurrency(4).build().unwrap();
    drain(&worker, &queue, &["default"]).await;

    let times = calls.times();
    assert_eq!(times.len(), 3, "each task ran once: {times:?}");
    assert!(times.windows(2).all(|w| w[1] >= w[0] + 10), "one per 10 s: {times:?}");
    let metrics = worker.metrics();
    assert_eq!((metrics.processed, metrics.failed), (4, 0));
    assert!(metrics.released >= 2, "the limited ones were released: {metrics:?}");
    assert!(queue.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rate_limit_releases_do_not_use_up_max_exceptions_but_count_as_attempts() {
    // Laravel's scenario: max_exceptions 2, tries 10; only the two real
    // failures end the job.
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.dispatch(Task { n }).max_attempts(10).max_exceptions(2).await.unwrap();
    }
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(JobError::retry("provider down")) }
        })
        .layer(RateLimitedLayer::new(limiter(Quota::with_period(Duration::from_secs(5)).unwrap())));
    let worker = Worker::builder(backend, handlers).concurrency(3).build().unwrap();
    drain(&worker, &queue, &["default"]).await;

    assert_eq!(runs.load(Ordering::SeqCst), 6, "two runs per job");
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed.len(), 3);
    for job in &failed {
        assert_eq!(job.reason, FailReason::TooManyExceptions);
        assert_eq!(job.envelope.exceptions, 2);
    }
    assert!(
        failed.iter().any(|job| job.attempts > 2),
        "releases count as attempts: {:?}",
        failed.iter().map(|j| j.attempts).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_limited_job_is_dropped_with_dont_release() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.push(Task { n }).await.unwrap();
    }
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), JobError>(()) }
        })
        .layer(
            RateLimitedLayer::new(limiter(Quota::per_hour(1).unwrap()))
                .key(|_| Some("one".into()))
                .dont_release(),
        );
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!((worker.metrics().processed, worker.metrics().released), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn without_overlapping_keeps_the_lock_alive_and_releases_the_others() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.push(Task { n }).await.unwrap();
    }
    let store = paused_locks();
    let flight = InFlight::default();
    let inside = flight.clone();
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            let inside = inside.clone();
            async move {
                inside.enter();
                // Far longer than the lock's time to live: kept alive.
                tokio::time::sleep(Duration::from_secs(20)).await;
                inside.leave();
                Ok::<(), JobError>(())
            }
        })
        .layer(
            WithoutOverlappingLayer::new(store.clone())
                .expire_after(Duration::from_secs(3))
                .release_after(Duration::from_secs(5)),
        );
    let worker = Worker::builder(backend, handlers).concurrency(3).build().unwrap();
    drain(&worker, &queue, &["default"]).await;

    assert_eq!(flight.most(), 1, "never two at once");
    let metrics = worker.metrics();
    assert_eq!((metrics.processed, metrics.failed), (3, 0));
    assert!(metrics.released >= 2, "{metrics:?}");
    assert_eq!(store.owner_of("overlap:task:task").await.unwrap(), None, "released at the end");
}

#[tokio::test(start_paused = true)]
async fn the_overlap_lock_is_released_after_an_error_and_a_panic() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.dispatch(Task { n }).max_attempts(1).await.unwrap();
    }
    let store = paused_locks();
    let handlers = JobHandlers::new()
        .handle(|task: Task, _: JobContext| async move {
            match task.n {
                0 => panic!("boom"),
                1 => Err(JobError::retry("failed")),
                _ => Ok(()),
            }
        })
        .layer(WithoutOverlappingLayer::new(store.clone()).release_after(Duration::from_secs(1)));
    let worker = Worker::builder(backend, handlers).concurrency(1).build().unwrap();
    drain(&worker, &queue, &["default"]).await;

    let metrics = worker.metrics();
    assert_eq!((metrics.processed, metrics.dead), (1, 2));
    assert_eq!(metrics.released, 0, "each job found the lock free: the failed ones released it");
    assert_eq!(store.owner_of("overlap:task:task").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_busy_job_is_dropped_with_dont_release() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let store = paused_locks();
    let held =
        store.lock("overlap:account-1", Duration::from_secs(60)).unwrap().get().await.unwrap();
    assert!(held.is_some());
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), JobError>(()) }
        })
        .layer(
            WithoutOverlappingLayer::new(store.clone())
                .key(|_| Some("account-1".into()))
                .shared()
                .dont_release(),
        );
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(worker.metrics().processed, 1, "dropped: acknowledged without running");
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Export {
    account: u32,
}

impl Job for Export {
    const NAME: &'static str = "export";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(1_000)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Import {
    account: u32,
}

impl Job for Import {
    const NAME: &'static str = "import";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(1_000)
    }
}

/// The account of an export or an import: one key shared by both types.
fn account(request: &conc_bus::middleware::JobRequest) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(&request.envelope().payload).ok()?;
    Some(format!("account:{}", value.get("account")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_sharing_a_sqlite_lock_file_never_overlap_across_job_types() {
    let dir = tempfile::tempdir().unwrap();
    let queue_path = dir.path().join("jobs.db");
    let lock_path = dir.path().join("locks.db");
    let queue = Queue::new(SqliteQueue::open(&queue_path).unwrap());
    queue.push(Export { account: 7 }).await.unwrap();
    queue.push(Import { account: 7 }).await.unwrap();

    let flight = InFlight::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            // Each worker has its own queue handle and its own lock store on
            // the shared files, as two processes would.
            let store = LockStore::new(SqliteBackend::open(&lock_path).unwrap());
            let run = |flight: InFlight, gate: Arc<tokio::sync::Semaphore>| async move {
                flight.enter();
                let _permit = gate.acquire().await.unwrap();
                flight.leave();
                Ok::<(), JobError>(())
            };
            let (f1, g1, f2, g2) = (flight.clone(), gate.clone(), flight.clone(), gate.clone());
            let handlers = JobHandlers::new()
                .handle(move |_: Export, _: JobContext| run(f1.clone(), g1.clone()))
                .handle(move |_: Import, _: JobContext| run(f2.clone(), g2.clone()))
                .layer(
                    WithoutOverlappingLayer::new(store)
                        .key(account)
                        .shared()
                        .release_after(Duration::from_millis(20)),
                );
            let backend = SqliteQueue::open(&queue_path).unwrap();
            Worker::builder(backend, handlers)
                .concurrency(1)
                .poll_interval(Duration::from_millis(10))
                .build()
                .unwrap()
        })
        .collect();
    let mut events: Vec<_> = workers.iter().map(Worker::subscribe).collect();
    for worker in &workers {
        worker.start().unwrap();
    }
    // Wait until one job has found the other holding the account.
    let (mut first, mut second) = (events.remove(0), events.remove(0));
    loop {
        let event = tokio::select! {
            Ok(event) = first.recv() => event,
            Ok(event) = second.recv() => event,
        };
        if matches!(event, WorkerEvent::Released { .. }) {
            break;
        }
    }
    assert_eq!(flight.most(), 1);
    gate.add_permits(2);
    loop {
        let processed: u64 = workers.iter().map(|w| w.metrics().processed).sum();
        if processed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in &workers {
        worker.stop(Duration::ZERO);
        worker.stopped().await;
    }
    assert_eq!(flight.most(), 1, "never both at once");
    let store = LockStore::new(SqliteBackend::open(&lock_path).unwrap());
    assert_eq!(store.owner_of("overlap:account:7").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn throttled_exceptions_release_the_jobs_for_the_cooldown() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..4 {
        queue.dispatch(Task { n }).max_exceptions(20).await.unwrap();
    }
    let calls = Calls::new();
    let seen = calls.clone();
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            seen.record();
            // The provider is down for the first two minutes.
            let down = seen.start.elapsed() < Duration::from_secs(120);
            async move { if down { Err(JobError::retry("provider down")) } else { Ok(()) } }
        })
        .layer(
            ThrottlesExceptionsLayer::builder()
                .max_exceptions(2)
                .cooldown(Duration::from_secs(60))
                .clock(TokioClock)
                .build()
                .unwrap(),
        );
    let worker = Worker::builder(backend, handlers).concurrency(1).build().unwrap();
    drain(&worker, &queue, &["default"]).await;

    let times = calls.times();
    assert_eq!(times.iter().filter(|t| **t < 60).count(), 2, "open after two failures: {times:?}");
    // After each cooldown one probe: at about 60 s (fails), 120 s (succeeds).
    assert!(times.iter().filter(|t| **t < 120).count() <= 3, "{times:?}");
    let metrics = worker.metrics();
    assert_eq!((metrics.processed, metrics.dead), (4, 0), "{metrics:?}");
    assert!(metrics.released > 0);
    assert!(queue.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_member_reserved_before_its_batch_was_cancelled_is_skipped() {
    for with_layer in [true, false] {
        let backend = backend();
        let queue = Queue::new(backend.clone());
        let batch = queue
            .dispatch_batch(PendingBatch::new().add(Task { n: 0 }).add(Task { n: 1 }))
            .await
            .unwrap();
        let runs = Arc::new(AtomicU32::new(0));
        let (counted, canceller) = (Arc::clone(&runs), queue.clone());
        let mut handlers = JobHandlers::new().handle(move |_: Task, _: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            let canceller = canceller.clone();
            // The first member to run cancels the batch; the second is
            // already reserved (prefetched) by then.
            async move {
                canceller.cancel_batch(batch).await?;
                Ok::<(), JobError>(())
            }
        });
        if with_layer {
            handlers = handlers.layer(SkipIfBatchCancelledLayer::new(queue.clone()));
        }
        let worker = Worker::builder(backend, handlers).concurrency(1).prefetch(1).build().unwrap();
        drain(&worker, &queue, &["default"]).await;
        let info = queue.batch(batch).await.unwrap().unwrap();
        if with_layer {
            assert_eq!(runs.load(Ordering::SeqCst), 1, "the second member did not run");
            assert_eq!(info.cancelled, 1, "{info:?}");
        } else {
            assert_eq!(runs.load(Ordering::SeqCst), 2, "without the middleware it runs");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn layers_run_in_the_order_added_outermost_first() {
    use std::task::{Context, Poll};
    use tower::{Layer, Service};

    #[derive(Clone)]
    struct Mark(&'static str, Arc<Mutex<Vec<&'static str>>>);
    #[derive(Clone)]
    struct Marked<S>(S, Mark);
    impl<S> Layer<S> for Mark {
        type Service = Marked<S>;
        fn layer(&self, inner: S) -> Marked<S> {
            Marked(inner, self.clone())
        }
    }
    impl<S> Service<conc_bus::middleware::JobRequest> for Marked<S>
    where
        S: Service<conc_bus::middleware::JobRequest, Response = (), Error = JobError>,
        S::Future: Send + 'static,
    {
        type Response = ();
        type Error = JobError;
        type Future = S::Future;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, request: conc_bus::middleware::JobRequest) -> S::Future {
            self.1.1.lock().unwrap().push(self.1.0);
            self.0.call(request)
        }
    }

    let backend = backend();
    let queue = Queue::new(backend.clone());
    queue.push(Task { n: 1 }).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let handler_order = Arc::clone(&order);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            handler_order.lock().unwrap().push("handler");
            async { Ok::<(), JobError>(()) }
        })
        .layer(Mark("outer", Arc::clone(&order)))
        .layer_for::<Other, _>(Mark("not-for-task", Arc::clone(&order)))
        .layer(Mark("inner", Arc::clone(&order)));
    let worker = Worker::builder(backend, handlers).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    assert_eq!(*order.lock().unwrap(), ["outer", "inner", "handler"]);
}

/// On real time: a worker on a SQLite file waits for the file between
/// rounds, and tokio's paused clock would not move while it does. The limit
/// is short; only its lower bound (the limiter's guarantee) is checked.
#[tokio::test]
async fn rate_limited_jobs_in_a_sqlite_file_are_released_and_all_run() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    let queue = Queue::new(backend.clone());
    for n in 0..3 {
        queue.dispatch(Task { n }).max_exceptions(1).await.unwrap();
    }
    let started = std::time::Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&times);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            seen.lock().unwrap().push(started.elapsed());
            async { Ok::<(), JobError>(()) }
        })
        .layer(RateLimitedLayer::new(limiter(
            Quota::with_period(Duration::from_millis(100)).unwrap(),
        )));
    let worker = Worker::builder(backend, handlers)
        .concurrency(3)
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    worker.start().unwrap();
    while worker.metrics().processed < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.stop(Duration::ZERO);
    worker.stopped().await;

    let mut times = times.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 3, "{times:?}");
    // Three admissions span at least 200 ms on the limiter's clock (the
    // margin covers the moment between an admission and its handler's start).
    assert!(times[2].saturating_sub(times[0]) >= Duration::from_millis(150), "{times:?}");
    let metrics = worker.metrics();
    assert_eq!(metrics.failed, 0);
    assert!(metrics.released >= 2, "{metrics:?}");
    assert!(queue.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failures_that_when_does_not_pick_never_open_the_breaker() {
    let backend = backend();
    let queue = Queue::new(backend.clone());
    for n in 0..4 {
        queue.dispatch(Task { n }).max_attempts(2).await.unwrap();
    }
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let handlers = JobHandlers::new()
        .handle(move |_: Task, _: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(JobError::fatal("bad input")) }
        })
        .layer(
            ThrottlesExceptionsLayer::builder()
                .max_exceptions(1)
                .cooldown(Duration::from_secs(3_600))
                .when(JobError::is_retry)
                .clock(TokioClock)
                .build()
                .unwrap(),
        );
    let worker = Worker::builder(backend, handlers).concurrency(1).build().unwrap();
    drain(&worker, &queue, &["default"]).await;
    // Every job ran (and failed for good): the fatal errors did not count.
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!((worker.metrics().dead, worker.metrics().released), (4, 0));
}
