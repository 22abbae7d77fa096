//! `conc-bus`.
//!
//! - `bus/dispatch`: one command through the bus with no layers, against
//!   calling its handler directly (the bus's own cost: the handler lookup,
//!   the hooks, the boxed future).
//! - `bus/dispatch_3_layers`: the same through three tower layers (two
//!   identity request maps and a timeout), against the same three layers
//!   around the handler in a plain `tower::ServiceBuilder` stack.
//! - `bus/memory_push_run_ack`: jobs pushed onto the memory queue, then run
//!   by a worker (no-op handler, concurrency 64, prefetch 64, a 2-thread
//!   runtime) until all are acknowledged, against apalis's in-memory storage
//!   and worker (`parallelize(tokio::spawn)`) doing the same from push to
//!   done. Ours leases each job (token, attempt count, renewal) and
//!   serializes it as JSON; apalis's storage is a channel of values.
//!
//! - `bus/memory_push_run_ack_middleware`: the same cycle with three no-op
//!   job middleware layers (`ours/3_layers`) against none (`peer/no_layers`):
//!   what the middleware stack costs per attempt (the boxed stack built per
//!   attempt, one boxed future per layer).
//! - `bus/seal_open`: sealing and then opening a job of 1 KiB of JSON with
//!   XChaCha20-Poly1305 (`encryption::Keyring`), against serializing and
//!   parsing the same job (`peer/json_round_trip`), the work every job does
//!   anyway.
//!
//! - `bus/enqueue`: one push of one job, on the memory queue and on the
//!   SQLite queue (default durability: each push is a flushed commit); the run
//!   also prints the p50 and p99 of 10,000 single pushes for each.
//!
//! The SQLite queue's lease cycle (reserve, then acknowledge)
//! against a hand-written rusqlite claim loop on a table of the same shape —
//! `BEGIN IMMEDIATE; UPDATE … RETURNING; COMMIT`, then `BEGIN IMMEDIATE;
//! DELETE … WHERE id AND token; COMMIT` — the floor any SQLite queue sits on.
//!
//! - `bus/sqlite_one`: one job per reservation and one per acknowledgement
//!   (two transactions per job).
//! - `bus/sqlite_batched`: 32 jobs per reservation and per acknowledgement
//!   (two transactions per 32 jobs); `ours/worker` is a `Worker` draining
//!   the queue with a no-op handler (concurrency 32, prefetch 32), which
//!   batches on its own.
//!
//! The Redis queue against a `redis-server` the suite starts on loopback
//! (no persistence; skipped with a message when there is no binary), one
//! client process:
//!
//! - `bus/redis_drain`: jobs pushed before the clock starts, then drained.
//!   `ours/worker` is a `Worker` with a no-op handler (concurrency 64,
//!   prefetch 64: up to 128 jobs per reservation script, every finished job
//!   acknowledged in one script per round); `ours/one_at_a_time` reserves
//!   and acknowledges one job per script (two round trips per job). The
//!   floor, `peer/redis_rs_lmove_lrem`, is a redis-rs loop doing `LMOVE`
//!   into a processing list and `LREM` from it per job on one connection;
//!   `peer/apalis_redis` is apalis-redis 1.0's storage (batch size 64) and
//!   worker (`parallelize(tokio::spawn)`).
//! - `bus/redis_push_run_ack`: the same from push to done, with the clock
//!   running from the first push: ours pushes a thousand jobs per script,
//!   the floor does `LPUSH` + `LMOVE` + `LREM` per job, apalis pushes in bulk.
//!
//! In the worker groups both sides push and drain rounds of 4,000 jobs:
//! apalis-redis 1.0 moves every due task to its ready list with one Lua
//! `unpack`, which fails past about 8,000 tasks queued at once.
//!
//! The figures are per job (criterion's throughput is one element per job).
//! Every side runs on a fresh file in WAL mode with `synchronous=NORMAL` for
//! these commits (the queue's default, `Synchronous::Balanced`, flushes only
//! pushes). The jobs each measurement drains are pushed before its clock
//! starts.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

