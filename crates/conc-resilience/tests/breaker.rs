//! The circuit breaker against the Resilience4j and Polly state-machine
//! scenarios (research §(c)), on a `ManualClock`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::time::ManualClock;
use conc_resilience::{
    BreakerError, BreakerEvent, BreakerState, CallOutcome, CircuitBreaker, CircuitBreakerBuilder,
    FailureWindow, HalfOpenTimeout, TransitionReason,
};

const SECOND: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct NumberFormat;

/// Resilience4j's shared fixture: failure 50 %, slow 50 % at 4 s, 4 probes,
/// 20 s time window with 5 minimum calls, 5 s wait, 1 s maximum in half-open.
/// (Its `NumberFormat` errors are ignored by [`ignore_number_format`] where a
/// test needs it.)
fn r4j(clock: &ManualClock) -> CircuitBreakerBuilder {
    CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .slow_call(Duration::from_secs(4), 0.5)
        .permitted_calls_in_half_open(4)
        .sliding_window(FailureWindow::time(Duration::from_secs(20)))
        .minimum_calls(5)
        .wait_in_open(Duration::from_secs(5))
        .clock(clock.clone())
}

/// Resilience4j's `ignoreExceptions(NumberFormatException)`, as a typed policy.
fn ignore_number_format(result: &Result<(), NumberFormat>) -> CallOutcome {
    match result {
        Err(NumberFormat) => CallOutcome::Ignore,
        Ok(()) => CallOutcome::Success,
    }
}

/// Runs one call that takes `took` and ends in `outcome`.
fn run<C>(
    breaker: &CircuitBreaker<(), C>,
    clock: &ManualClock,
    took: Duration,
    outcome: CallOutcome,
) {
    let permit = breaker.try_acquire().expect("admitted");
    clock.advance(took);
    permit.record_outcome(outcome);
}

fn events<C>(
    builder: CircuitBreakerBuilder<C>,
) -> (CircuitBreakerBuilder<C>, Arc<Mutex<Vec<BreakerEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (builder.on_event(move |event| sink.lock().unwrap().push(event.clone())), seen)
}

fn transitions(seen: &Mutex<Vec<BreakerEvent>>) -> Vec<(BreakerState, BreakerState)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            BreakerEvent::StateTransition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn open_it<C>(breaker: &CircuitBreaker<(), C>, clock: &ManualClock) {
    for _ in 0..5 {
        run(breaker, clock, Duration::ZERO, CallOutcome::Failure);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

fn half_open_it<C>(breaker: &CircuitBreaker<(), C>, clock: &ManualClock) {
    breaker.transition_to_open();
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

/// R4j 1: F,F,F,S stay closed with no rate; the fifth call opens at 60 %.
#[test]
fn opens_after_failure_rate_threshold_exceeded() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).sliding_window(FailureWindow::count(10)).build().unwrap();
    for outcome in
        [CallOutcome::Failure, CallOutcome::Failure, CallOutcome::Failure, CallOutcome::Success]
    {
        run(&breaker, &clock, Duration::ZERO, outcome);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.metrics().failure_rate, None);
    }
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Success);
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, BreakerState::Open);
    assert_eq!(metrics.failure_rate, Some(0.6));
    assert_eq!((metrics.calls, metrics.failed_calls, metrics.not_permitted), (5, 3, 0));
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.metrics().not_permitted, 1);
}

/// R4j 2 (time window): 40 % stays closed; the sixth call makes exactly 50 % and opens (≥).
#[test]
fn time_window_opens_at_exactly_the_threshold() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    for outcome in [
        CallOutcome::Success,
        CallOutcome::Success,
        CallOutcome::Success,
        CallOutcome::Failure,
        CallOutcome::Failure,
    ] {
        run(&breaker, &clock, Duration::ZERO, outcome);
        clock.advance(SECOND);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().failure_rate, Some(0.4));
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
}

