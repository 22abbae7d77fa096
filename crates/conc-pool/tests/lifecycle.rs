//! Both pools and the `Concurrency` facade are components: a `Registry`
//! starts them, reads their metrics and stops them with one deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conc_core::lifecycle::{Lifecycle, Registry, StopError};
use conc_core::metrics::{MetricsSource, POOL_TASKS_COMPLETED};
use conc_pool::{AsyncPool, BlockingPool, Concurrency, JoinError, SubmitError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_stops_both_pools_and_the_facade() {
    let blocking = Arc::new(BlockingPool::builder().name("thumbnails").workers(2).build().unwrap());
    let fetch = Arc::new(AsyncPool::builder().name("fetch").workers(2).build().unwrap());
    let concurrency = Arc::new(Concurrency::new().unwrap());
    let registry = Registry::new();
    registry.register(blocking.clone()).unwrap();
    registry.register(fetch.clone()).unwrap();
    registry.register(concurrency.clone()).unwrap();
    registry.start_all().await.unwrap();
    assert!(blocking.is_running() && fetch.is_running() && concurrency.is_running());

    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let counter = Arc::clone(&ran);
        blocking
            .spawn(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let counter = Arc::clone(&ran);
        fetch
            .spawn(async move {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
    }

    let report = registry.shutdown_all(Instant::now() + Duration::from_secs(30)).await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.stopped, ["concurrency", "fetch", "thumbnails"]);
    // Everything accepted before the stop ran; nothing is accepted after it.
    assert_eq!(ran.load(Ordering::SeqCst), 20);
    assert!(!blocking.is_running() && !fetch.is_running() && !concurrency.is_running());
    assert!(matches!(blocking.submit(|| ()), Err(SubmitError::Closed(_))));
    assert!(matches!(fetch.submit(async {}).await, Err(SubmitError::Closed(_))));
    assert!(blocking.join(Duration::from_secs(30)));
    assert_eq!(blocking.metrics().completed + fetch.metrics().completed, 20);
    assert_eq!(registry.metrics().total_count(POOL_TASKS_COMPLETED), 20);
    // A stopped pool cannot start again, and says so.
    assert!(fetch.start().await.is_err());
}

/// A task that outlives the deadline: the pool stops at the deadline, cuts
/// the async task off, and reports that it did not stop cleanly. The pool
/// waits on the paused clock, so its deadline passes at once; the registry's
/// own watch (on the system clock) is far away.
#[tokio::test(start_paused = true)]
async fn a_stop_that_hits_its_deadline_is_reported() {
    let pool = Arc::new(AsyncPool::builder().name("slow").workers(1).build().unwrap());
    let stuck = pool
        .submit(async {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        })
        .await
        .unwrap();
    let queued = pool.submit(async {}).await.unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    let registry = Registry::new();
    registry.register(pool.clone()).unwrap();
    let report = registry.shutdown_all(Instant::now() + Duration::from_secs(60)).await;
    assert_eq!(report.failed.len(), 1);
    let (name, error) = &report.failed[0];
    assert_eq!(name, "slow");
    let StopError::Failed(error) = error else { panic!("expected a stop error, got {error:?}") };
    assert_eq!(
        error.to_string(),
        "pool `slow` stopped at its deadline with 1 queued tasks never started and 1 still running"
    );
    assert_eq!(stuck.await, Err(JoinError::Cancelled));
    assert_eq!(queued.await, Err(JoinError::NotRun));
    assert_eq!(MetricsSource::metrics(&*pool).workers, 0);
}

/// A blocking pool's stop waits on a thread of its own: on a current-thread
/// runtime the registry's task keeps the runtime free, so the task that lets
/// the pool's last closure finish still runs, and the stop is clean.
#[test]
fn stopping_a_blocking_pool_never_blocks_the_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = Arc::new(BlockingPool::builder().name("cpu").workers(1).build().unwrap());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        pool.spawn(move || {
            let _ = wait.recv();
        })
        .unwrap();
        while pool.metrics().busy == 0 {
            tokio::task::yield_now().await;
        }
        // Runs only if the runtime's one thread is free while the pool stops.
        tokio::spawn(async move { release.send(()).unwrap() });
        let registry = Registry::new();
        registry.register(pool.clone()).unwrap();
        let report = registry.shutdown_all(Instant::now() + Duration::from_secs(30)).await;
        assert!(report.is_clean(), "{report}");
    });
}
