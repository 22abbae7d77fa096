//! Behaviour of the blocking pool: ordering, policies, panics, cancellation,
//! deadlines, shutdown. No test asserts on elapsed time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::time::ManualClock;

use conc_pool::{BlockingPool, JoinError, PoolBuildError, Rejection, SubmitError, TaskOptions};
use support::{caller_runs, occupy, watched};

mod support;

/// The refused setting of a build, as `(field, message)`.
fn refused(builder: conc_pool::BlockingPoolBuilder) -> (String, String) {
    match builder.build() {
        Err(PoolBuildError::Config(error)) => (error.field.to_string(), error.to_string()),
        other => panic!("expected a refused setting, got {other:?}"),
    }
}

#[test]
fn build_validates_settings() {
    let refusals = [
        (BlockingPool::builder().workers(0), "invalid `workers` 0: must be at least 1"),
        (
            BlockingPool::builder().queue_capacity(0),
            "invalid `queue_capacity` 0: must be at least 1",
        ),
        (BlockingPool::builder().aging_step(0), "invalid `aging_step` 0: must be at least 1"),
        (
            BlockingPool::builder().stuck_after(Duration::ZERO),
            "invalid `stuck_after` 0ns: must be longer than zero",
        ),
        (
            BlockingPool::builder().keep_alive(Duration::ZERO),
            "invalid `keep_alive` 0ns: must be longer than zero",
        ),
        (
            BlockingPool::builder().workers(3).max_workers(2),
            "invalid `max_workers` 2: must be at least `workers` (3)",
        ),
        (BlockingPool::builder().name(""), r#"invalid `name` "": must not be empty"#),
        (
            BlockingPool::builder().name("a\0b"),
            r#"invalid `name` "a\0b": must not contain a NUL byte"#,
        ),
        (
            BlockingPool::builder().workers(usize::MAX),
            "invalid `workers` 18446744073709551615: must be at most 32768",
        ),
        (
            BlockingPool::builder().workers(1).max_workers(usize::MAX / 2),
            "invalid `max_workers` 9223372036854775807: must be at most 32768",
        ),
        (
            BlockingPool::builder().stack_size(usize::MAX),
            "invalid `stack_size` 18446744073709551615: must be between 65536 and 1073741824",
        ),
        (
            BlockingPool::builder().stack_size(1),
            "invalid `stack_size` 1: must be between 65536 and 1073741824",
        ),
    ];
    for (builder, message) in refusals {
        assert_eq!(refused(builder).1, message);
    }
    assert!(
        BlockingPool::builder().workers(1).stuck_after(Duration::from_nanos(1)).build().is_ok()
    );
}

/// `Duration::MAX` ("forever") as a task timeout, block timeout, keep-alive,
/// shutdown or join timeout means no deadline: nothing overflows, every task runs.
#[test]
fn duration_max_means_no_deadline() {
    let pool = BlockingPool::builder()
        .workers(1)
        .max_workers(2)
        .keep_alive(Duration::MAX)
        .queue_capacity(1)
        .rejection(Rejection::Block(Duration::MAX))
        .build()
        .unwrap();
    let handle = pool.submit_with(TaskOptions::new().timeout(Duration::MAX), || 7).unwrap();
    assert_eq!(handle.join(), Ok(7));
    // Both workers busy and the queue full: a blocking submit waits for room.
    let release = occupy(&pool, 2);
    let queued = pool.submit(|| 1).unwrap();
    let releaser = std::thread::spawn(move || drop(release));
    let blocked = pool.submit(|| 2).map_err(|_| "refused").unwrap();
    releaser.join().unwrap();
    let report = pool.shutdown(Duration::MAX);
    assert!(report.is_clean());
    assert!(pool.join(Duration::MAX));
    assert_eq!(queued.join(), Ok(1));
    assert_eq!(blocked.join(), Ok(2));
}

#[test]
fn batch_outputs_come_back_in_input_order() {
    let pool = BlockingPool::builder().workers(4).build().unwrap();
    let batch = pool
        .submit_batch((0..200_u64).map(|i| {
            move || {
                // Later items finish first.
                std::thread::sleep(Duration::from_micros((200 - i) * 5));
                i
            }
        }))
        .unwrap();
    let outputs: Vec<u64> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(outputs, (0..200).collect::<Vec<_>>());
}

#[test]
fn a_panic_becomes_an_error_and_the_worker_keeps_serving() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let bad = pool.submit(|| -> u8 { panic!("corrupt row 7") }).unwrap();
    assert_eq!(bad.join(), Err(JoinError::Panicked { message: "corrupt row 7".into() }));
    pool.spawn(|| panic!("fire and forget")).unwrap();
    for i in 0..10 {
        assert_eq!(pool.submit(move || i).unwrap().join(), Ok(i));
    }
    // After a shutdown every worker has counted its last task.
    assert!(pool.shutdown(Duration::from_secs(60)).is_clean());
    let m = pool.metrics();
    assert_eq!((m.workers, m.panicked, m.completed), (0, 2, 10));
}

