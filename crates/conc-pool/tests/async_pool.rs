//! Behaviour of the async pool, on tokio's paused clock where time matters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::time::ManualClock;
use conc_pool::{
    AsyncPool, JoinError, QueueUtilisation, Rejection, ScaleDecision, ScalePolicy, ScaleSnapshot,
    ScaleTrigger, SubmitError, TaskOptions,
};
use support::{occupy_async, watched_async};
use tokio::sync::Notify;

mod support;

/// Counts its drops.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn release(gate: &Notify, workers: usize) {
    for _ in 0..workers {
        gate.notify_one();
    }
}

#[test]
fn build_needs_a_runtime() {
    let error = AsyncPool::builder().build().unwrap_err();
    assert_eq!(error.field, "runtime");
    assert_eq!(
        error.to_string(),
        "invalid `runtime` None: must be given when `build()` runs outside a tokio runtime"
    );
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(AsyncPool::builder().runtime(rt.handle().clone()).workers(1).build().is_ok());
}

/// `Duration::MAX` ("forever") as a task timeout or a shutdown timeout
/// means no deadline: nothing overflows, every task runs to completion.
#[tokio::test(start_paused = true)]
async fn duration_max_means_no_deadline() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let handle = pool
        .submit_with(TaskOptions::new().timeout(Duration::MAX), async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            7
        })
        .await
        .unwrap();
    assert_eq!(handle.await, Ok(7));
    let gate = occupy_async(&pool, 1).await;
    let queued = pool
        .submit(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            8
        })
        .await
        .unwrap();
    release(&gate, 1);
    let report = pool.shutdown(Duration::MAX).await;
    assert!(report.is_clean());
    assert_eq!(queued.await, Ok(8));
}

#[tokio::test]
async fn outputs_panics_and_batch_order() {
    let pool = AsyncPool::builder().workers(4).build().unwrap();
    assert_eq!(pool.submit(async { 7 }).await.unwrap().await, Ok(7));
    let bad = pool.submit(async { if true { panic!("boom") } else { 1 } }).await.unwrap();
    assert_eq!(bad.await, Err(JoinError::Panicked { message: "boom".into() }));
    let batch = pool
        .submit_batch((0..100_u64).map(|i| async move {
            for _ in 0..(100 - i) % 7 {
                tokio::task::yield_now().await;
            }
            i
        }))
        .await
        .unwrap();
    let out: Vec<u64> = batch.await.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, (0..100).collect::<Vec<_>>());
    let report = pool.shutdown(Duration::from_secs(1)).await;
    assert!(report.is_clean());
    let m = pool.metrics();
    assert_eq!((m.completed, m.panicked, m.submitted), (101, 1, 102));
}

