//! The promises the guide and the crate docs make that no other test file
//! holds to: the defaults, the concurrency limit, "a busy pool pays no
//! wake-ups", "dropping the last handle finishes the queue", "dropping a
//! handle cancels the task", the metrics identity, caller-runs from a
//! worker, the limit on replacements, handed-back deadlines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use conc_core::lifecycle::Lifecycle;
use conc_core::time::ManualClock;
use conc_pool::{
    AsyncPool, BlockingPool, DEFAULT_KEEP_ALIVE, JoinError, PoolMetrics, Rejection, SubmitError,
    TaskOptions,
};
use support::{caller_runs, occupy, occupy_async, watched};

mod support;

fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Waits until nothing is queued or running.
fn settle(pool: &BlockingPool) -> PoolMetrics {
    loop {
        let m = pool.metrics();
        if m.queued == 0 && m.busy == 0 {
            return m;
        }
        std::thread::yield_now();
    }
}

/// Every default the builder docs and the guide's table state, on the
/// blocking pool (the async pool shares them: one settings type).
#[test]
fn the_blocking_pools_defaults_are_the_documented_ones() {
    let builder = BlockingPool::builder();
    assert!(format!("{builder:?}").contains("CoarseClock"), "the default clock is the coarse one");
    let pool = builder.build().unwrap();
    assert_eq!(pool.workers(), parallelism());
    assert_eq!(pool.scale_up(1), 0, "a fixed pool: max_workers defaults to workers");
    let m = pool.metrics();
    assert_eq!(m.capacity, None, "unbounded");
    assert_eq!(Lifecycle::name(&pool), "conc-pool");
    let thread = pool.submit(|| std::thread::current().name().map(str::to_owned)).unwrap();
    assert!(thread.join().unwrap().unwrap().starts_with("conc-pool-"));
    assert_eq!(DEFAULT_KEEP_ALIVE, Duration::from_secs(10));

    // Reject by default: a full queue hands the task back from `submit`.
    let bounded = BlockingPool::builder().workers(1).queue_capacity(1).build().unwrap();
    let release = occupy(&bounded, 1);
    let queued = bounded.submit(|| ()).unwrap();
    assert!(matches!(bounded.submit(|| ()), Err(SubmitError::Full(_))));
    drop(release);
    queued.join().unwrap();

    // No stuck detection by default, however long a task runs.
    let clock = ManualClock::new();
    let watched = BlockingPool::builder().workers(1).clock(clock.clone()).build().unwrap();
    let release = occupy(&watched, 1);
    clock.advance(Duration::from_secs(365 * 24 * 3_600));
    assert!(watched.health().is_healthy());
    assert_eq!(watched.metrics().stuck, 0);
    drop(release);
}

#[tokio::test]
async fn the_async_pools_defaults_are_the_documented_ones() {
    let pool = AsyncPool::builder().build().unwrap();
    assert_eq!(pool.workers(), parallelism());
    assert_eq!(pool.scale_up(1), 0);
    assert_eq!(pool.metrics().capacity, None);
    assert_eq!(Lifecycle::name(&pool), "conc-pool");
}

/// A dynamic pool's extra worker retires after exactly the default 10 s of
/// idleness (on tokio's paused clock).
#[tokio::test(start_paused = true)]
async fn the_keep_alive_defaults_to_ten_seconds() {
    let pool = AsyncPool::builder().workers(1).max_workers(2).build().unwrap();
    let gate = occupy_async(&pool, 2).await;
    assert_eq!(pool.workers(), 2);
    gate.notify_one();
    gate.notify_one();
    while pool.metrics().busy > 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(DEFAULT_KEEP_ALIVE.checked_sub(Duration::from_millis(1)).unwrap()).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.workers(), 2, "still within the keep-alive");
    tokio::time::sleep(Duration::from_millis(2)).await;
    while pool.workers() != 1 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.metrics().scaled_down, 1);
}

/// `workers` is the async pool's concurrency limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_workers_futures_run_at_once() {
    let pool = AsyncPool::builder().workers(3).build().unwrap();
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks = (0..60).map(|_| {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        }
    });
    let batch = pool.submit_batch(tasks).await.unwrap();
    assert!(batch.await.into_iter().all(|r| r.is_ok()));
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