/// A time window forgets calls older than its duration.
#[test]
fn time_window_forgets_old_calls() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    for _ in 0..4 {
        run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    }
    clock.advance(Duration::from_secs(21));
    // The four failures are out of the window: one failure is 1 call, below the minimum.
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    assert_eq!(breaker.metrics().calls, 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// R4j 3: slow calls alone open the breaker (60 % slow, 40 % failed).
#[test]
fn opens_after_slow_call_rate_threshold_exceeded() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    let five = Duration::from_secs(5);
    let short = Duration::from_millis(100);
    run(&breaker, &clock, five, CallOutcome::Failure);
    run(&breaker, &clock, five, CallOutcome::Success);
    run(&breaker, &clock, short, CallOutcome::Failure);
    run(&breaker, &clock, short, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    run(&breaker, &clock, five, CallOutcome::Success);
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, BreakerState::Open);
    assert_eq!(metrics.slow_call_rate, Some(0.6));
    assert_eq!(metrics.slow_calls, 3);
    assert_eq!(metrics.failure_rate, Some(0.4));
}

/// R4j 4: half-open admits exactly four probes, and four fresh ones next time.
#[test]
fn permits_exactly_four_calls_in_half_open() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    half_open_it(&breaker, &clock);
    let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().expect("a probe slot")).collect();
    assert!(probes.iter().all(conc_resilience::Permit::is_probe));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), BreakerState::HalfOpen);
    assert!(breaker.try_acquire().is_err());
    drop(probes);
    breaker.transition_to_open();
    clock.advance(Duration::from_secs(5));
    let fresh: Vec<_> =
        (0..4).map(|_| breaker.try_acquire().expect("a fresh probe slot")).collect();
    assert!(breaker.try_acquire().is_err());
    drop(fresh);
}

/// R4j 5: rejected while the wait lasts, half-open on the first call after it.
#[test]
fn transitions_to_half_open_after_wait_duration() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    open_it(&breaker, &clock);
    clock.advance(Duration::from_secs(3));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(breaker.metrics().not_permitted, 1);
    clock.advance(Duration::from_secs(3));
    let permit = breaker.try_acquire().expect("a probe");
    assert!(permit.is_probe());
    assert_eq!(breaker.metrics().state, BreakerState::HalfOpen);
    assert_eq!(breaker.metrics().calls, 0, "half-open starts with fresh metrics");
    permit.success();
}

/// R4j 6: the wait grows on consecutive openings: 5 s, then 7.5 s.
#[test]
fn wait_grows_with_consecutive_openings() {
    let clock = ManualClock::new();
    let backoff = Backoff::exponential(Duration::from_secs(5)).factor(1.5).build().unwrap();
    let breaker =
        r4j(&clock).wait_in_open_backoff(backoff).permitted_calls_in_half_open(1).build().unwrap();
    open_it(&breaker, &clock);
    clock.advance(Duration::from_secs(5));
    breaker.try_acquire().expect("probe after 5 s").failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.retry_after(), Some(Duration::from_millis(7_500)));
    clock.advance(Duration::from_secs(6));
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // Closing starts the growth over.
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    open_it(&breaker, &clock);
    assert_eq!(breaker.retry_after(), Some(Duration::from_secs(5)));
}

