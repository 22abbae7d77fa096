//! Loom models of the breaker's state machine.

use loom::sync::Arc;
use loom::thread;

use conc_core::time::ManualClock;

use crate::{BreakerState, CircuitBreaker, FailureWindow};

fn breaker(window: u32, half_open: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .sliding_window(FailureWindow::count(window))
        .minimum_calls(window)
        .failure_rate_threshold(0.5)
        .permitted_calls_in_half_open(half_open)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// Two threads record failures into a closed breaker at once: whatever the
/// interleaving, the totals end exact, the breaker ends open, and it opened
/// exactly once.
#[test]
fn loom_concurrent_failures_open_exactly_once() {
    loom::model(|| {
        let opened = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let sink = Arc::clone(&opened);
        let breaker = CircuitBreaker::builder()
            .sliding_window(FailureWindow::count(2))
            .minimum_calls(2)
            .clock(ManualClock::new())
            .on_event(move |event| {
                if matches!(event, crate::BreakerEvent::StateTransition { .. }) {
                    sink.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                }
            })
            .build()
            .unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire().expect("closed admits").failure())
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.metrics().failed_calls, 2);
        assert_eq!(opened.load(loom::sync::atomic::Ordering::SeqCst), 1);
    });
}

/// A breaker of `window` calls that fails only at a failure rate of 100 %.
fn tolerant(window: u32) -> CircuitBreaker {
    let breaker = breaker(window, 1);
    breaker
        .update(|config| {
            config.failure_rate_threshold(1.0);
        })
        .unwrap();
    breaker
}

/// Records `successes` successes, then races one more success on this
/// thread against a failure on another.
fn race_success_and_failure(breaker: &CircuitBreaker, successes: usize) {
    for _ in 0..successes {
        breaker.try_acquire().unwrap().success();
    }
    let other = breaker.clone();
    let failing = thread::spawn(move || other.try_acquire().unwrap().failure());
    breaker.try_acquire().unwrap().success();
    failing.join().unwrap();
}

/// A success and a failure racing into a window whose slot they both
/// overwrite leave totals that match the slots.
#[test]
fn loom_overwriting_records_keep_totals_exact() {
    loom::model(|| {
        let breaker = tolerant(1);
        breaker.disable();
        breaker.metrics_only();
        race_success_and_failure(&breaker, 1);
        let metrics = breaker.metrics();
        assert_eq!(metrics.calls, 1);
        assert!(metrics.failed_calls <= 1);
    });
}

/// A success taking the full-of-successes shortcut races a failure into the
/// same window: the failure is counted whatever the interleaving, and the
/// totals match the slots.
#[test]
fn loom_success_shortcut_never_hides_a_failure() {
    loom::model(|| {
        let breaker = breaker(2, 1);
        breaker.metrics_only();
        race_success_and_failure(&breaker, 2);
        let metrics = breaker.metrics();
        assert_eq!((metrics.calls, metrics.failed_calls), (2, 1));
    });
}

/// The same race in the closed state, where the success's record is decided
/// inline before the window is reached: the failure is counted and, below the
/// threshold, the breaker stays closed.
#[test]
fn loom_closed_success_shortcut_never_hides_a_failure() {
    loom::model(|| {
        let breaker = tolerant(2);
        race_success_and_failure(&breaker, 2);
        let metrics = breaker.metrics();
        assert_eq!((metrics.calls, metrics.failed_calls), (2, 1));
        assert_eq!(breaker.state(), BreakerState::Closed);
    });
}

/// Three callers race for two half-open probe slots: at most two are admitted,
/// and a dropped probe's slot is reusable.
#[test]
fn loom_half_open_probes_never_exceed_the_limit() {
    loom::model(|| {
        let breaker = breaker(2, 2);
        breaker.transition_to_half_open();
        let admitted = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                let admitted = Arc::clone(&admitted);
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire_owned() {
                        admitted.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                        Some(permit)
                    } else {
                        None
                    }
                })
            })
            .collect();
        let permits: Vec<_> =
            threads.into_iter().filter_map(|thread| thread.join().unwrap()).collect();
        assert_eq!(admitted.load(loom::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(permits.len(), 2);
        assert!(breaker.try_acquire().is_err());
        drop(permits);
        let again = breaker.try_acquire().expect("dropped probes give their slots back");
        again.success();
    });
}

/// Two probes report concurrently: the breaker leaves half-open exactly once,
/// to the state their outcomes decide.
#[test]
fn loom_half_open_decides_once() {
    loom::model(|| {
        let breaker = breaker(2, 2);
        breaker.transition_to_half_open();
        let first = breaker.try_acquire_owned().unwrap();
        let second = breaker.try_acquire_owned().unwrap();
        let a = thread::spawn(move || first.failure());
        let b = thread::spawn(move || second.failure());
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_err());
    });
}

/// Two threads are refused by one open breaker at once: whatever the
/// interleaving of their stripe bumps (a failed compare-exchange moves the
/// thread to another stripe), both refusals are counted exactly once.
#[test]
fn loom_concurrent_rejections_count_exactly() {
    loom::model(|| {
        let breaker = breaker(1, 1);
        breaker.force_open();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || assert!(breaker.try_acquire().is_err()))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(breaker.metrics().not_permitted, 2);
    });
}