#[tokio::test(start_paused = true)]
async fn a_running_task_is_cut_off_at_its_deadline() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = OnDrop(Arc::clone(&dropped));
    let slow = pool
        .submit_with(TaskOptions::new().timeout(Duration::from_secs(5)), async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await
        .unwrap();
    assert_eq!(slow.await, Err(JoinError::DeadlineExceeded));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    // A queued task whose deadline passes before it starts is not started.
    let gate = occupy_async(&pool, 1).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let late = pool
        .submit_with(TaskOptions::new().timeout(Duration::from_secs(1)), async move {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    release(&gate, 1);
    assert_eq!(late.await, Err(JoinError::DeadlineExceeded));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_queued_and_running_tasks() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    // Running: dropped at its next suspension point.
    let r = Arc::clone(&ran);
    let mut running = pool
        .submit(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    // Queued behind it: never started.
    let r = Arc::clone(&ran);
    let mut queued = pool.submit(async move { r.fetch_add(1, Ordering::SeqCst) }).await.unwrap();
    queued.cancel();
    running.cancel();
    assert_eq!(running.await, Err(JoinError::Cancelled));
    assert_eq!(queued.await, Err(JoinError::Cancelled));
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(pool.submit(async { 1 }).await.unwrap().await, Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(pool.shutdown(Duration::from_secs(1)).await.is_clean());
    assert_eq!(pool.metrics().cancelled, 2);
}

#[tokio::test(start_paused = true)]
async fn priorities_and_try_submit_on_a_full_queue() {
    let pool =
        AsyncPool::builder().workers(1).queue_capacity(3).strict_priorities().build().unwrap();
    let gate = occupy_async(&pool, 1).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (name, priority) in [("low", -1), ("high", 3), ("mid", 0)] {
        let order = Arc::clone(&order);
        handles.push(
            pool.submit_with(TaskOptions::new().priority(priority), async move {
                order.lock().unwrap().push(name);
            })
            .await
            .unwrap(),
        );
    }
    let Err(SubmitError::Full(fut)) = pool.try_submit(async { "handed back" }) else {
        panic!("queue should be full")
    };
    assert_eq!(fut.await, "handed back");
    release(&gate, 1);
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["high", "mid", "low"]);
}

#[tokio::test(start_paused = true)]
async fn block_policy_waits_on_the_paused_clock() {
    let pool = AsyncPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::Block(Duration::from_secs(5)))
        .build()
        .unwrap();
    let gate = occupy_async(&pool, 1).await;
    let first = pool.submit(async { 1 }).await.unwrap();
    let Err(SubmitError::Timeout(fut)) = pool.submit(async { 2 }).await else {
        panic!("should time out")
    };
    assert_eq!(fut.await, 2);
    // A waiter gets in as soon as room appears.
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.submit(async { 3 }).await.map_err(|_| ()) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    release(&gate, 1);
    assert_eq!(first.await, Ok(1));
    assert_eq!(waiter.await.unwrap().unwrap().await, Ok(3));
}

#[tokio::test(start_paused = true)]
async fn caller_runs_and_drop_oldest() {
    let pool = AsyncPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::CallerRuns)
        .build()
        .unwrap();
    let gate = occupy_async(&pool, 1).await;
    let _queued = pool.submit(async { 0 }).await.unwrap();
    let inline = pool.submit(async { 5 }).await.unwrap();
    assert!(inline.is_finished());
    assert_eq!(inline.await, Ok(5));
    release(&gate, 1);

    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let pool = AsyncPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::DropOldest)
        .on_evict(move |task| sink.lock().unwrap().push(task))
        .build()
        .unwrap();
    let gate = occupy_async(&pool, 1).await;
    let old = pool.submit(async { "old" }).await.unwrap();
    let new = pool.submit(async { "new" }).await.unwrap();
    let task = evicted.lock().unwrap().pop().unwrap();
    task.run().await;
    assert_eq!(old.await, Ok("old"));
    release(&gate, 1);
    assert_eq!(new.await, Ok("new"));
    assert_eq!(pool.metrics().evicted, 1);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_cancels_what_outlives_the_deadline_and_hands_back_the_queue() {
    let pool = AsyncPool::builder().workers(2).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..10_u64 {
        let ran = Arc::clone(&ran);
        handles.push(
            pool.submit(async move {
                tokio::time::sleep(Duration::from_secs(if i < 2 { 100 } else { 1 })).await;
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap(),
        );
    }
    // The two long tasks hold both workers past the deadline.
    let report = pool.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.still_running, 2);
    assert_eq!(report.unstarted.len(), 8);
    for task in report.unstarted {
        task.run().await;
    }
    let results: Vec<_> = futures_join(handles).await;
    assert_eq!(results[..2], [Err(JoinError::Cancelled), Err(JoinError::Cancelled)]);
    assert!(results[2..].iter().all(Result::is_ok));
    assert_eq!(ran.load(Ordering::SeqCst), 8);
    assert!(matches!(pool.submit(async {}).await, Err(SubmitError::Closed(_))));
}

#[tokio::test(start_paused = true)]
async fn shutdown_now_hands_back_everything_queued() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let gate = occupy_async(&pool, 1).await;
    let handles: Vec<_> = {
        let mut v = Vec::new();
        for i in 0..100 {
            v.push(pool.submit(async move { i }).await.unwrap());
        }
        v
    };
    let report = pool.shutdown_now().await;
    assert_eq!(report.unstarted.len(), 100);
    assert_eq!(report.still_running, 1);
    drop(report);
    let results = futures_join(handles).await;
    assert!(results.iter().all(|r| *r == Err(JoinError::NotRun)));
    drop(gate);
}

#[tokio::test(start_paused = true)]
async fn retry_with_backoff_on_the_paused_clock() {
    let pool = AsyncPool::builder().workers(1).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let backoff = Backoff::fixed(Duration::from_secs(30)).max_retries(4).build().unwrap();
    let start = tokio::time::Instant::now();
    let handle = pool
        .submit_retry(backoff, move || {
            let c = Arc::clone(&c);
            async move { if c.fetch_add(1, Ordering::SeqCst) < 3 { Err("down") } else { Ok("up") } }
        })
        .await
        .unwrap();
    assert_eq!(handle.await, Ok(Ok("up")));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(start.elapsed(), Duration::from_secs(90));
}

#[tokio::test]
async fn processor_and_flood_within_capacity() {
    let pool = AsyncPool::builder().workers(2).queue_capacity(16).build().unwrap();
    let double = pool.processor(|n: u64| async move { n * 2 });
    let batch = double.submit_batch(0..10).await.unwrap();
    let out: Vec<u64> = batch.await.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, (0..10).map(|n| n * 2).collect::<Vec<_>>());
    let (mut accepted, mut refused) = (0_u64, 0_u64);
    for _ in 0..10_000 {
        match pool.try_spawn(async {}) {
            Ok(()) => accepted += 1,
            Err(SubmitError::Full(_)) => refused += 1,
            Err(other) => panic!("{other}"),
        }
        assert!(pool.metrics().queued <= 16);
    }
    assert!(pool.shutdown(Duration::from_secs(10)).await.is_clean());
    let m = pool.metrics();
    assert_eq!((m.completed, m.rejected), (accepted + 10, refused));
}