#[path = "bus/redis.rs"]
mod redis_groups;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis_core::backend::TaskSink;
use apalis_core::backend::memory::MemoryStorage;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use apalis_core::worker::ext::parallelize::ParallelizeExt;
use conc_bus::{
    Bus, Command, Job, JobContext, JobError, JobHandlers, MemoryQueue, Queue, QueueBackend,
    ReserveRequest, SqliteQueue, Transition, Worker,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Jobs per reservation and per acknowledgement in the batched group.
const BATCH: usize = 32;

const LEASE: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl Job for Noop {
    const NAME: &'static str = "noop";
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// Pushes `jobs` no-op jobs, a thousand per push.
async fn fill(queue: &Queue<SqliteQueue>, jobs: u64) {
    let mut n = 0;
    while n < jobs {
        let chunk: Vec<Noop> = (n..jobs.min(n + 1_000)).map(|n| Noop { n }).collect();
        n += chunk.len() as u64;
        assert!(queue.push_bulk(chunk).await.is_ok(), "the bench file takes the jobs");
    }
}

/// Reserves and acknowledges `jobs` jobs, `per_call` at a time.
async fn drain(backend: &SqliteQueue, jobs: u64, per_call: usize) {
    let queues = vec!["default".to_owned()];
    let mut left = jobs;
    while left > 0 {
        let want = per_call.min(usize::try_from(left).unwrap_or(usize::MAX));
        let reservation = backend
            .reserve(ReserveRequest::new(&queues, want, LEASE))
            .await
            .expect("the bench file answers");
        assert_eq!(reservation.jobs.len(), want, "the jobs pushed are there");
        let acks = reservation.jobs.into_iter().map(|job| (job.lease, Transition::Ack)).collect();
        let settled = backend.settle(acks).await.expect("the bench file answers");
        black_box(settled);
        left -= want as u64;
    }
}

/// Drains `jobs` jobs with a worker running a no-op handler.
async fn drain_with_worker(backend: &SqliteQueue) {
    let handlers = JobHandlers::new().handle(|job: Noop, _: JobContext| async move {
        black_box(job.n);
        Ok::<(), JobError>(())
    });
    let worker = Worker::builder(backend.clone(), handlers)
        .concurrency(BATCH)
        .prefetch(BATCH)
        .stop_when_empty(true)
        .build()
        .expect("valid settings");
    worker.run().await.expect("started once");
}

/// The hand-written claim loop: a table of the same shape as the queue's
/// (partial index on ready jobs in priority order), claimed with one
/// `UPDATE … RETURNING` and acknowledged with a token-checked `DELETE`.
struct RawQueue {
    connection: Connection,
    /// The claim, its `LIMIT` written out: a bound `LIMIT ?` makes SQLite
    /// recompile the statement at every call.
    claim: String,
}

impl RawQueue {
    fn open(path: &Path, per_call: usize) -> Self {
        let connection = Connection::open(path).expect("a bench file");
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .expect("WAL");
        assert!(mode.eq_ignore_ascii_case("wal"));
        connection.pragma_update(None, "synchronous", "NORMAL").expect("a pragma");
        connection
            .execute_batch(
                "CREATE TABLE jobs (
                    id INTEGER PRIMARY KEY,
                    queue TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    priority INTEGER NOT NULL,
                    run_at INTEGER NOT NULL,
                    locked_until INTEGER NOT NULL DEFAULT 0,
                    token INTEGER NOT NULL DEFAULT 0,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    payload TEXT NOT NULL
                );
                CREATE INDEX jobs_ready ON jobs (queue, priority DESC, run_at, id) WHERE state = 0;",
            )
            .expect("the table");
        let claim = format!(
            "UPDATE jobs SET state = 1, locked_until = ?1, token = token + 1, attempts = attempts + 1
             WHERE id IN (SELECT id FROM jobs WHERE queue = 'default' AND state = 0
                 ORDER BY priority DESC, run_at, id LIMIT {per_call})
             RETURNING id, token, payload"
        );
        Self { connection, claim }
    }

    fn fill(&self, jobs: u64) {
        self.connection.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let mut insert = self
            .connection
            .prepare_cached(
                "INSERT INTO jobs (queue, state, priority, run_at, payload) VALUES ('default', 0, 0, ?1, ?2)",
            )
            .expect("insert");
        for n in 0..jobs {
            let run_at = i64::try_from(n).expect("a small count");
            insert.execute(params![run_at, format!("{{\"n\":{n}}}")]).expect("insert");
        }
        drop(insert);
        self.connection.execute_batch("COMMIT").expect("commit");
    }

    fn drain(&self, jobs: u64, per_call: usize) {
        assert_eq!(jobs % per_call as u64, 0, "whole batches");
        let mut claimed: Vec<(i64, i64, String)> = Vec::with_capacity(per_call);
        let mut left = jobs;
        while left > 0 {
            let want = per_call;
            self.connection
                .prepare_cached("BEGIN IMMEDIATE")
                .expect("begin")
                .execute([])
                .expect("begin");
            {
                let mut claim = self.connection.prepare_cached(&self.claim).expect("claim");
                let mut rows = claim.query([30_000]).expect("claim");
                while let Some(row) = rows.next().expect("a row") {
                    claimed.push((
                        row.get(0).expect("id"),
                        row.get(1).expect("token"),
                        row.get(2).expect("payload"),
                    ));
                }
            }
            self.connection.prepare_cached("COMMIT").expect("commit").execute([]).expect("commit");
            assert_eq!(claimed.len(), want, "the jobs pushed are there");
            self.connection
                .prepare_cached("BEGIN IMMEDIATE")
                .expect("begin")
                .execute([])
                .expect("begin");
            {
                let mut ack = self
                    .connection
                    .prepare_cached("DELETE FROM jobs WHERE id = ?1 AND token = ?2")
                    .expect("ack");
                for (id, token, payload) in claimed.drain(..) {
                    black_box(payload);
                    assert_eq!(ack.execute(params![id, token]).expect("ack"), 1);
                }
            }
            self.connection.prepare_cached("COMMIT").expect("commit").execute([]).expect("commit");
            left -= want as u64;
        }
    }
}

/// The group `bus/sqlite_{name}`: ours and the floor, `per_call` jobs per
/// reservation and per acknowledgement.
fn group(c: &mut Criterion, name: &str, per_call: usize, with_worker: bool) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut group = c.benchmark_group(format!("bus/sqlite_{name}"));
    group.throughput(Throughput::Elements(1));

    let backend = SqliteQueue::open(dir.path().join("ours.db")).expect("a bench file");
    let queue = Queue::new(backend.clone());
    group.bench_function("ours", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                fill(&queue, jobs).await;
                let started = Instant::now();
                drain(&backend, jobs, per_call).await;
                started.elapsed()
            })
        });
    });

    if with_worker {
        let backend = SqliteQueue::open(dir.path().join("worker.db")).expect("a bench file");
        let queue = Queue::new(backend.clone());
        group.bench_function("ours/worker", |b| {
            b.iter_custom(|jobs| {
                rt.block_on(async {
                    fill(&queue, jobs).await;
                    let started = Instant::now();
                    drain_with_worker(&backend).await;
                    started.elapsed()
                })
            });
        });
    }

    let raw = RawQueue::open(&dir.path().join("peer.db"), per_call);
    group.bench_function("peer/rusqlite_claim_loop", |b| {
        b.iter_custom(|iters| {
            // Whole batches only (the claim's limit is fixed), the time
            // scaled back to `iters` jobs.
            let jobs = iters.div_ceil(per_call as u64) * per_call as u64;
            raw.fill(jobs);
            let started = Instant::now();
            raw.drain(jobs, per_call);
            started.elapsed().mul_f64(iters as f64 / jobs as f64)
        });
    });
    group.finish();
}