/// R4j 7: probes F,F,S,F open again at 75 %.
#[test]
fn half_open_opens_again_above_failure_threshold() {
    let clock = ManualClock::new();
    let (builder, seen) = events(r4j(&clock));
    let breaker = builder.build().unwrap();
    half_open_it(&breaker, &clock);
    for outcome in [CallOutcome::Failure, CallOutcome::Failure, CallOutcome::Success] {
        run(&breaker, &clock, Duration::ZERO, outcome);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
    let reason = seen.lock().unwrap().iter().rev().find_map(|event| match event {
        BreakerEvent::StateTransition { reason, .. } => Some(*reason),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(TransitionReason::FailureRate { rate: 0.75, threshold: 0.5, calls: 4 })
    );
}

/// R4j 8: slow probes alone open again (75 % slow, no failure).
#[test]
fn half_open_opens_again_above_slow_threshold() {
    let clock = ManualClock::new();
    let (builder, seen) = events(r4j(&clock));
    let breaker = builder.build().unwrap();
    half_open_it(&breaker, &clock);
    for _ in 0..3 {
        run(&breaker, &clock, Duration::from_secs(5), CallOutcome::Success);
    }
    run(&breaker, &clock, SECOND, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Open);
    let reason = seen.lock().unwrap().iter().rev().find_map(|event| match event {
        BreakerEvent::StateTransition { reason, .. } => Some(*reason),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(TransitionReason::SlowCallRate { rate: 0.75, threshold: 0.5, calls: 4 })
    );
}

/// R4j 9: probes F,S,S,S close with a fresh window; the next call is the only one in it.
#[test]
fn half_open_closes_below_threshold_and_resets_metrics() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).build().unwrap();
    half_open_it(&breaker, &clock);
    for outcome in
        [CallOutcome::Failure, CallOutcome::Success, CallOutcome::Success, CallOutcome::Success]
    {
        run(&breaker, &clock, Duration::ZERO, outcome);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().calls, 0);
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Success);
    assert_eq!(breaker.metrics().calls, 1);
}

/// R4j 10: half-open with no calls leaves after its maximum wait: to open, or to closed.
#[test]
fn half_open_cannot_wedge() {
    for (target, expected) in [
        (HalfOpenTimeout::Open, BreakerState::Open),
        (HalfOpenTimeout::Closed, BreakerState::Closed),
    ] {
        let clock = ManualClock::new();
        let breaker = r4j(&clock).max_wait_in_half_open(SECOND, target).build().unwrap();
        half_open_it(&breaker, &clock);
        // Four probes taken and never reported, as by callers that vanished.
        let lost: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
        std::mem::forget(lost);
        assert!(breaker.try_acquire().is_err());
        clock.advance(SECOND);
        assert_eq!(breaker.state(), expected);
    }
}

/// R4j 11 and Polly#1979: an ignored probe gives its slot back, and the next probe is admitted.
#[test]
fn ignored_error_releases_the_probe_slot() {
    let clock = ManualClock::new();
    let breaker =
        r4j(&clock).permitted_calls_in_half_open(1).classify(ignore_number_format).build().unwrap();
    half_open_it(&breaker, &clock);
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    probe.record(&Err(NumberFormat));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(breaker.metrics().calls, 0, "an ignored call counts neither way");
    breaker.try_acquire().expect("the slot came back").success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// An ignored error in closed state counts neither way.
#[test]
fn ignored_error_is_not_counted_when_closed() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).classify(ignore_number_format).build().unwrap();
    for _ in 0..10 {
        breaker.try_acquire().unwrap().record(&Err(NumberFormat));
    }
    assert_eq!(breaker.metrics().calls, 0);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// R4j 12: no event for a transition to the state the breaker is already in.
#[test]
fn no_event_for_internal_transitions() {
    let clock = ManualClock::new();
    let (builder, seen) = events(r4j(&clock));
    let breaker = builder.build().unwrap();
    breaker.transition_to_closed();
    breaker.transition_to_closed();
    assert!(transitions(&seen).is_empty());
    breaker.transition_to_open();
    breaker.transition_to_open();
    assert_eq!(transitions(&seen), [(BreakerState::Closed, BreakerState::Open)]);
}

/// R4j 13: disabled admits and records nothing; forced open rejects; metrics-only records and never opens.
#[test]
fn manual_states() {
    let clock = ManualClock::new();
    let (builder, seen) = events(r4j(&clock));
    let breaker = builder.build().unwrap();

    breaker.disable();
    for _ in 0..10 {
        run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    }
    assert_eq!(breaker.state(), BreakerState::Disabled);
    assert_eq!(breaker.metrics().calls, 0);

    breaker.force_open();
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!((rejected.state(), rejected.retry_after()), (BreakerState::ForcedOpen, None));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(breaker.state(), BreakerState::ForcedOpen);

    breaker.metrics_only();
    for _ in 0..10 {
        run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    }
    assert_eq!(breaker.state(), BreakerState::MetricsOnly);
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
    let exceeded = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|event| matches!(event, BreakerEvent::ThresholdExceeded { .. }))
        .count();
    assert_eq!(exceeded, 6, "calls five to ten each reach the threshold");

    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().calls, 0);
    assert_eq!(breaker.metrics().not_permitted, 0);
}

