//! The aging promise, exactly: under a saturating stream of priority-`high`
//! work, a task of priority `low` starts after exactly
//! `(high - low) × aging_step` dequeues, however many high-priority tasks
//! wait, queued before or after it. Every high task that runs submits the
//! next one until the low task has run, so the high backlog stays the same
//! size all along. One worker, held while the queue is filled, makes the
//! schedule deterministic.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use conc_pool::{AsyncPool, BlockingPool, PoolMetrics, TaskOptions};

const HIGH: i32 = 5;
const LOW: i32 = 0;

/// The backlogs of waiting high-priority tasks tried, besides one more
/// (the stream with no backlog).
const BACKLOGS: [usize; 5] = [0, 4, 64, 200, 10_000];

/// Shared by the tasks of one run.
#[derive(Default)]
struct Run {
    /// High-priority tasks that ran so far.
    high_ran: AtomicUsize,
    /// How many had run when the low one ran.
    low_at: AtomicUsize,
    low_ran: AtomicBool,
}

impl Run {
    fn high(&self) -> bool {
        self.high_ran.fetch_add(1, Ordering::SeqCst);
        !self.low_ran.load(Ordering::SeqCst)
    }

    fn low(&self) {
        self.low_at.store(self.high_ran.load(Ordering::SeqCst), Ordering::SeqCst);
        self.low_ran.store(true, Ordering::SeqCst);
    }
}

/// Whether a pool has nothing queued or running.
fn idle(metrics: &PoolMetrics) -> bool {
    metrics.queued == 0 && metrics.busy == 0
}

/// Queues the low task and `backlog + 1` stream tasks, the low one first or last.
fn fill(backlog: usize, low_first: bool, mut low: impl FnMut(), mut stream: impl FnMut()) {
    if low_first {
        low();
    }
    for _ in 0..=backlog {
        stream();
    }
    if !low_first {
        low();
    }
}

/// The low task ran after exactly `(HIGH - LOW) × step` high ones.
fn assert_within_bound(position: usize, step: u64, backlog: usize, low_first: bool) {
    let bound = usize::try_from(HIGH - LOW).unwrap() * usize::try_from(step).unwrap();
    let order = if low_first { "first" } else { "last" };
    assert_eq!(position, bound, "step {step}, backlog {backlog}, low queued {order}");
}

fn high() -> TaskOptions {
    TaskOptions::new().priority(HIGH)
}

/// A high task of the stream: runs, and while the low task has not run,
/// submits the next one.
fn blocking_stream(pool: &BlockingPool, run: &Arc<Run>) {
    let (next_pool, run) = (pool.clone(), Arc::clone(run));
    pool.spawn_with(high(), move || {
        if run.high() {
            blocking_stream(&next_pool, &run);
        }
    })
    .unwrap();
}

/// How many high tasks the blocking pool ran before the low one.
fn blocking_low_position(pool: &BlockingPool, backlog: usize, low_first: bool) -> usize {
    let run = Arc::new(Run::default());
    let (release, gate) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel::<()>();
    pool.spawn(move || {
        started.send(()).unwrap();
        gate.recv().unwrap();
    })
    .unwrap();
    running.recv().unwrap();
    let low = |run: &Arc<Run>| {
        let run = Arc::clone(run);
        pool.spawn_with(TaskOptions::new().priority(LOW), move || run.low()).unwrap();
    };
    fill(backlog, low_first, || low(&run), || blocking_stream(pool, &run));
    release.send(()).unwrap();
    // Let the rest of the backlog run, so the next run starts on an idle pool.
    while !run.low_ran.load(Ordering::SeqCst) || !idle(&pool.metrics()) {
        std::thread::yield_now();
    }
    run.low_at.load(Ordering::SeqCst)
}

#[test]
fn blocking_pool_aging_bound_is_exact_whatever_the_backlog() {
    for step in [1, 8, 64] {
        let pool = BlockingPool::builder().workers(1).aging_step(step).build().unwrap();
        for backlog in BACKLOGS {
            for low_first in [true, false] {
                let position = blocking_low_position(&pool, backlog, low_first);
                assert_within_bound(position, step, backlog, low_first);
            }
        }
        assert!(pool.shutdown(Duration::from_secs(60)).is_clean());
    }
}

/// The default aging step is 64: the low task starts after 5 × 64 dequeues.
#[test]
fn the_default_aging_step_is_64() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    assert_eq!(blocking_low_position(&pool, 200, false), 320);
    assert_eq!(conc_pool::DEFAULT_AGING_STEP, 64);
}

#[test]
fn strict_priorities_starve_the_low_task_for_the_whole_backlog() {
    let pool = BlockingPool::builder().workers(1).strict_priorities().build().unwrap();
    let run = Arc::new(Run::default());
    let (release, gate) = mpsc::channel::<()>();
    pool.spawn(move || {
        let _ = gate.recv();
    })
    .unwrap();
    let low = Arc::clone(&run);
    let done = pool.submit_with(TaskOptions::new().priority(LOW), move || low.low()).unwrap();
    for _ in 0..1_000 {
        let run = Arc::clone(&run);
        pool.spawn_with(high(), move || {
            run.high();
        })
        .unwrap();
    }
    release.send(()).unwrap();
    done.join().unwrap();
    assert_eq!(run.low_at.load(Ordering::SeqCst), 1_000);
}

/// The async pool's stream: each high task submits the next.
fn async_stream(pool: &AsyncPool, run: &Arc<Run>) {
    let (next_pool, run) = (pool.clone(), Arc::clone(run));
    pool.try_spawn_with(high(), async move {
        if run.high() {
            async_stream(&next_pool, &run);
        }
    })
    .unwrap();
}

/// How many high tasks the async pool ran before the low one.
async fn async_low_position(pool: &AsyncPool, backlog: usize, low_first: bool) -> usize {
    let run = Arc::new(Run::default());
    let gate = Arc::new(tokio::sync::Notify::new());
    let held = Arc::clone(&gate);
    pool.spawn(async move { held.notified().await }).await.unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    let low = |run: &Arc<Run>| {
        let run = Arc::clone(run);
        pool.try_spawn_with(TaskOptions::new().priority(LOW), async move { run.low() }).unwrap();
    };
    fill(backlog, low_first, || low(&run), || async_stream(pool, &run));
    gate.notify_one();
    while !run.low_ran.load(Ordering::SeqCst) || !idle(&pool.metrics()) {
        tokio::task::yield_now().await;
    }
    run.low_at.load(Ordering::SeqCst)
}

#[tokio::test]
async fn async_pool_aging_bound_is_exact_whatever_the_backlog() {
    for step in [1, 8, 64] {
        let pool = AsyncPool::builder().workers(1).aging_step(step).build().unwrap();
        for backlog in BACKLOGS {
            for low_first in [true, false] {
                let position = async_low_position(&pool, backlog, low_first).await;
                assert_within_bound(position, step, backlog, low_first);
            }
        }
        assert!(pool.shutdown(Duration::from_secs(60)).await.is_clean());
    }
}