fn one_at_a_time(c: &mut Criterion) {
    group(c, "one", 1, false);
}

fn batched(c: &mut Criterion) {
    group(c, "batched", BATCH, true);
}

#[derive(Clone)]
struct Add(u64, u64);

impl Command for Add {
    type Output = u64;
    type Error = std::convert::Infallible;
}

async fn add(Add(a, b): Add) -> Result<u64, std::convert::Infallible> {
    Ok(a.wrapping_add(b))
}

fn dispatch(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("bus/dispatch");
    let bus = Bus::builder().handle(add).build();
    group.bench_function("ours", |b| {
        b.iter(|| rt.block_on(async { black_box(bus.dispatch(Add(black_box(1), 2)).await) }));
    });
    group.bench_function("peer/direct_call", |b| {
        b.iter(|| rt.block_on(async { black_box(add(Add(black_box(1), 2)).await) }));
    });
    group.finish();

    let mut group = c.benchmark_group("bus/dispatch_3_layers");
    let timeout = Duration::from_secs(30);
    let bus = Bus::builder()
        .handle(add)
        .layer(tower::util::MapRequestLayer::new(|d: conc_bus::Dispatch| d))
        .layer(tower::util::MapRequestLayer::new(|d: conc_bus::Dispatch| d))
        .layer(tower::timeout::TimeoutLayer::new(timeout))
        .build();
    group.bench_function("ours", |b| {
        b.iter(|| rt.block_on(async { black_box(bus.dispatch(Add(black_box(1), 2)).await) }));
    });
    let stack = ServiceBuilder::new()
        .map_request(|a: Add| a)
        .map_request(|a: Add| a)
        .timeout(timeout)
        .service_fn(add);
    group.bench_function("peer/tower_stack", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut stack = stack.clone();
                let ready = stack.ready().await.expect("always ready");
                black_box(ready.call(Add(black_box(1), 2)).await)
            })
        });
    });
    group.finish();
}