/// Polly `Flow_Closed_HalfOpen_Open_HalfOpen_Closed`, with exact `retry_after`.
#[test]
fn polly_flow_half_open_open_half_open_closed() {
    let clock = ManualClock::new();
    let brk = Duration::from_secs(5);
    let (builder, seen) = events(r4j(&clock).permitted_calls_in_half_open(1));
    let breaker = builder.build().unwrap();
    open_it(&breaker, &clock);
    clock.advance(brk);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(Duration::from_millis(1));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), brk.checked_sub(Duration::from_millis(1)));
    clock.advance(brk * 2);
    let probe = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    let (closed, open, half_open) =
        (BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen);
    assert_eq!(
        transitions(&seen),
        [
            (closed, open),
            (open, half_open),
            (half_open, open),
            (open, half_open),
            (half_open, closed)
        ]
    );
}

/// Polly `HalfOpen_EnsureBreakDuration`: one probe; callers behind it are rejected
/// until it reports, even long after the wait.
#[test]
fn polly_one_probe_per_break() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).permitted_calls_in_half_open(1).build().unwrap();
    open_it(&breaker, &clock);
    clock.advance(Duration::from_secs(5));
    let probe = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(breaker.try_acquire().unwrap_err().state(), BreakerState::HalfOpen);
    }
    probe.failure();
    assert_eq!(breaker.state(), BreakerState::Open);
}

/// Polly: a dynamic break duration sees the count of openings and saturates
/// instead of overflowing.
#[test]
fn growing_wait_saturates() {
    let clock = ManualClock::new();
    let backoff = Backoff::exponential(SECOND).build().unwrap();
    let breaker =
        r4j(&clock).wait_in_open_backoff(backoff).permitted_calls_in_half_open(1).build().unwrap();
    open_it(&breaker, &clock);
    for _ in 0..200 {
        breaker.transition_to_half_open();
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    // The wait saturated at the largest representable instant (about 584 years).
    assert!(breaker.retry_after().unwrap() > Duration::from_secs(1 << 34));
}

/// A backoff with a retry limit repeats its last delay.
#[test]
fn limited_backoff_repeats_its_last_delay() {
    let clock = ManualClock::new();
    let backoff = Backoff::linear(SECOND, SECOND).max_retries(2).build().unwrap();
    let breaker =
        r4j(&clock).wait_in_open_backoff(backoff).permitted_calls_in_half_open(1).build().unwrap();
    let mut waits = Vec::new();
    open_it(&breaker, &clock);
    waits.push(breaker.retry_after().unwrap());
    for _ in 0..3 {
        breaker.transition_to_half_open();
        breaker.try_acquire().unwrap().failure();
        waits.push(breaker.retry_after().unwrap());
    }
    assert_eq!(waits, [1, 2, 2, 2].map(Duration::from_secs));
}

/// Dropping a permit records nothing and gives the probe slot back; a
/// cancelled `call` future does the same.
#[test]
fn dropped_permits_and_cancelled_calls_release_probe_slots() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).permitted_calls_in_half_open(2).build().unwrap();
    half_open_it(&breaker, &clock);
    for _ in 0..100 {
        let a = breaker.try_acquire().unwrap();
        let b = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());
        drop((a, b));
    }
    // A `call` future polled once (it holds a probe) and then dropped.
    let mut call = Box::pin(breaker.call(std::future::pending::<Result<(), ()>>()));
    let waker = std::task::Waker::noop();
    assert!(call.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
    let held = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err(), "the pending call holds the other slot");
    drop(call);
    drop(held);
    assert_eq!(breaker.metrics().calls, 0);
    let probes: Vec<_> =
        (0..2).map(|_| breaker.try_acquire().expect("both slots are back")).collect();
    drop(probes);
}

use std::future::Future as _;

