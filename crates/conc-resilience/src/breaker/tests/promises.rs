//! Promises of the breaker's docs that need its insides to check: no event
//! is built without subscribers, and the closed path takes no lock.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use conc_core::time::ManualClock;

use crate::{BreakerState, CircuitBreaker, CircuitBreakerBuilder, FailureWindow};

fn builder(clock: &ManualClock) -> CircuitBreakerBuilder {
    CircuitBreaker::builder()
        .sliding_window(FailureWindow::count(4))
        .minimum_calls(2)
        .permitted_calls_in_half_open(2)
        .clock(clock.clone())
}

/// Every kind of event: per-call outcomes, a rejection, automatic and manual
/// transitions, probes, and a threshold reached in metrics-only state.
fn every_event(breaker: &CircuitBreaker, clock: &ManualClock) {
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().ignore();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Closed);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    let _ = breaker.try_acquire().unwrap_err();
    clock.advance(Duration::from_secs(60));
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    breaker.metrics_only();
    for _ in 0..4 {
        breaker.try_acquire().unwrap().failure();
    }
    breaker.force_open();
    breaker.reset();
}

/// "Without subscribers no event is built": not one, on any path.
#[test]
fn no_event_is_built_without_subscribers() {
    let clock = ManualClock::new();
    let quiet = builder(&clock).build().unwrap();
    every_event(&quiet, &clock);
    assert_eq!(quiet.shared.events_built.load(Ordering::Relaxed), 0);

    // The same run with a subscriber builds them (so the count above can fail).
    let clock = ManualClock::new();
    let heard = builder(&clock).on_event(|_| {}).build().unwrap();
    every_event(&heard, &clock);
    assert!(heard.shared.events_built.load(Ordering::Relaxed) >= 14);
}

/// "The closed path takes no lock": calls are admitted and recorded while
/// another thread holds the only lock the breaker has.
#[test]
fn the_closed_path_takes_no_lock() {
    // Half the calls fail, below a threshold of 100 %: the breaker stays closed.
    let breaker = builder(&ManualClock::new()).failure_rate_threshold(1.0).build().unwrap();
    let held = breaker.shared.lock();
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..1_000 {
                let permit = breaker.try_acquire().unwrap();
                if round % 2 == 0 { permit.success() } else { permit.failure() }
            }
            done.send(()).unwrap();
        });
        // A guard against a hang, not a measurement: the calls need no lock at all.
        let result = finished.recv_timeout(Duration::from_secs(60));
        drop(held);
        assert!(result.is_ok(), "the closed path waited for the breaker's lock");
    });
}
