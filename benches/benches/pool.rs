//! `conc-pool`: the async pool against `tokio::spawn` + join and a `JoinSet`
//! limited by a `Semaphore`; the blocking pool against `rayon::spawn` and the
//! `threadpool` crate, on trivial closures and on a skewed CPU-bound
//! workload (1 % of the tasks 1,000 times longer); and the ants-style workload (many tasks each sleeping
//! 10 ms, at a fixed concurrency of 1 000) against a `JoinSet` limited by a
//! `Semaphore(1000)` (the same concurrency) and against one tokio task per
//! job (unlimited), timed and with the peak of live heap bytes printed per
//! side.
//!
//! Every iteration pushes [`TASKS`] trivial tasks through and waits for all of
//! them; the figures are per batch, so divide by [`TASKS`] for per-task cost.
//! All sides get two workers (the bench machine has two cores). The async
//! batches are driven from inside a runtime task, as a server would, so no
//! side pays for spawning from outside the runtime.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use conc_pool::{AsyncPool, BlockingPool, Rejection};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Tasks per measured batch.
const TASKS: usize = 1_000_000;

/// Tracks live heap bytes and their peak, only while [`TRACKING`] is on, so
/// the other groups pay one relaxed load per allocation.
struct PeakTracking;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics that never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACKING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PeakTracking = PeakTracking;

/// Runs `work` once with tracking on; the peak of live bytes above the
/// level at the start. Frees made during the run of memory allocated before
/// it can only lower the count, never raise the peak.
fn peak_bytes(work: impl FnOnce()) -> usize {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    TRACKING.store(true, Ordering::SeqCst);
    work();
    TRACKING.store(false, Ordering::SeqCst);
    PEAK.load(Ordering::Relaxed)
}

/// Workers on every side.
const WORKERS: usize = 2;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// Submit-to-completion of one million trivial futures.
fn async_tasks(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pool/async_1m_tasks");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TASKS as u64));

    let pool = rt.block_on(async { AsyncPool::builder().workers(WORKERS).build().expect("valid") });
    group.bench_function("ours", |b| {
        b.iter(|| {
            let pool = pool.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut handles = Vec::with_capacity(TASKS);
                    for i in 0..TASKS {
                        handles.push(pool.submit(async move { black_box(i) }).await.expect("open"));
                    }
                    for handle in handles {
                        black_box(handle.await.expect("ran"));
                    }
                })
                .await
                .expect("driver");
            });
        });
    });

    group.bench_function("peer/tokio_spawn", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async {
                    let mut handles = Vec::with_capacity(TASKS);
                    for i in 0..TASKS {
                        handles.push(tokio::spawn(async move { black_box(i) }));
                    }
                    for handle in handles {
                        black_box(handle.await.expect("ran"));
                    }
                })
                .await
                .expect("driver");
            });
        });
    });

    group.bench_function("peer/joinset_semaphore", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async {
                    let limit = Arc::new(tokio::sync::Semaphore::new(WORKERS));
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..TASKS {
                        let permit = Arc::clone(&limit).acquire_owned().await.expect("open");
                        set.spawn(async move {
                            let _permit = permit;
                            black_box(i)
                        });
                    }
                    while let Some(done) = set.join_next().await {
                        black_box(done.expect("ran"));
                    }
                })
                .await
                .expect("driver");
            });
        });
    });
    group.finish();
}

/// Counts finished closures and wakes the waiter after the last one.
struct Latch {
    done: AtomicUsize,
    finished: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            done: AtomicUsize::new(0),
            finished: Mutex::new(false),
            cv: Condvar::new(),
        })
    }

    fn count(&self) {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == TASKS {
            *self.finished.lock().expect("latch") = true;
            self.cv.notify_all();
        }
    }

    fn wait(&self) {
        let mut finished = self.finished.lock().expect("latch");
        while !*finished {
            finished = self.cv.wait(finished).expect("latch");
        }
    }
}

