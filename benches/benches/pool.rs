//! `conc-pool`: the async pool against `tokio::spawn` + join and a `JoinSet`
//! limited by a `Semaphore`; the blocking pool against `rayon::spawn` and the
//! `threadpool` crate.
//!
//! Every iteration pushes [`TASKS`] trivial tasks through and waits for all of
//! them; the figures are per batch, so divide by [`TASKS`] for per-task cost.
//! All sides get two workers (the bench machine has two cores). The async
//! batches are driven from inside a runtime task, as a server would, so no
//! side pays for spawning from outside the runtime.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use conc_pool::{AsyncPool, BlockingPool};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Tasks per measured batch.
const TASKS: usize = 1_000_000;

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

criterion_group!(benches, async_tasks, blocking_closures);
criterion_main!(benches);