/// A worker that takes a batch of queued tasks and then blocks on the first
/// one loses the rest of the batch to the other worker: every quick task
/// runs while the blocking one is still held.
#[test]
fn an_idle_worker_steals_the_tasks_queued_behind_a_blocked_one() {
    const QUICK: usize = 50;
    let pool = BlockingPool::builder().workers(2).build().unwrap();
    let first = occupy(&pool, 1);
    let second = occupy(&pool, 1);
    // Queued while both workers are held: the blocker, then the quick tasks.
    let (unblock, blocked) = mpsc::channel::<()>();
    let stuck = pool.submit(move || blocked.recv().is_err()).unwrap();
    let (done_tx, done) = mpsc::channel::<usize>();
    for i in 0..QUICK {
        let done_tx = done_tx.clone();
        pool.spawn(move || done_tx.send(i).unwrap()).unwrap();
    }
    // One worker takes the blocker with a batch of quick tasks behind it and
    // blocks; then the other is freed and must take the rest, stolen ones
    // included.
    drop(first);
    drop(second);
    let mut seen: Vec<usize> = (0..QUICK)
        .map(|_| {
            done.recv_timeout(Duration::from_secs(60))
                .expect("a quick task stayed behind the blocked one")
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..QUICK).collect::<Vec<_>>());
    drop(unblock);
    assert_eq!(stuck.join(), Ok(true));
}

#[test]
fn priorities_run_highest_first_and_fifo_within_a_priority() {
    let pool = BlockingPool::builder().workers(1).strict_priorities().build().unwrap();
    let gate = occupy(&pool, 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (name, priority) in [("low-a", 0), ("high-a", 5), ("low-b", 0), ("mid", 2), ("high-b", 5)] {
        let order = Arc::clone(&order);
        handles.push(
            pool.submit_with(TaskOptions::new().priority(priority), move || {
                order.lock().unwrap().push(name);
            })
            .unwrap(),
        );
    }
    drop(gate);
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["high-a", "high-b", "mid", "low-a", "low-b"]);
}

#[test]
fn try_submit_on_a_full_queue_hands_the_task_back() {
    let pool = BlockingPool::builder().workers(1).queue_capacity(2).build().unwrap();
    let gate = occupy(&pool, 1);
    let a = pool.try_submit(|| "a").unwrap();
    let b = pool.try_submit(|| "b").unwrap();
    let Err(SubmitError::Full(task)) = pool.try_submit(|| "c") else {
        panic!("queue should be full")
    };
    assert_eq!(task(), "c");
    let Err(SubmitError::Full(task)) = pool.submit(|| "d") else { panic!("reject policy refuses") };
    assert_eq!(task(), "d");
    assert_eq!(pool.metrics().rejected, 2);
    drop(gate);
    assert_eq!((a.join(), b.join()), (Ok("a"), Ok("b")));
}