fn multi_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Pushes `jobs` no-op jobs onto a fresh memory queue and runs them to the end.
async fn memory_cycle(jobs: u64) {
    memory_cycle_with(jobs, 0).await;
}

/// The same, with `layers` no-op job middleware layers.
async fn memory_cycle_with(jobs: u64, layers: usize) {
    let backend = MemoryQueue::new();
    let queue = Queue::new(backend.clone());
    let mut n = 0;
    while n < jobs {
        let chunk: Vec<Noop> = (n..jobs.min(n + 1_000)).map(|n| Noop { n }).collect();
        n += chunk.len() as u64;
        assert!(queue.push_bulk(chunk).await.is_ok());
    }
    let mut handlers = JobHandlers::new().handle(|job: Noop, _: JobContext| async move {
        black_box(job.n);
        Ok::<(), JobError>(())
    });
    for _ in 0..layers {
        handlers = handlers.layer(tower::util::MapRequestLayer::new(
            |request: conc_bus::middleware::JobRequest| request,
        ));
    }
    let worker = Worker::builder(backend, handlers)
        .concurrency(64)
        .prefetch(64)
        .stop_when_empty(true)
        .build()
        .expect("valid settings");
    worker.run().await.expect("started once");
}

/// The same with apalis's in-memory storage and worker.
async fn apalis_cycle(jobs: u64) {
    let mut storage = MemoryStorage::<u64>::new();
    let mut n = 0;
    while n < jobs {
        let chunk: Vec<u64> = (n..jobs.min(n + 1_000)).collect();
        n += chunk.len() as u64;
        storage.push_bulk(chunk).await.expect("the channel takes the tasks");
    }
    let done = Arc::new(AtomicU64::new(0));
    let worker = WorkerBuilder::new("bench").backend(storage).parallelize(tokio::spawn).build(
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

fn memory(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let mut group = c.benchmark_group("bus/memory_push_run_ack");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                let started = Instant::now();
                memory_cycle(jobs.max(1)).await;
                started.elapsed()
            })
        });
    });
    group.bench_function("peer/apalis", |b| {
        b.iter_custom(|jobs| {
            rt.block_on(async {
                let started = Instant::now();
                apalis_cycle(jobs.max(1)).await;
                started.elapsed()
            })
        });
    });
    group.finish();
}