/// `call` runs the future, records its result and hands rejections back as values.
#[test]
fn call_records_and_rejects() {
    futures::executor::block_on(async {
        let clock = ManualClock::new();
        let breaker = r4j(&clock).sliding_window(FailureWindow::count(5)).build().unwrap();
        assert_eq!(breaker.call(async { Ok::<_, &str>(7) }).await, Ok(7));
        for _ in 0..4 {
            assert_eq!(
                breaker.call(async { Err::<(), _>("down") }).await,
                Err(BreakerError::Inner("down"))
            );
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let mut ran = false;
        let result = breaker
            .call(async {
                ran = true;
                Ok::<_, &str>(())
            })
            .await;
        assert!(result.unwrap_err().rejected().is_some());
        assert!(!ran, "a rejected future is never polled");
    });
}

/// A typed policy turns an `Ok` into a failure and makes some errors
/// successes; the same breaker, reclassified, counts another call site's
/// results by that site's own types.
#[test]
fn typed_classification() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .minimum_calls(5)
        .sliding_window(FailureWindow::count(5))
        .classify(|result: &Result<u16, std::io::Error>| match result {
            Ok(status) if *status >= 500 => CallOutcome::Failure,
            Err(error) if error.kind() != std::io::ErrorKind::TimedOut => CallOutcome::Success,
            other => CallOutcome::of(other),
        })
        .clock(clock)
        .build()
        .unwrap();
    breaker.try_acquire().unwrap().record(&Ok(503));
    breaker.try_acquire().unwrap().record(&Ok(200));
    breaker.try_acquire().unwrap().record(&Err(std::io::Error::from(std::io::ErrorKind::NotFound)));
    breaker.try_acquire().unwrap().record(&Err(std::io::Error::from(std::io::ErrorKind::TimedOut)));
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failed_calls), (4, 2));
    // Another call site, with other types, on the same state.
    let other = breaker.clone().classify(|result: &Result<(), &str>| match result {
        Err("not found") => CallOutcome::Ignore,
        other => CallOutcome::of(other),
    });
    other.try_acquire().unwrap().record(&Err("not found"));
    assert_eq!(breaker.metrics().calls, 4, "ignored by the second policy");
    other.try_acquire().unwrap().record(&Err("down"));
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failed_calls), (5, 3));
    assert_eq!(metrics.state, BreakerState::Open);
}

/// A configuration update keeps the window and applies at once.
#[test]
fn update_keeps_the_window() {
    let clock = ManualClock::new();
    let breaker =
        r4j(&clock).sliding_window(FailureWindow::count(10)).minimum_calls(10).build().unwrap();
    for _ in 0..3 {
        run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    }
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    let err = breaker.update(|config| {
        config.minimum_calls(0);
    });
    assert_eq!(err.unwrap_err().to_string(), "invalid `minimum_calls` 0: must be at least 1");
    assert_eq!(breaker.config().minimum_calls, 10);
    breaker
        .update(|config| {
            config.minimum_calls(5).failure_rate_threshold(0.6);
        })
        .unwrap();
    assert_eq!(breaker.metrics().calls, 4, "the window survived the update");
    run(&breaker, &clock, Duration::ZERO, CallOutcome::Success);
    // 3 of 5 = 60 % ≥ 60 %.
    assert_eq!(breaker.state(), BreakerState::Open);
}

/// Starting open applies the wait from build time.
#[test]
fn initial_state_open() {
    let clock = ManualClock::new();
    let breaker = r4j(&clock).initial_state(BreakerState::Open).build().unwrap();
    assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(5)));
    let err = r4j(&clock).initial_state(BreakerState::HalfOpen).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid `initial_state` HalfOpen: must not be half-open");
}