async fn futures_join<T>(handles: Vec<conc_pool::TaskHandle<T>>) -> Vec<Result<T, JoinError>> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_async_pool_scales_on_the_paused_clock() {
    let pool = AsyncPool::builder()
        .workers(1)
        .max_workers(4)
        .keep_alive(Duration::from_secs(30))
        .build()
        .unwrap();
    // Four sleeping tasks: each queued while no worker is idle starts one.
    let mut handles = Vec::new();
    for i in 0..4_u64 {
        handles.push(
            pool.submit(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                i
            })
            .await
            .unwrap(),
        );
    }
    assert_eq!(pool.workers(), 4);
    let start = tokio::time::Instant::now();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(i as u64));
    }
    // They ran side by side: one sleep, not four.
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(pool.metrics().scaled_up, 3);
    // Idle for less than the keep-alive: nobody leaves.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(pool.workers(), 4);
    // Past it: back to the minimum, never below.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.metrics().scaled_down, 3);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.submit(async { 9 }).await.unwrap().await, Ok(9));
}

#[tokio::test(start_paused = true)]
async fn manual_async_scaling_never_cancels_a_running_task() {
    let pool = AsyncPool::builder().workers(1).max_workers(3).build().unwrap();
    assert_eq!(pool.scale_up(5), 2);
    assert_eq!(pool.workers(), 3);
    let busy = pool
        .submit(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "finished"
        })
        .await
        .unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.scale_down(10), 2);
    assert_eq!(busy.await, Ok("finished"));
    for _ in 0..100 {
        if pool.workers() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.workers(), 1);
    pool.resize(2);
    assert_eq!(pool.workers(), 2);
    assert!(pool.shutdown(Duration::from_secs(1)).await.is_clean());
    assert_eq!(pool.workers(), 0);
}

/// Grows by two on every queued task and never shrinks.
struct GrowByTwoNeverShrink;

