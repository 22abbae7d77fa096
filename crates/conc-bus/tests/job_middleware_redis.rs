//! Job middleware whose state is in Redis, shared by workers that each have
//! their own connection (as separate processes would): one rate limit for
//! all of them, and one overlap lock per key. Every test starts its own
//! `redis-server` through `conc-test-support` and skips when the binary is
//! missing, unless `CONC_REQUIRE_SERVICES=1`. On real time (the limit is
//! counted on the server's clock); only lower bounds the middleware
//! guarantees are checked.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conc_bus::middleware::{RateLimitedLayer, WithoutOverlappingLayer};
use conc_bus::{Job, JobContext, JobError, JobHandlers, JobOptions, MemoryQueue, Queue, Worker};
use conc_core::metrics::MetricsSource;
use conc_lock::{LockStore, RedisBackend};
use conc_ratelimit::{Quota, RedisLimiter};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sync {
    n: u32,
}

impl Job for Sync {
    const NAME: &'static str = "sync";
    fn options() -> JobOptions {
        JobOptions::new().max_attempts(1_000).max_exceptions(1)
    }
}

async fn run_until_processed(workers: &[Worker<MemoryQueue>], total: u64) {
    for worker in workers {
        worker.start().unwrap();
    }
    while workers.iter().map(|w| w.metrics().processed).sum::<u64>() < total {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in workers {
        worker.stop(Duration::ZERO);
        worker.stopped().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rate_limit_in_redis_holds_across_workers() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = Arc::new(MemoryQueue::new());
    let queue = Queue::from_arc(Arc::clone(&backend));
    for n in 0..4 {
        queue.push(Sync { n }).await.unwrap();
    }
    let started = Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let quota = Quota::with_period(Duration::from_millis(100)).unwrap();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let limiter = RedisLimiter::connect(redis.url()).await.unwrap();
        let seen = Arc::clone(&times);
        let handlers = JobHandlers::new()
            .handle(move |_: Sync, _: JobContext| {
                seen.lock().unwrap().push(started.elapsed());
                async { Ok::<(), JobError>(()) }
            })
            .layer(RateLimitedLayer::redis(limiter, quota));
        workers.push(
            Worker::builder_shared(Arc::clone(&backend), handlers)
                .concurrency(4)
                .poll_interval(Duration::from_millis(10))
                .build()
                .unwrap(),
        );
    }
    run_until_processed(&workers, 4).await;

    let mut times = times.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 4, "{times:?}");
    // GCRA on the server admits one per 100 ms across both workers: four
    // admissions span at least 300 ms of the server's time (the margin is
    // for the round trips between the server's clock and this one).
    assert!(times[3].saturating_sub(times[0]) >= Duration::from_millis(250), "{times:?}");
    let released: u64 = workers.iter().map(|w| w.metrics().released).sum();
    let failed: u64 = workers.iter().map(|w| w.metrics().failed).sum();
    assert!(released >= 3, "{released}");
    assert_eq!(failed, 0, "releases are not exceptions (max_exceptions is 1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlap_lock_in_redis_holds_across_workers() {
    let Some(redis) = conc_test_support::require_redis() else { return };
    let backend = Arc::new(MemoryQueue::new());
    let queue = Queue::from_arc(Arc::clone(&backend));
    for n in 0..4 {
        queue.push(Sync { n }).await.unwrap();
    }
    let now = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());
        let (now, most) = (Arc::clone(&now), Arc::clone(&most));
        let handlers = JobHandlers::new()
            .handle(move |_: Sync, _: JobContext| {
                let (now, most) = (Arc::clone(&now), Arc::clone(&most));
                async move {
                    most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), JobError>(())
                }
            })
            .layer(WithoutOverlappingLayer::new(store).release_after(Duration::from_millis(10)));
        workers.push(
            Worker::builder_shared(Arc::clone(&backend), handlers)
                .concurrency(2)
                .poll_interval(Duration::from_millis(5))
                .build()
                .unwrap(),
        );
    }
    run_until_processed(&workers, 4).await;
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two at once");
    let store = LockStore::new(RedisBackend::connect(&redis.url()).await.unwrap());
    assert_eq!(store.owner_of("overlap:sync:sync").await.unwrap(), None);
}
