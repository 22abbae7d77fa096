//! Promises of the guide and the crate docs that no other test holds to:
//! clock reads, panics, timers, windows.

use std::future::Future as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conc_core::time::{Clock, ManualClock};
use conc_resilience::{
    BreakerState, Bulkhead, CircuitBreaker, FailureWindow, LoadShedder, Timeout,
};

mod support;

/// A clock that counts how often it is read.
#[derive(Debug, Clone, Default)]
struct CountingClock {
    inner: ManualClock,
    reads: Arc<AtomicU64>,
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.now()
    }
}

/// Runs 1 000 closed calls (admit and record, half of them failures, below
/// the threshold) and returns how often the clock was read meanwhile.
fn clock_reads_of_closed_calls(window: FailureWindow) -> u64 {
    clock_reads_of(CircuitBreaker::builder().sliding_window(window))
}

fn clock_reads_of(builder: conc_resilience::CircuitBreakerBuilder) -> u64 {
    let clock = CountingClock::default();
    let breaker = builder.failure_rate_threshold(1.0).clock(clock.clone()).build().unwrap();
    let before = clock.reads.load(Ordering::SeqCst);
    for round in 0..1_000 {
        let permit = breaker.try_acquire().unwrap();
        if round % 2 == 0 { permit.success() } else { permit.failure() }
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    clock.reads.load(Ordering::SeqCst) - before
}

/// "A count window reads no clock" on the closed path; a time window does
/// (so the count is a real measurement).
#[test]
fn a_count_window_reads_no_clock() {
    assert_eq!(clock_reads_of_closed_calls(FailureWindow::count(100)), 0);
    assert!(clock_reads_of_closed_calls(FailureWindow::time(Duration::from_secs(10))) >= 1_000);
}

/// "With slow-call detection on, each call reads the clock twice" (a count
/// window otherwise reads none).
#[test]
fn slow_call_detection_reads_the_clock_twice_per_call() {
    let builder = CircuitBreaker::builder().slow_call(Duration::from_secs(1), 1.0);
    assert_eq!(clock_reads_of(builder), 2_000);
}

/// A time window is split into one-second buckets, or ten when its duration
/// is not a whole number of seconds (or is longer than 1024 s).
#[test]
fn time_windows_pick_their_buckets() {
    let buckets = |window| match window {
        FailureWindow::Time { buckets, .. } => buckets,
        other => panic!("{other:?}"),
    };
    assert_eq!(buckets(FailureWindow::time(Duration::from_secs(30))), 30);
    assert_eq!(buckets(FailureWindow::time(Duration::from_millis(1_500))), 10);
    assert_eq!(buckets(FailureWindow::time(Duration::from_secs(2_000))), 10);
}

/// "Rates are computed once the window holds `minimum_calls` calls (capped by
/// a count window's size)".
#[test]
fn the_minimum_is_capped_by_a_count_window() {
    let breaker = CircuitBreaker::builder()
        .sliding_window(FailureWindow::count(10))
        .minimum_calls(100)
        .build()
        .unwrap();
    for _ in 0..9 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.metrics().failure_rate, None);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open, "ten calls fill a window of ten");
}

/// "A panic never leaks a slot": a call that panics inside the bulkhead, a
/// half-open probe of the breaker, the shedder or a whole stack gives back
/// everything it held while unwinding.
#[tokio::test]
async fn a_panic_never_leaks_a_slot() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let breaker = CircuitBreaker::builder().permitted_calls_in_half_open(1).build().unwrap();
    breaker.transition_to_half_open();
    let shedder = LoadShedder::builder(1).build().unwrap();
    let stack = support::guarded(&shedder, &breaker, &bulkhead);

    let panics = [
        tokio::spawn({
            let bulkhead = bulkhead.clone();
            async move { bulkhead.call(async { panic!("in the bulkhead") }).await.map(drop) }
        }),
        tokio::spawn({
            let breaker = breaker.clone();
            async move {
                let _: Result<(), conc_resilience::BreakerError<()>> =
                    breaker.call(async { panic!("in a probe") }).await;
                Ok(())
            }
        }),
        tokio::spawn(async move {
            let _: Result<(), conc_resilience::ResilienceError<()>> =
                stack.run(|_| async { panic!("in the stack") }).await;
            Ok(())
        }),
    ];
    for task in panics {
        assert!(task.await.unwrap_err().is_panic());
    }
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!(shedder.metrics().load, 0);
    assert_eq!(breaker.state(), BreakerState::HalfOpen, "a panic records nothing");
    breaker.try_acquire().expect("the probe came back").success();
    assert_eq!(breaker.state(), BreakerState::Closed);

    // A plain permit held across a panic, caught on this thread.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _slot = bulkhead.try_acquire().unwrap();
        let _units = shedder.try_admit(1).unwrap();
        panic!("holding both");
    }));
    assert!(caught.is_err());
    assert_eq!((bulkhead.metrics().available, shedder.metrics().load), (1, 0));
}