#[test]
fn caller_runs_runs_the_task_on_the_submitter() {
    let pool = caller_runs();
    let gate = occupy(&pool, 1);
    let _queued = pool.submit(|| std::thread::current().id()).unwrap();
    let here = pool.submit(|| std::thread::current().id()).unwrap();
    assert_eq!(here.join(), Ok(std::thread::current().id()));
    assert_eq!(pool.metrics().caller_ran, 1);
    drop(gate);
}

#[test]
fn drop_oldest_evicts_and_hands_the_evicted_task_over() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let pool = BlockingPool::builder()
        .workers(1)
        .queue_capacity(2)
        .rejection(Rejection::DropOldest)
        .on_evict(move |task| sink.lock().unwrap().push(task))
        .build()
        .unwrap();
    let gate = occupy(&pool, 1);
    let first = pool.submit(|| 1).unwrap();
    let second = pool.submit(|| 2).unwrap();
    let third = pool.submit(|| 3).unwrap();
    // The oldest was handed to the callback; running it resolves its handle.
    let mut taken = evicted.lock().unwrap();
    assert_eq!(taken.len(), 1);
    taken.pop().unwrap().run();
    drop(taken);
    assert_eq!(first.join(), Ok(1));
    drop(gate);
    assert_eq!((second.join(), third.join()), (Ok(2), Ok(3)));
    assert_eq!(pool.metrics().evicted, 1);

    // Without a callback the evicted handle says so.
    let pool = BlockingPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::DropOldest)
        .build()
        .unwrap();
    let gate = occupy(&pool, 1);
    let old = pool.submit(|| 1).unwrap();
    let new = pool.submit(|| 2).unwrap();
    assert_eq!(old.join(), Err(JoinError::Evicted));
    drop(gate);
    assert_eq!(new.join(), Ok(2));
}

#[test]
fn block_policy_waits_for_room_then_times_out_with_the_task() {
    let pool = BlockingPool::builder()
        .workers(1)
        .queue_capacity(1)
        .rejection(Rejection::Block(Duration::from_millis(20)))
        .build()
        .unwrap();
    let gate = occupy(&pool, 1);
    let queued = pool.submit(|| 1).unwrap();
    let Err(SubmitError::Timeout(task)) = pool.submit(|| 2) else { panic!("should time out") };
    assert_eq!(task(), 2);
    // Room appears while a submitter waits: it gets in.
    let pool2 = pool.clone();
    let waiter = std::thread::spawn(move || {
        pool2.submit(|| 3).map(conc_pool::TaskHandle::join).map_err(|_| ())
    });
    drop(gate);
    assert_eq!(queued.join(), Ok(1));
    assert_eq!(waiter.join().unwrap(), Ok(Ok(3)));
}

#[test]
fn cancelling_a_queued_task_means_it_never_runs() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let gate = occupy(&pool, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let mut handle = pool.submit(move || r.fetch_add(1, Ordering::SeqCst)).unwrap();
    handle.cancel();
    // A dropped handle cancels too.
    let r = Arc::clone(&ran);
    drop(pool.submit(move || r.fetch_add(1, Ordering::SeqCst)).unwrap());
    drop(gate);
    assert_eq!(handle.join(), Err(JoinError::Cancelled));
    pool.submit(|| ()).unwrap().join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(pool.metrics().cancelled, 2);
}

#[test]
fn a_running_task_sees_cancellation_through_its_token() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let (started_tx, started) = mpsc::channel();
    let mut handle = pool
        .submit_cancellable(move |token| {
            started_tx.send(()).unwrap();
            while !token.is_cancelled() {
                std::thread::yield_now();
            }
            "stopped"
        })
        .unwrap();
    started.recv().unwrap();
    handle.cancel();
    assert_eq!(handle.join(), Err(JoinError::Cancelled));
    // The worker is free again.
    assert_eq!(pool.submit(|| 5).unwrap().join(), Ok(5));
}

