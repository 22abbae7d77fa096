//! Helpers the behaviour tests share.
#![allow(dead_code, reason = "each test binary uses the helpers it needs")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_pool::{AsyncPool, BlockingPool, Rejection};
use tokio::sync::Notify;

/// A `$pool` of `$workers` on a manual clock, reporting (and replacing)
/// workers stuck for 20 ms.
macro_rules! watched_pool {
    ($pool:ident, $workers:expr) => {{
        let clock = ManualClock::new();
        let pool = $pool::builder()
            .workers($workers)
            .stuck_after(Duration::from_millis(20))
            .clock(clock.clone())
            .build()
            .unwrap();
        (pool, clock)
    }};
}

/// A blocking pool of `workers` on a manual clock, stuck after 20 ms.
pub(crate) fn watched(workers: usize) -> (BlockingPool, ManualClock) {
    watched_pool!(BlockingPool, workers)
}

/// An async pool of `workers` on a manual clock, stuck after 20 ms.
pub(crate) fn watched_async(workers: usize) -> (AsyncPool, ManualClock) {
    watched_pool!(AsyncPool, workers)
}

/// A one-worker blocking pool with a queue of one and the caller-runs policy.
pub(crate) fn caller_runs() -> BlockingPool {
    BlockingPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::CallerRuns)
        .build()
        .unwrap()
}

/// Holds `workers` workers of a blocking pool (each running a task of its
/// own, started) until the returned sender is dropped.
pub(crate) fn occupy(pool: &BlockingPool, workers: usize) -> mpsc::Sender<()> {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
        pool.spawn(move || {
            started.fetch_add(1, Ordering::SeqCst);
            let _ = gate.lock().unwrap().recv();
        })
        .unwrap();
    }
    while started.load(Ordering::SeqCst) < workers {
        std::thread::yield_now();
    }
    release
}

/// Holds `workers` workers of an async pool (each running a task of its own,
/// started) until the returned notify is triggered that many times.
pub(crate) async fn occupy_async(pool: &AsyncPool, workers: usize) -> Arc<Notify> {
    let gate = Arc::new(Notify::new());
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
        pool.spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
        })
        .await
        .unwrap();
    }
    while started.load(Ordering::SeqCst) < workers {
        tokio::task::yield_now().await;
    }
    gate
}