/// While every worker is busy, submissions wake nobody: the workers take
/// the queued tasks one after another without sleeping in between.
#[test]
fn a_busy_blocking_pool_pays_no_wake_ups() {
    let pool = BlockingPool::builder().workers(2).build().unwrap();
    let release = occupy(&pool, 2);
    let before = pool.metrics().wake_ups;
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..1_000 {
        let ran = Arc::clone(&ran);
        pool.spawn(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(pool.metrics().wake_ups, before, "a push woke a worker of a busy pool");
    drop(release);
    while ran.load(Ordering::SeqCst) < 1_000 {
        std::thread::yield_now();
    }
    assert_eq!(pool.metrics().wake_ups, before);
    // An idle pool does wake a worker for new work.
    let _ = settle(&pool);
    while pool.metrics().wake_ups == before {
        pool.submit(|| ()).unwrap().join().unwrap();
    }
}

#[tokio::test]
async fn a_busy_async_pool_pays_no_wake_ups() {
    let pool = AsyncPool::builder().workers(2).build().unwrap();
    let gate = occupy_async(&pool, 2).await;
    let before = pool.metrics().wake_ups;
    let mut handles = Vec::new();
    for i in 0..1_000 {
        handles.push(pool.submit(async move { i }).await.unwrap());
    }
    assert_eq!(pool.metrics().wake_ups, before);
    gate.notify_one();
    gate.notify_one();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(i));
    }
    assert_eq!(pool.metrics().wake_ups, before);
}

/// The threads named after a pool that are alive (Linux).
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// With no pool handle left, the workers run what is queued, then exit.
#[test]
fn dropping_the_last_blocking_handle_finishes_the_queue() {
    let pool = BlockingPool::builder().name("orphan").workers(1).build().unwrap();
    let release = occupy(&pool, 1);
    let handles: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    drop(pool);
    drop(release);
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i));
    }
    #[cfg(target_os = "linux")]
    for round in 0.. {
        if threads_named("orphan-") == 0 {
            break;
        }
        assert!(round < 100_000, "the worker thread never exited");
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn dropping_the_last_async_handle_finishes_the_queue() {
    let alive = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let baseline = alive();
    let pool = AsyncPool::builder().workers(2).build().unwrap();
    assert_eq!(alive(), baseline + 2);
    let gate = occupy_async(&pool, 2).await;
    let mut handles = Vec::new();
    for i in 0..10 {
        handles.push(pool.submit(async move { i }).await.unwrap());
    }
    drop(pool);
    gate.notify_one();
    gate.notify_one();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(i));
    }
    while alive() > baseline {
        tokio::task::yield_now().await;
    }
}