/// One million tiny fire-and-forget closures, submitted from one thread.
fn blocking_closures(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/blocking_1m_closures");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TASKS as u64));

    let pool = BlockingPool::builder().workers(WORKERS).build().expect("valid");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for _ in 0..TASKS {
                let latch = Arc::clone(&latch);
                pool.spawn(move || latch.count()).expect("open");
            }
            latch.wait();
        });
    });

    let rayon = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().expect("rayon pool");
    group.bench_function("peer/rayon_spawn", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for _ in 0..TASKS {
                let latch = Arc::clone(&latch);
                rayon.spawn(move || latch.count());
            }
            latch.wait();
        });
    });

    let threadpool = threadpool::ThreadPool::new(WORKERS);
    group.bench_function("peer/threadpool", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for _ in 0..TASKS {
                let latch = Arc::clone(&latch);
                threadpool.execute(move || latch.count());
            }
            latch.wait();
        });
    });
    group.finish();
}

/// Tasks per batch in the skewed workload.
const SKEWED_TASKS: usize = 100_000;

/// Every this many tasks, one is [`SKEW`] times longer (1 %).
const LONG_EVERY: usize = 100;

/// How much longer a long task is than a short one.
const SKEW: u32 = 1_000;

/// A deterministic piece of CPU work of `units` steps (a short task is one
/// step, a few hundred nanoseconds).
fn work(units: u32) {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..units * 64 {
        x = black_box(x.rotate_left(5) ^ x.wrapping_mul(0x2545_F491_4F6C_DD1D));
    }
    black_box(x);
}

/// Counts finished skewed tasks and wakes the waiter after the last one.
fn skewed_latch_count(latch: &Latch) {
    if latch.done.fetch_add(1, Ordering::Relaxed) + 1 == SKEWED_TASKS {
        *latch.finished.lock().expect("latch") = true;
        latch.cv.notify_all();
    }
}

/// The units of task `i`: 1 % of the tasks are [`SKEW`] times longer, spread
/// evenly through the batch.
fn skewed_units(i: usize) -> u32 {
    if i % LONG_EVERY == LONG_EVERY / 2 { SKEW } else { 1 }
}

/// A skewed workload: 100,000 CPU-bound closures from one thread, 1 % of
/// them 1,000 times longer than the rest, so a pool that parks work behind a
/// long task (instead of letting an idle worker take it) finishes late.
fn skewed_closures(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/skewed_blocking");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SKEWED_TASKS as u64));

    let pool = BlockingPool::builder().workers(WORKERS).build().expect("valid");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for i in 0..SKEWED_TASKS {
                let latch = Arc::clone(&latch);
                let units = skewed_units(i);
                pool.spawn(move || {
                    work(units);
                    skewed_latch_count(&latch);
                })
                .expect("open");
            }
            latch.wait();
        });
    });

    let rayon = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().expect("rayon pool");
    group.bench_function("peer/rayon_spawn", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for i in 0..SKEWED_TASKS {
                let latch = Arc::clone(&latch);
                let units = skewed_units(i);
                rayon.spawn(move || {
                    work(units);
                    skewed_latch_count(&latch);
                });
            }
            latch.wait();
        });
    });

    let threadpool = threadpool::ThreadPool::new(WORKERS);
    group.bench_function("peer/threadpool", |b| {
        b.iter(|| {
            let latch = Latch::new();
            for i in 0..SKEWED_TASKS {
                let latch = Arc::clone(&latch);
                let units = skewed_units(i);
                threadpool.execute(move || {
                    work(units);
                    skewed_latch_count(&latch);
                });
            }
            latch.wait();
        });
    });
    group.finish();
}

/// Tasks in the ants-style workload: 100k rather than ants' 1M, so a
/// `--quick` run stays short (at 1 000 at a time, 100 rounds of 10 ms).
const SLEEP_TASKS: usize = 100_000;

/// The fixed concurrency of the ants-style workload.
const SLEEP_CONCURRENCY: usize = 1_000;

/// How long each task of the ants-style workload sleeps.
const SLEEP: Duration = Duration::from_millis(10);

/// Waits for [`SLEEP_TASKS`] completions on the runtime.
struct AsyncLatch {
    left: AtomicUsize,
    done: tokio::sync::Notify,
}