/// "A call that completes on its first poll never arms a timer": it runs
/// with no tokio timer at all (arming one would panic outside a runtime).
#[test]
fn a_timeout_on_a_ready_call_arms_no_timer() {
    let timeout = Timeout::new(Duration::from_secs(1)).unwrap();
    assert_eq!(futures::executor::block_on(timeout.call(async { 7 })), Ok(7));
    // Whereas a call that waits needs the timer.
    let pending = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut call = Box::pin(timeout.call(std::future::pending::<()>()));
        let _ = call.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    }));
    assert!(pending.is_err(), "arming the timer needs a runtime");
}

/// "Every rejection is a small value": `Copy`, no larger than three words.
#[test]
fn rejections_are_small_values() {
    fn small<T: Copy>() -> usize {
        std::mem::size_of::<T>()
    }
    assert!(small::<conc_resilience::Rejected>() <= 24);
    assert!(small::<conc_resilience::BulkheadError>() <= 24);
    assert!(small::<conc_resilience::Shed>() <= 32);
    assert!(small::<conc_resilience::Elapsed>() <= 16);
}

/// "A duration too long for the timer (such as `Duration::MAX`) never fires."
#[tokio::test(start_paused = true)]
async fn a_timeout_too_long_for_the_timer_never_fires() {
    let timeout = Timeout::new(Duration::MAX).unwrap();
    let slow = timeout.call(tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)));
    assert_eq!(slow.await, Ok(()));
}

/// "Subscribers are called synchronously, outside every internal lock": a
/// subscriber may read the breaker (which takes its lock) without deadlock.
#[test]
fn subscribers_run_outside_the_breakers_lock() {
    let cell: Arc<std::sync::OnceLock<CircuitBreaker>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    let breaker = {
        let (cell, seen) = (Arc::clone(&cell), Arc::clone(&seen));
        CircuitBreaker::builder()
            .on_event(move |_| {
                if let Some(breaker) = cell.get() {
                    // Both take the lock transitions hold.
                    let _ = (breaker.config(), breaker.state());
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            })
            .build()
            .unwrap()
    };
    cell.set(breaker.clone()).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            breaker.force_open();
            breaker.transition_to_closed();
            breaker.try_acquire().unwrap().success();
            done.send(()).unwrap();
        });
        // A guard against a deadlock, not a measurement.
        assert!(finished.recv_timeout(Duration::from_secs(60)).is_ok(), "a subscriber deadlocked");
    });
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

/// "Cheap to clone: clones share the load" (and the slots, and the state).
#[test]
fn clones_share_their_state() {
    let shedder = LoadShedder::builder(2).build().unwrap();
    let _units = shedder.clone().try_admit(2).unwrap();
    assert!(shedder.try_admit(1).is_err());
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let _slot = bulkhead.clone().try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.clone().force_open();
    assert_eq!(breaker.state(), BreakerState::ForcedOpen);
}

/// "Handlers are tried in the order added; the first that answers wins."
#[test]
fn the_first_fallback_handler_that_answers_wins() {
    use conc_resilience::{ErrorKind, Fallback, ResilienceError};

    let fallback: Fallback<&str, ()> = Fallback::new()
        .on_inner(|()| None)
        .on(ErrorKind::Inner, |_| "second")
        .on_inner(|()| Some("third"));
    assert_eq!(fallback.apply(Err(ResilienceError::Inner(()))), Ok("second"));
}