#[test]
fn a_task_whose_deadline_passed_in_the_queue_is_not_started() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let gate = occupy(&pool, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let late = pool
        .submit_with(TaskOptions::new().timeout(Duration::ZERO), move || {
            r.fetch_add(1, Ordering::SeqCst)
        })
        .unwrap();
    drop(gate);
    assert_eq!(late.join(), Err(JoinError::DeadlineExceeded));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(pool.shutdown(Duration::from_secs(60)).is_clean());
    assert_eq!(pool.metrics().timed_out, 1);
}

#[test]
fn graceful_shutdown_runs_everything_queued() {
    let pool = BlockingPool::builder().workers(2).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..1_000)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst)).unwrap()
        })
        .collect();
    let report = pool.shutdown(Duration::from_secs(60));
    assert!(report.is_clean());
    assert_eq!(ran.load(Ordering::SeqCst), 1_000);
    assert!(handles.into_iter().all(|h| h.join().is_ok()));
    assert!(matches!(pool.submit(|| ()), Err(SubmitError::Closed(_))));
    assert_eq!(pool.metrics().workers, 0);
}

#[test]
fn shutdown_now_hands_back_exactly_what_did_not_run() {
    let pool = BlockingPool::builder().workers(2).build().unwrap();
    let gate = occupy(&pool, 2);
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..1_000)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst)).unwrap()
        })
        .collect();
    let report = pool.shutdown_now();
    drop(gate);
    assert_eq!(report.unstarted.len(), 1_000);
    assert_eq!(report.still_running, 2);
    // Run half of them by hand, drop the rest: every handle learns its fate.
    let mut unstarted = report.unstarted;
    let dropped = unstarted.split_off(500);
    for task in unstarted {
        task.run();
    }
    drop(dropped);
    let results: Vec<_> = handles.into_iter().map(conc_pool::TaskHandle::join).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 500);
    assert!(results[500..].iter().all(|r| *r == Err(JoinError::NotRun)));
    assert_eq!(ran.load(Ordering::SeqCst), 500);
    assert!(pool.join(Duration::from_secs(60)));
}

#[test]
fn a_flood_never_holds_more_than_the_queue_capacity() {
    // A producer far faster than the workers: live (not yet dropped) tasks
    // stay within capacity + workers, and every task is run or handed back.
    struct Live(Arc<AtomicUsize>);
    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let pool = BlockingPool::builder().workers(2).queue_capacity(64).build().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..100_000 {
        let now = live.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        let guard = Live(Arc::clone(&live));
        match pool.try_spawn(move || drop(guard)) {
            Ok(()) => accepted += 1,
            Err(error) => {
                refused += 1;
                drop(error.into_task());
            }
        }
    }
    assert!(pool.shutdown(Duration::from_secs(60)).is_clean());
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(peak.load(Ordering::SeqCst) <= 64 + 2 + 1, "peak {}", peak.load(Ordering::SeqCst));
    let m = pool.metrics();
    assert_eq!(m.completed, accepted);
    assert_eq!(m.rejected, refused);
}

/// Stuck detection reads the pool's clock: on a manual clock it is exact.
#[test]
fn stuck_workers_are_reported_on_the_pools_clock() {
    let (pool, clock) = watched(2);
    let gate = occupy(&pool, 1);
    clock.advance(Duration::from_millis(19));
    assert!(pool.health().is_healthy());
    clock.advance(Duration::from_millis(1));
    let health = pool.health();
    assert_eq!(health.stuck.len(), 1);
    assert_eq!(health.stuck[0].running_for, Duration::from_millis(20));
    assert_eq!(pool.metrics().stuck, 1);
    drop(gate);
}