impl ScalePolicy for GrowByTwoNeverShrink {
    fn decide(&self, snapshot: &ScaleSnapshot) -> ScaleDecision {
        match snapshot.trigger {
            ScaleTrigger::Queued => ScaleDecision::Grow(2),
            _ => ScaleDecision::Hold,
        }
    }
}

type Decisions = Arc<std::sync::Mutex<Vec<(ScaleSnapshot, ScaleDecision)>>>;

fn recorder() -> (Decisions, impl Fn(&ScaleSnapshot, ScaleDecision) + Send + Sync + 'static) {
    let decisions: Decisions = Arc::default();
    let sink = Arc::clone(&decisions);
    (decisions, move |s: &ScaleSnapshot, d| sink.lock().unwrap().push((*s, d)))
}

#[tokio::test(start_paused = true)]
async fn a_custom_scale_policy_is_consulted_and_obeyed() {
    let (decisions, on_scale) = recorder();
    let pool = AsyncPool::builder()
        .workers(1)
        .max_workers(6)
        .keep_alive(Duration::from_secs(5))
        .scale_policy(GrowByTwoNeverShrink)
        .on_scale(on_scale)
        .build()
        .unwrap();
    // Let the first worker start and wait for work.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(pool.submit(tokio::time::sleep(Duration::from_secs(10))).await.unwrap());
        // Let the new workers pick up queued work before the next submit.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    // First task: the one worker was idle, no decision. Second: queued with
    // none idle, grow by 2 -> 3. Third: the two new workers are idle, no decision.
    {
        let seen = decisions.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (snapshot, decision) = seen[0];
        assert_eq!(decision, ScaleDecision::Grow(2));
        assert_eq!(snapshot.trigger, ScaleTrigger::Queued);
        assert_eq!((snapshot.workers, snapshot.min_workers, snapshot.max_workers), (1, 1, 6));
        assert_eq!(snapshot.busy, 1);
        assert_eq!(snapshot.queued, 1);
    }
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.metrics().scaled_up, 2);
    for handle in handles {
        handle.await.unwrap();
    }
    // Far past the keep-alive: the policy says hold, so nobody retires, and
    // each idle worker asked again after every keep-alive.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.metrics().scaled_down, 0);
    let seen = decisions.lock().unwrap();
    let idle: Vec<_> =
        seen.iter().filter(|(s, _)| s.trigger == ScaleTrigger::IdleTimeout).collect();
    assert!(idle.len() >= 2 * 10, "{} idle decisions", idle.len());
    assert!(idle.iter().all(|(_, d)| *d == ScaleDecision::Hold));
}

#[tokio::test(start_paused = true)]
async fn the_queue_utilisation_policy_grows_with_the_queue_and_shrinks_when_idle() {
    let (decisions, on_scale) = recorder();
    let pool = AsyncPool::builder()
        .workers(1)
        .max_workers(4)
        .keep_alive(Duration::from_secs(5))
        .scale_policy(QueueUtilisation::new(2, 0.5).unwrap())
        .on_scale(on_scale)
        .build()
        .unwrap();
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for _ in 0..7 {
        let mut gate = gate.clone();
        handles.push(
            pool.submit(async move {
                let _ = gate.wait_for(|open| *open).await;
            })
            .await
            .unwrap(),
        );
    }
    // Queued 1 and 2 with one worker: within 2 per worker, hold. Queued 3:
    // two workers wanted, grow by one; and so on, never above 4.
    assert!(pool.workers() > 1);
    assert!(pool.workers() <= 4);
    {
        let seen = decisions.lock().unwrap();
        assert_eq!(seen[0].1, ScaleDecision::Hold);
        assert!(seen.iter().any(|(_, d)| matches!(d, ScaleDecision::Grow(_))));
        for (s, d) in seen.iter() {
            let wanted = s.queued.div_ceil(2);
            let expected = if wanted > s.workers {
                ScaleDecision::Grow(wanted - s.workers)
            } else {
                ScaleDecision::Hold
            };
            assert_eq!(*d, expected, "{s:?}");
        }
    }
    release.send(true).unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    // Idle: utilisation 0 < 0.5, so workers above the minimum retire.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(pool.workers(), 1);
    assert!(pool.metrics().scaled_down >= 1);
    assert!(
        decisions
            .lock()
            .unwrap()
            .iter()
            .any(|(s, d)| s.trigger == ScaleTrigger::IdleTimeout && *d == ScaleDecision::Shrink(1))
    );
}