impl AsyncLatch {
    fn new() -> Arc<Self> {
        Arc::new(Self { left: AtomicUsize::new(SLEEP_TASKS), done: tokio::sync::Notify::new() })
    }

    fn count(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    async fn wait(&self) {
        while self.left.load(Ordering::Acquire) != 0 {
            self.done.notified().await;
        }
    }
}

/// One batch on the pool: every task submitted fire-and-forget up front.
async fn sleepers_on_pool(pool: &AsyncPool) {
    let latch = AsyncLatch::new();
    for _ in 0..SLEEP_TASKS {
        let latch = Arc::clone(&latch);
        pool.spawn(async move {
            tokio::time::sleep(SLEEP).await;
            latch.count();
        })
        .await
        .expect("open");
    }
    latch.wait().await;
}

/// One batch as one tokio task per job.
async fn sleepers_on_tokio() {
    let latch = AsyncLatch::new();
    for _ in 0..SLEEP_TASKS {
        let latch = Arc::clone(&latch);
        drop(tokio::spawn(async move {
            tokio::time::sleep(SLEEP).await;
            latch.count();
        }));
    }
    latch.wait().await;
}

/// One batch as a `JoinSet` whose spawns wait for one of
/// [`SLEEP_CONCURRENCY`] semaphore permits: the same concurrency as ours.
async fn sleepers_on_joinset() {
    let limit = Arc::new(tokio::sync::Semaphore::new(SLEEP_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SLEEP_TASKS {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("open");
        set.spawn(async move {
            tokio::time::sleep(SLEEP).await;
            drop(permit);
        });
        // Reap finished tasks as we go, as a long-running producer must.
        while let Some(done) = set.try_join_next() {
            done.expect("ran");
        }
    }
    while let Some(done) = set.join_next().await {
        done.expect("ran");
    }
}

/// The ants-style workload: [`SLEEP_TASKS`] tasks each sleeping 10 ms, ours at
/// [`SLEEP_CONCURRENCY`] workers with a queue of as many (submission waits
/// for room, as ants' `Submit` does) against a `JoinSet` + `Semaphore` at the
/// same concurrency and against one tokio task per job (no limit). Prints
/// the peak of live heap bytes of one batch per side before timing.
#[allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "the bench prints its memory figures; byte counts are far below 2^52"
)]
fn sleeping_tasks(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(async {
        // ants' model: a submitter blocks while the pool is full, so at most
        // the workers' tasks plus a bounded queue are alive at once.
        AsyncPool::builder()
            .workers(SLEEP_CONCURRENCY)
            .queue_capacity(SLEEP_CONCURRENCY)
            .rejection(Rejection::Block(Duration::from_secs(60)))
            .build()
            .expect("valid")
    });
    // Let the workers start before measuring.
    rt.block_on(sleepers_on_pool(&pool));
    let ours = peak_bytes(|| rt.block_on(sleepers_on_pool(&pool)));
    for (peer, bytes) in [
        ("joinset_semaphore", peak_bytes(|| rt.block_on(sleepers_on_joinset()))),
        ("tokio_spawn", peak_bytes(|| rt.block_on(sleepers_on_tokio()))),
    ] {
        println!(
            "pool/sleep_10ms_100k: peak live heap ours {ours} B ({} B/task), \
             peer/{peer} {bytes} B ({} B/task), ratio ours/peer {:.2}",
            ours / SLEEP_TASKS,
            bytes / SLEEP_TASKS,
            ours as f64 / bytes as f64,
        );
    }

    let mut group = c.benchmark_group("pool/sleep_10ms_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SLEEP_TASKS as u64));
    group.bench_function("ours", |b| b.iter(|| rt.block_on(sleepers_on_pool(&pool))));
    group.bench_function("peer/joinset_semaphore", |b| {
        b.iter(|| rt.block_on(sleepers_on_joinset()));
    });
    group.bench_function("peer/tokio_spawn", |b| b.iter(|| rt.block_on(sleepers_on_tokio())));
    group.finish();
}

criterion_group!(benches, async_tasks, blocking_closures, skewed_closures, sleeping_tasks);
criterion_main!(benches);