#[test]
fn processor_maps_inputs_in_order() {
    let pool = BlockingPool::builder().workers(3).build().unwrap();
    let words = pool.processor(|s: &'static str| s.to_uppercase());
    let batch = words.submit_batch(["a", "b", "c"]).unwrap();
    let out: Vec<String> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(out, ["A", "B", "C"]);
}

#[test]
fn a_refused_batch_hands_back_the_rest() {
    let pool = BlockingPool::builder().workers(1).queue_capacity(2).build().unwrap();
    let gate = occupy(&pool, 1);
    let err = pool.submit_batch((0..5).map(|i| move || i)).unwrap_err();
    assert_eq!(err.accepted.len(), 2);
    assert_eq!(err.rejected.len(), 3);
    assert_eq!(err.rejected.into_iter().map(|f| f()).collect::<Vec<_>>(), [2, 3, 4]);
    drop(gate);
    assert_eq!(err.accepted.join(), [Ok(0), Ok(1)]);
}

/// Waits (bounded) for `condition`; panics naming `what` if it never holds.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("never happened: {what}");
}

#[test]
fn a_dynamic_pool_grows_before_queueing_and_retires_idle_workers() {
    let pool = BlockingPool::builder()
        .workers(1)
        .max_workers(4)
        .keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let started = Arc::new(AtomicUsize::new(0));
    // Four blocking tasks at once: each one that finds no idle worker starts one.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
            pool.submit(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = gate.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    eventually("all four tasks running at once", || started.load(Ordering::SeqCst) == 4);
    assert_eq!(pool.workers(), 4);
    assert!(pool.metrics().scaled_up >= 3);
    // A fifth waits: the pool is at its maximum.
    let fifth = pool.submit(|| 5).unwrap();
    assert_eq!(pool.workers(), 4);
    drop(release);
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(fifth.join(), Ok(5));
    // Idle past the keep-alive: back to the minimum, never below.
    eventually("idle workers retired to the minimum", || pool.workers() == 1);
    assert_eq!(pool.metrics().scaled_down, 3);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.submit(|| 6).unwrap().join(), Ok(6));
}

#[test]
fn manual_scaling_stays_within_bounds_and_never_interrupts_a_task() {
    let pool = BlockingPool::builder().workers(1).max_workers(3).build().unwrap();
    assert_eq!(pool.scale_up(10), 2);
    assert_eq!(pool.workers(), 3);
    eventually("three workers alive", || pool.metrics().workers == 3);
    let gate = occupy(&pool, 3);
    assert_eq!(pool.scale_down(10), 2);
    // The busy workers leave only after their task.
    drop(gate);
    eventually("scaled down to one", || pool.workers() == 1);
    eventually("slots released", || pool.metrics().workers == 1);
    pool.resize(2);
    assert_eq!(pool.workers(), 2);
    assert_eq!(pool.submit(|| 1).unwrap().join(), Ok(1));
    assert!(pool.shutdown(Duration::from_secs(60)).is_clean());
    assert_eq!(pool.workers(), 0);
}

/// Grows by three whenever work queues.
struct GrowByThree;

impl conc_pool::ScalePolicy for GrowByThree {
    fn decide(&self, snapshot: &conc_pool::ScaleSnapshot) -> conc_pool::ScaleDecision {
        match snapshot.trigger {
            conc_pool::ScaleTrigger::Queued => conc_pool::ScaleDecision::Grow(3),
            _ => conc_pool::ScaleDecision::Hold,
        }
    }
}

#[test]
fn a_blocking_pool_obeys_a_custom_scale_policy() {
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&decisions);
    let pool = BlockingPool::builder()
        .workers(1)
        .max_workers(4)
        .scale_policy(GrowByThree)
        .on_scale(move |s, d| sink.lock().unwrap().push((*s, d)))
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let gate = Arc::clone(&gate);
        handles.push(pool.submit(move || gate.lock().unwrap().recv().is_ok()).unwrap());
    }
    // The default policy would stop at two workers for two tasks; this one
    // grew by three on the first decision (capped at the maximum).
    assert_eq!(pool.workers(), 4);
    let seen = decisions.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(s, d)| s.trigger == conc_pool::ScaleTrigger::Queued
        && *d == conc_pool::ScaleDecision::Grow(3)
        && s.max_workers == 4));
    drop(release);
    for handle in handles {
        assert!(!handle.join().unwrap());
    }
}