fn middleware(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let mut group = c.benchmark_group("bus/memory_push_run_ack_middleware");
    group.throughput(Throughput::Elements(1));
    for (name, layers) in [("ours/3_layers", 3), ("peer/no_layers", 0)] {
        group.bench_function(name, |b| {
            b.iter_custom(|jobs| {
                rt.block_on(async {
                    let started = Instant::now();
                    memory_cycle_with(jobs.max(1), layers).await;
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

#[derive(Serialize, Deserialize)]
struct Secret {
    text: String,
}

impl Job for Secret {
    const NAME: &'static str = "secret";
}

fn seal_open(c: &mut Criterion) {
    let keyring = conc_bus::encryption::Keyring::new("k1", [7; 32]).expect("a valid key id");
    let job = Secret { text: "x".repeat(1_013) };
    let options = conc_bus::JobOptions::new().encrypted(true);
    let envelope = conc_bus::Envelope::new(&job, &options, 0).expect("serializes");
    assert_eq!(envelope.payload.len(), 1_024);
    let mut group = c.benchmark_group("bus/seal_open");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours/1KiB", |b| {
        b.iter(|| {
            let mut sealed = envelope.clone();
            keyring.seal(&mut sealed).expect("seals");
            keyring.open(&mut sealed).expect("opens");
            black_box(sealed);
        });
    });
    group.bench_function("peer/json_round_trip", |b| {
        b.iter(|| {
            let mut copy = envelope.clone();
            copy.payload = serde_json::to_string(&job).expect("serializes");
            let back: Secret = serde_json::from_str(&copy.payload).expect("parses");
            black_box((copy, back));
        });
    });
    group.finish();
}

/// The p50 and p99 of `n` single pushes onto `queue`, in microseconds.
async fn push_latency<B: QueueBackend>(queue: &Queue<B>, n: u64) -> (f64, f64) {
    let mut times = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        let started = Instant::now();
        assert!(queue.push(Noop { n: i }).await.is_ok());
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

#[allow(
    clippy::print_stdout,
    reason = "the suite reports enqueue latency percentiles on the terminal"
)]
fn enqueue(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let memory = Queue::new(MemoryQueue::new());
    let sqlite =
        Queue::new(SqliteQueue::open(dir.path().join("enqueue.db")).expect("a bench file"));
    let mut group = c.benchmark_group("bus/enqueue");
    group.bench_function("ours/memory", |b| {
        b.iter(|| rt.block_on(async { black_box(memory.push(Noop { n: 1 }).await.is_ok()) }));
    });
    group.bench_function("ours/sqlite", |b| {
        b.iter(|| rt.block_on(async { black_box(sqlite.push(Noop { n: 1 }).await.is_ok()) }));
    });
    group.finish();
    let (memory_p50, memory_p99) =
        rt.block_on(push_latency(&Queue::new(MemoryQueue::new()), 10_000));
    let fresh = SqliteQueue::open(dir.path().join("latency.db")).expect("a bench file");
    let (sqlite_p50, sqlite_p99) = rt.block_on(push_latency(&Queue::new(fresh), 10_000));
    println!(
        "bus/enqueue latency over 10,000 single pushes: memory p50 {memory_p50:.2} µs p99 {memory_p99:.2} µs; \
         sqlite p50 {sqlite_p50:.1} µs p99 {sqlite_p99:.1} µs"
    );
}

criterion_group!(
    benches,
    dispatch,
    memory,
    middleware,
    seal_open,
    enqueue,
    one_at_a_time,
    batched,
    redis_groups::redis
);
criterion_main!(benches);