/// Stuck detection reads the pool's clock: on a manual clock it is exact.
#[tokio::test]
async fn a_stuck_async_worker_is_replaced_and_capacity_is_kept() {
    let (pool, clock) = watched_async(1);
    let (release, hang) = tokio::sync::oneshot::channel::<&'static str>();
    let stuck = pool.submit(async move { hang.await.unwrap() }).await.unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_millis(19));
    assert!(pool.health().is_healthy());
    clock.advance(Duration::from_millis(1));
    assert_eq!(pool.health().stuck.len(), 1);
    // The only worker is stuck; this task queues, which replaces it.
    let next = pool.submit(async { "served by the replacement" }).await.unwrap();
    assert_eq!(next.await, Ok("served by the replacement"));
    let m = pool.metrics();
    assert_eq!(m.replaced, 1);
    assert_eq!(m.workers, 1, "the stuck worker no longer counts, its replacement does");
    assert_eq!(pool.health().stuck.len(), 1);
    release.send("finished late").unwrap();
    assert_eq!(stuck.await, Ok("finished late"));
    // A worker counts a task just after its handle resolves: wait for both
    // to be done before moving the clock past the threshold again.
    while !pool.health().is_healthy() || pool.metrics().busy != 0 {
        tokio::task::yield_now().await;
    }
    // Still one worker, serving; no further replacement.
    clock.advance(Duration::from_millis(100));
    assert_eq!(pool.submit(async { 5 }).await.unwrap().await, Ok(5));
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.metrics().replaced, 1);
    assert!(pool.shutdown(Duration::from_secs(5)).await.is_clean());
}

/// Queue waits are read on the pool's clock.
#[tokio::test]
async fn queue_waits_are_read_on_the_pools_clock() {
    let clock = ManualClock::new();
    let pool = AsyncPool::builder().workers(1).clock(clock.clone()).build().unwrap();
    let gate = occupy_async(&pool, 1).await;
    let waiting: Vec<_> = futures_join_all(&pool, 3).await;
    clock.advance(Duration::from_millis(3));
    release(&gate, 1);
    for handle in waiting {
        handle.await.unwrap();
    }
    let m = pool.metrics();
    // Three of four tasks waited 3 ms: the p50 is the upper bound of its
    // power-of-two bucket, [2^21, 2^22) ns.
    assert_eq!(m.wait_p50, Duration::from_nanos(1 << 22));
    assert_eq!(m.wait_p99, Duration::from_nanos(1 << 22));
}

async fn futures_join_all(pool: &AsyncPool, n: usize) -> Vec<conc_pool::TaskHandle<()>> {
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(pool.submit(async {}).await.unwrap());
    }
    handles
}

/// An async pool's handle joined from a plain thread blocks until the task
/// ran; joined inside an async execution context it panics (a runtime thread
/// blocked there may be the one that would run the task) instead of hanging.
#[test]
fn join_blocks_a_plain_thread_and_refuses_an_async_context() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pool = runtime.block_on(async { AsyncPool::builder().workers(1).build().unwrap() });
    let handle = runtime.block_on(pool.submit(async { 6 * 7 })).unwrap();
    // The current-thread runtime runs the task only while it is driven: a
    // second thread drives it while this one joins.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = std::thread::spawn(move || {
        runtime.block_on(async move {
            let _ = stopped.await;
        });
        runtime
    });
    assert_eq!(handle.join(), Ok(42));
    stop.send(()).unwrap();
    let runtime = driver.join().unwrap();

    let refused = runtime.block_on(async {
        let handle = pool.submit(async { 1 }).await.unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.join()))
    });
    assert!(refused.is_err(), "join inside an async context did not panic");
}