/// Every bad setting is refused with its name and value.
#[test]
fn builder_validates() {
    let cases: Vec<(CircuitBreakerBuilder, &str)> = vec![
        (
            CircuitBreaker::builder().failure_rate_threshold(0.0),
            "invalid `failure_rate_threshold` 0.0: must be above 0 and at most 1",
        ),
        (
            CircuitBreaker::builder().failure_rate_threshold(f64::NAN),
            "invalid `failure_rate_threshold` NaN: must be above 0 and at most 1",
        ),
        (
            CircuitBreaker::builder().slow_call(SECOND, 2.0),
            "invalid `slow_call.ratio` 2.0: must be above 0 and at most 1",
        ),
        (
            CircuitBreaker::builder().slow_call(Duration::ZERO, 0.5),
            "invalid `slow_call.duration` 0ns: must be longer than zero",
        ),
        (
            CircuitBreaker::builder().minimum_calls(0),
            "invalid `minimum_calls` 0: must be at least 1",
        ),
        (
            CircuitBreaker::builder().permitted_calls_in_half_open(0),
            "invalid `permitted_calls_in_half_open` 0: must be at least 1",
        ),
        (
            CircuitBreaker::builder().permitted_calls_in_half_open(10_000),
            "invalid `permitted_calls_in_half_open` 10000: must be at most 8191",
        ),
        (
            CircuitBreaker::builder().wait_in_open(Duration::ZERO),
            "invalid `wait_in_open` 0ns: must be longer than zero",
        ),
        (
            CircuitBreaker::builder().sliding_window(FailureWindow::count(0)),
            "invalid `sliding_window.calls` 0: must be at least 1",
        ),
        (
            CircuitBreaker::builder().sliding_window(FailureWindow::count(1 << 21)),
            "invalid `sliding_window.calls` 2097152: must be at most 1048575",
        ),
        (
            CircuitBreaker::builder().sliding_window(FailureWindow::time_with_buckets(SECOND, 0)),
            "invalid `sliding_window.buckets` 0: must be at least 1",
        ),
        (
            CircuitBreaker::builder()
                .sliding_window(FailureWindow::time_with_buckets(Duration::from_millis(5), 10)),
            "invalid `sliding_window.duration` 5ms: must be between 10ms and 31536000s",
        ),
        (
            CircuitBreaker::builder().max_wait_in_half_open(Duration::ZERO, HalfOpenTimeout::Open),
            "invalid `max_wait_in_half_open` 0ns: must be longer than zero",
        ),
        (CircuitBreaker::builder().name(""), r#"invalid `name` "": must not be empty"#),
        (
            CircuitBreaker::builder().name("a\0b"),
            r#"invalid `name` "a\0b": must not contain a NUL byte"#,
        ),
    ];
    for (builder, message) in cases {
        assert_eq!(builder.build().unwrap_err().to_string(), message);
    }
}

/// Event subscribers see per-call events and structured reasons; a panicking
/// subscriber does not break the breaker.
#[test]
fn events_and_panicking_subscribers() {
    let clock = ManualClock::new();
    let (builder, seen) =
        events(r4j(&clock).sliding_window(FailureWindow::count(5)).on_event(|_| panic!("boom")));
    let breaker = builder.build().unwrap();
    run(&breaker, &clock, SECOND, CallOutcome::Success);
    breaker.try_acquire().unwrap().ignore();
    while breaker.state() == BreakerState::Closed {
        run(&breaker, &clock, Duration::ZERO, CallOutcome::Failure);
    }
    let _ = breaker.try_acquire();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], BreakerEvent::Success { duration: Some(SECOND) });
    assert_eq!(seen[1], BreakerEvent::Ignored);
    assert!(seen.iter().any(|event| matches!(
        event,
        BreakerEvent::StateTransition {
            reason: TransitionReason::FailureRate { calls: 5, .. },
            ..
        }
    )));
    assert!(matches!(
        seen.last(),
        Some(BreakerEvent::Rejected { state: BreakerState::Open, retry_after: Some(_) })
    ));
}

/// Many threads failing at once open the breaker exactly once.
#[test]
fn concurrent_failures_open_once() {
    let (builder, seen) = events(
        CircuitBreaker::builder()
            .sliding_window(FailureWindow::count(50))
            .minimum_calls(50)
            .clock(ManualClock::new()),
    );
    let breaker = builder.build().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                }
            });
        }
    });
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(transitions(&seen), [(BreakerState::Closed, BreakerState::Open)]);
}
