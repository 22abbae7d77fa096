//! The Redis groups of the `bus` suite (see the suite's header).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis_core::backend::TaskSink;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use apalis_core::worker::ext::parallelize::ParallelizeExt;
use apalis_redis::{Config, RedisStorage};
use conc_bus::{
    JobContext, JobError, JobHandlers, Queue, QueueBackend, RedisQueue, ReserveRequest, Transition,
    Worker,
};
use criterion::{Criterion, Throughput};
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

use super::{LEASE, Noop, multi_thread_runtime};

/// Concurrency and prefetch of the worker draining the Redis queue.
const WORKER_SLOTS: usize = 64;

/// The most jobs queued at once in the worker groups: apalis-redis 1.0
/// stores every pushed task as scheduled and moves all due ones to its ready
/// list with one `unpack` in its fetch script, which fails past Lua's stack
/// limit (about 8,000). So both sides push and drain rounds of this many.
const ROUND: u64 = 4_000;

/// Runs `round(n)` over rounds of at most [`ROUND`] jobs, `jobs` in all; the
/// time `round` reports, summed.
async fn in_rounds<F, Fut>(jobs: u64, mut round: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Duration>,
{
    let (mut left, mut total) = (jobs.max(1), Duration::ZERO);
    while left > 0 {
        let n = left.min(ROUND);
        total += round(n).await;
        left -= n;
    }
    total
}

/// Pushes `jobs` no-op jobs, a thousand per push.
async fn fill(queue: &Queue<RedisQueue>, jobs: u64) {
    let mut n = 0;
    while n < jobs {
        let chunk: Vec<Noop> = (n..jobs.min(n + 1_000)).map(|n| Noop { n }).collect();
        n += chunk.len() as u64;
        assert!(queue.push_bulk(chunk).await.is_ok(), "the bench server takes the jobs");
    }
}

/// Drains the queue with a worker running a no-op handler.
async fn drain_with_worker(backend: &RedisQueue) {
    let handlers = JobHandlers::new().handle(|job: Noop, _: JobContext| async move {
        black_box(job.n);
        Ok::<(), JobError>(())
    });
    let worker = Worker::builder(backend.clone(), handlers)
        .concurrency(WORKER_SLOTS)
        .prefetch(WORKER_SLOTS)
        .stop_when_empty(true)
        .build()
        .expect("valid settings");
    worker.run().await.expect("started once");
}

/// Reserves and acknowledges `jobs` jobs one at a time (two scripts per job).
async fn drain_one_at_a_time(backend: &RedisQueue, jobs: u64) {
    let queues = vec!["default".to_owned()];
    for _ in 0..jobs {
        let reservation = backend
            .reserve(ReserveRequest::new(&queues, 1, LEASE))
            .await
            .expect("the bench server answers");
        assert_eq!(reservation.jobs.len(), 1, "the jobs pushed are there");
        let acks = reservation.jobs.into_iter().map(|job| (job.lease, Transition::Ack)).collect();
        black_box(backend.settle(acks).await.expect("the bench server answers"));
    }
}

/// The floor: per job, `LPUSH` onto a list, `LMOVE` it to a processing list
/// and `LREM` it from there, each a round trip on one connection.
async fn raw_cycle(raw: &ConnectionManager, jobs: u64, push: bool) {
    let mut raw = raw.clone();
    if !push {
        let mut pipe = redis::pipe();
        for n in 0..jobs {
            pipe.cmd("LPUSH").arg("raw:ready").arg(format!("{{\"n\":{n}}}")).ignore();
        }
        let () = pipe.query_async(&mut raw).await.expect("the bench server answers");
    }
    for n in 0..jobs {
        if push {
            let _: i64 = redis::cmd("LPUSH")
                .arg("raw:ready")
                .arg(format!("{{\"n\":{n}}}"))
                .query_async(&mut raw)
                .await
                .expect("the bench server answers");
        }
        let job: Option<String> = redis::cmd("LMOVE")
            .arg("raw:ready")
            .arg("raw:processing")
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(&mut raw)
            .await
            .expect("the bench server answers");
        let job = job.expect("the job pushed is there");
        let removed: i64 = redis::cmd("LREM")
            .arg("raw:processing")
            .arg(1)
            .arg(&job)
            .query_async(&mut raw)
            .await
            .expect("the bench server answers");
        assert_eq!(removed, 1);
    }
}

/// Pushes `jobs` jobs to apalis's Redis storage.
async fn apalis_fill(storage: &mut RedisStorage<u64>, jobs: u64) {
    let mut n = 0;
    while n < jobs {
        let chunk: Vec<u64> = (n..jobs.min(n + 1_000)).collect();
        n += chunk.len() as u64;
        storage.push_bulk(chunk).await.expect("the bench server takes the tasks");
    }
}

/// Runs `jobs` tasks from apalis's Redis storage with its worker.
async fn apalis_drain(storage: RedisStorage<u64>, jobs: u64) {
    // apalis refuses a worker name whose last heartbeat is recent.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let name = format!("bench-{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let done = Arc::new(AtomicU64::new(0));
    let worker = WorkerBuilder::new(name).backend(storage).parallelize(tokio::spawn).build(
        move |job: u64, ctx: WorkerContext| {
            let done = Arc::clone(&done);
            async move {
                black_box(job);
                if done.fetch_add(1, Ordering::Relaxed) + 1 == jobs {
                    let _ = ctx.stop();
                }
            }
        },
    );
    worker.run().await.expect("the worker runs");
}

/// apalis's storage on `manager`, fetching `WORKER_SLOTS` tasks at a time.
fn apalis_storage(manager: &ConnectionManager) -> RedisStorage<u64> {
    let config = Config::default().queue("bench").batch_size(WORKER_SLOTS);
    RedisStorage::new(manager.clone()).with_config(config)
}

/// Everything the groups share: a server, our queue, the raw client.
struct Setup {
    rt: Runtime,
    backend: RedisQueue,
    queue: Queue<RedisQueue>,
    raw: ConnectionManager,
}

fn setup(url: &str) -> Setup {
    let rt = multi_thread_runtime();
    let (backend, raw) = rt.block_on(async {
        let backend = RedisQueue::connect(url).await.expect("the bench server");
        let client = redis::Client::open(url).expect("a redis url");
        let raw = ConnectionManager::new(client).await.expect("the bench server");
        (backend, raw)
    });
    let queue = Queue::new(backend.clone());
    Setup { rt, backend, queue, raw }
}

/// `bus/redis_drain` and `bus/redis_push_run_ack`; skipped with a message
/// when there is no `redis-server`.
pub(crate) fn redis(c: &mut Criterion) {
    let server = match conc_test_support::RedisServer::start() {
        Ok(server) => server,
        Err(error) => {
            #[allow(
                clippy::print_stderr,
                reason = "a bench reports a skipped group on the terminal"
            )]
            {
                eprintln!("skipping bus/redis_*: {error}");
            }
            return;
        }
    };
    let Setup { rt, backend, queue, raw } = setup(&server.url());
    let (backend, queue, raw) = (&backend, &queue, &raw);

    let mut group = c.benchmark_group("bus/redis_drain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours/worker", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(in_rounds(jobs, |n| async move {
                fill(queue, n).await;
                let started = Instant::now();
                drain_with_worker(backend).await;
                started.elapsed()
            }))
        });
    });
    group.bench_function("ours/one_at_a_time", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                fill(queue, jobs).await;
                let started = Instant::now();
                drain_one_at_a_time(backend, jobs).await;
                started.elapsed()
            })
        });
    });
    group.bench_function("peer/redis_rs_lmove_lrem", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                let started = Instant::now();
                raw_cycle(raw, jobs, false).await;
                started.elapsed()
            })
        });
    });
    group.bench_function("peer/apalis_redis", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(in_rounds(jobs, |n| async move {
                let mut storage = apalis_storage(raw);
                apalis_fill(&mut storage, n).await;
                let started = Instant::now();
                apalis_drain(storage, n).await;
                started.elapsed()
            }))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("bus/redis_push_run_ack");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours/worker", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(in_rounds(jobs, |n| async move {
                let started = Instant::now();
                fill(queue, n).await;
                drain_with_worker(backend).await;
                started.elapsed()
            }))
        });
    });
    group.bench_function("peer/redis_rs_lpush_lmove_lrem", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                let started = Instant::now();
                raw_cycle(raw, jobs, true).await;
                started.elapsed()
            })
        });
    });
    group.bench_function("peer/apalis_redis", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(in_rounds(jobs, |n| async move {
                let mut storage = apalis_storage(raw);
                let started = Instant::now();
                apalis_fill(&mut storage, n).await;
                apalis_drain(storage, n).await;
                started.elapsed()
            }))
        });
    });
    group.finish();
    drop(rt);
    drop(server);
}