#[test]
fn a_stuck_worker_is_replaced_and_capacity_is_kept() {
    let (pool, clock) = watched(1);
    let (release, hang) = mpsc::channel::<&'static str>();
    let stuck = pool.submit(move || hang.recv().unwrap()).unwrap();
    while pool.metrics().busy == 0 {
        std::thread::yield_now();
    }
    clock.advance(Duration::from_millis(20));
    assert_eq!(pool.health().stuck.len(), 1);
    // The only worker is stuck; this task queues, which replaces it.
    let next = pool.submit(|| "served by the replacement").unwrap();
    assert_eq!(next.join(), Ok("served by the replacement"));
    let m = pool.metrics();
    assert_eq!(m.replaced, 1);
    assert_eq!(m.workers, 1, "the stuck worker no longer counts, its replacement does");
    // The stuck one is still reported until its task ends.
    assert_eq!(pool.health().stuck.len(), 1);
    release.send("finished late").unwrap();
    assert_eq!(stuck.join(), Ok("finished late"));
    // A worker counts a task just after its handle resolves: wait for both
    // to be done before moving the clock past the threshold again.
    while !pool.health().is_healthy() || pool.metrics().busy != 0 {
        std::thread::yield_now();
    }
    // Still one worker, serving; no further replacement.
    clock.advance(Duration::from_millis(100));
    assert_eq!(pool.submit(|| 5).unwrap().join(), Ok(5));
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.metrics().replaced, 1);
    assert!(pool.shutdown(Duration::from_secs(5)).is_clean());
}

/// Deadlines of blocking tasks are checked on the pool's clock.
#[test]
fn a_queued_task_past_its_deadline_on_the_pools_clock_is_not_started() {
    let clock = ManualClock::new();
    let pool = BlockingPool::builder().workers(1).clock(clock.clone()).build().unwrap();
    let gate = occupy(&pool, 1);
    let in_time =
        pool.submit_with(TaskOptions::new().timeout(Duration::from_millis(10)), || 1).unwrap();
    let late =
        pool.submit_with(TaskOptions::new().timeout(Duration::from_millis(9)), || 2).unwrap();
    clock.advance(Duration::from_millis(9));
    drop(gate);
    assert_eq!(in_time.join(), Ok(1));
    assert_eq!(late.join(), Err(JoinError::DeadlineExceeded));
    // The worker counts the outcome just after it hands the result over.
    for _ in 0..10_000 {
        if pool.metrics().timed_out == 1 {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(pool.metrics().timed_out, 1);
}

/// Counts its drops.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn spawned_closures_left_queued_at_shutdown_are_handed_back_and_dropped_once() {
    // A one-word closure is stored in the queue entry itself, a wider one in
    // an allocation: both come back from a shutdown, run or dropped once.
    let pool = BlockingPool::builder().workers(1).build().unwrap();
    let release = occupy(&pool, 1);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..100_u64 {
        let guard = DropCount(Arc::clone(&drops));
        if i % 2 == 0 {
            pool.spawn(move || drop(guard)).unwrap();
        } else {
            let ran = Arc::clone(&ran);
            pool.spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                drop(guard);
            })
            .unwrap();
        }
    }
    let report = pool.shutdown_now();
    assert_eq!(report.unstarted.len(), 100);
    for (index, task) in report.unstarted.into_iter().enumerate() {
        if index % 4 < 2 {
            task.run();
        }
    }
    assert_eq!(drops.load(Ordering::SeqCst), 100);
    assert_eq!(ran.load(Ordering::SeqCst), 25, "the wide closures of every other pair ran");
    drop(release);
}