/// Dropping a task's handle, or a batch, cancels the tasks: queued ones
/// never start.
#[test]
fn dropping_a_handle_or_a_batch_cancels_its_queued_tasks() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let release = occupy(&pool, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let task = |ran: &Arc<AtomicUsize>| {
        let ran = Arc::clone(ran);
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    drop(pool.submit(task(&ran)).unwrap());
    drop(pool.submit_batch([task(&ran), task(&ran), task(&ran)]).unwrap());
    let kept = pool.submit(task(&ran)).unwrap();
    drop(release);
    kept.join().unwrap();
    let m = settle(&pool);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(m.cancelled, 4);
}

/// At a quiescent moment `submitted` = completed + panicked + cancelled +
/// timed out + evicted + queued + busy + handed back by a shutdown.
#[test]
fn the_metrics_add_up_at_a_quiescent_moment() {
    let clock = ManualClock::new();
    let pool = BlockingPool::builder()
        .workers(1)
        .queue_capacity(4)
        .rejection(Rejection::DropOldest)
        .clock(clock.clone())
        .build()
        .unwrap();
    let release = occupy(&pool, 1);
    let ok = pool.submit(|| ()).unwrap();
    let panics = pool.submit(|| -> () { panic!("counted") }).unwrap();
    let mut cancelled = pool.submit(|| ()).unwrap();
    cancelled.cancel();
    let late =
        pool.submit_with(TaskOptions::new().timeout(Duration::from_millis(1)), || ()).unwrap();
    let evicts = pool.submit(|| ()).unwrap(); // full: evicts `ok`, the oldest
    clock.advance(Duration::from_millis(2));
    drop(release);
    let outcomes = [ok.join(), panics.join(), cancelled.join(), late.join(), evicts.join()];
    assert!(matches!(
        outcomes,
        [
            Err(JoinError::Evicted),
            Err(JoinError::Panicked { .. }),
            Err(JoinError::Cancelled),
            Err(JoinError::DeadlineExceeded),
            Ok(())
        ]
    ));
    let release = occupy(&pool, 1);
    let handed_back = (0..3).map(|_| pool.submit(|| ()).unwrap()).collect::<Vec<_>>();
    let report = pool.shutdown_now();
    drop(release);
    assert!(pool.join(Duration::from_secs(30)));
    let m = pool.metrics();
    let sum = m.completed + m.panicked + m.cancelled + m.timed_out + m.evicted;
    let sum = sum + (m.queued + m.busy + report.unstarted.len()) as u64;
    assert_eq!(m.submitted, sum, "{m:?}");
    // Two holding tasks, five, three handed back; the holders and `evicts` completed.
    assert_eq!((m.submitted, m.completed, m.evicted), (10, 3, 1), "{m:?}");
    drop(report);
    assert!(handed_back.into_iter().all(|h| h.join() == Err(JoinError::NotRun)));
}

/// Caller-runs from one of the pool's own workers: the worker runs the task
/// itself rather than waiting for room it would have to make.
#[test]
fn caller_runs_from_a_worker_does_not_deadlock() {
    let pool = caller_runs();
    let inner = pool.clone();
    let outer = pool.submit(move || {
        let handles: Vec<_> = (0..3).map(|i| inner.submit(move || i).unwrap()).collect();
        let me = std::thread::current().id();
        let here = inner.submit(move || std::thread::current().id() == me).unwrap();
        (handles, here)
    });
    let (handles, here) = outer.unwrap().join().unwrap();
    assert!(here.join().unwrap(), "the full queue's task ran on the submitting worker");
    let outputs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outputs, [0, 1, 2]);
    assert_eq!(pool.metrics().caller_ran, 3);
}

/// At most `max_workers` replaced workers can be finishing at once: beyond
/// that, a stuck worker is only reported.
#[test]
fn beyond_the_replacement_limit_a_stuck_worker_is_only_reported() {
    let (pool, clock) = watched(1);
    let (release_first, first) = mpsc::channel::<()>();
    let (release_second, second) = mpsc::channel::<()>();
    let stuck = pool.submit(move || first.recv().is_ok()).unwrap();
    while pool.metrics().busy == 0 {
        std::thread::yield_now();
    }
    clock.advance(Duration::from_millis(20));
    // Replaces the stuck worker; the replacement hangs too.
    let also_stuck = pool.submit(move || second.recv().is_ok()).unwrap();
    while pool.metrics().busy == 0 {
        std::thread::yield_now();
    }
    assert_eq!(pool.metrics().replaced, 1);
    clock.advance(Duration::from_millis(20));
    let waiting = pool.submit(|| "ran").unwrap();
    assert_eq!(pool.health().stuck.len(), 2);
    assert_eq!(pool.metrics().replaced, 1, "no slot left for a second replacement");
    release_first.send(()).unwrap();
    release_second.send(()).unwrap();
    assert!(stuck.join().unwrap() && also_stuck.join().unwrap());
    assert_eq!(waiting.join(), Ok("ran"));
}

/// A handed-back task keeps its deadline, checked on the pool's clock when
/// the caller runs it.
#[test]
fn a_handed_back_task_past_its_deadline_does_not_run() {
    let clock = ManualClock::new();
    let pool = BlockingPool::builder().workers(1).clock(clock.clone()).build().unwrap();
    let release = occupy(&pool, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let handle = pool
        .submit_with(TaskOptions::new().timeout(Duration::from_millis(5)), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let report = pool.shutdown_now();
    clock.advance(Duration::from_millis(5));
    for task in report.unstarted {
        task.run();
    }
    assert_eq!(handle.join(), Err(JoinError::DeadlineExceeded));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    drop(release);
}
