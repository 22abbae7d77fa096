//! Observability: every primitive emits exactly the `conc.resilience.*`
//! names of `conc_core::metrics` (each constant emitted, nothing emitted that
//! is not a constant), and every long-lived primitive answers the same
//! `MetricsSource` methods.

use std::collections::BTreeSet;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{
    ALL, BREAKER_CALLS, BREAKER_REJECTED, BREAKER_STATE, BREAKER_TRANSITIONS, BULKHEAD_IN_FLIGHT,
    BULKHEAD_QUEUED, BULKHEAD_REJECTED, FALLBACK_USED, MetricsSnapshot, MetricsSource,
    RETRY_ATTEMPTS, RETRY_EXHAUSTED, SHED_LOAD, SHED_REJECTED, TIMEOUT_ELAPSED,
};
use conc_core::time::ManualClock;
use conc_resilience::{
    Bulkhead, CircuitBreaker, ErrorKind, Fallback, LoadShedder, ResilienceError, Retry,
    RetryBudget, Timeout,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

mod support;

/// The names of this crate's section of `conc_core::metrics`.
fn declared() -> BTreeSet<&'static str> {
    ALL.iter().map(|m| m.name).filter(|name| name.starts_with("conc.resilience.")).collect()
}

fn gauge(value: Option<&DebugValue>) -> f64 {
    match value {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("not a gauge: {other:?}"),
    }
}

/// Runs every primitive through what it reports, under a recorder local to
/// this thread. (A debugging snapshot hands out each counter and gauge and
/// zeroes it, so values are read once, then as changes.)
#[test]
#[allow(clippy::float_cmp, reason = "the gauges hold small whole numbers, exact in an f64")]
fn every_constant_is_emitted_and_nothing_else() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (held, permit) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            // Breaker: calls by outcome, a rejection, transitions, the state gauge.
            let breaker = CircuitBreaker::builder()
                .minimum_calls(2)
                .name("db")
                .clock(ManualClock::new())
                .build()
                .unwrap();
            breaker.try_acquire().unwrap().success();
            breaker.try_acquire().unwrap().ignore();
            breaker.try_acquire().unwrap().failure();
            let _ = breaker.try_acquire().unwrap_err();

            // Bulkhead: a slot in use, a queue, a refusal after waiting.
            let bulkhead = support::queued(1, 1, Duration::from_millis(10));
            let held = bulkhead.try_acquire().unwrap();
            let _ = bulkhead.acquire().await.unwrap_err();

            // Retry: a retry, then exhaustion.
            let retry = Retry::builder()
                .backoff(Backoff::fixed(Duration::from_millis(1)).build().unwrap())
                .max_attempts(2)
                .build()
                .unwrap();
            let _: Result<(), ()> = retry.run(|_| async { Err(()) }).await;

            // Timeout: a call cut off.
            let timeout = Timeout::new(Duration::from_millis(1)).unwrap();
            timeout.call(std::future::pending::<()>()).await.unwrap_err();

            // Fallback: an answered failure.
            let fallback: Fallback<u32, ()> = Fallback::new().on(ErrorKind::Inner, |_| 0);
            assert_eq!(fallback.apply(Err(ResilienceError::Inner(()))), Ok(0));

            // Shedder: load in use, a refusal.
            let shedder = LoadShedder::builder(2).build().unwrap();
            let permit = shedder.try_admit(2).unwrap();
            let _ = shedder.try_admit(1).unwrap_err();
            (held, permit)
        })
    });
    let snapshot: Vec<_> = snapshotter.snapshot().into_vec();
    let value = |name: &str, label: Option<(&str, &str)>| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let key = key.key();
            let labelled =
                label.is_none_or(|(k, v)| key.labels().any(|l| l.key() == k && l.value() == v));
            (key.name() == name && labelled).then_some(value)
        })
    };
    for (outcome, count) in [("success", 1), ("failure", 1), ("ignored", 1)] {
        assert_eq!(
            value(BREAKER_CALLS, Some(("outcome", outcome))),
            Some(&DebugValue::Counter(count)),
            "{outcome}"
        );
    }
    assert_eq!(value(BREAKER_REJECTED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(BREAKER_TRANSITIONS, None), Some(&DebugValue::Counter(1)));
    assert_eq!(gauge(value(BREAKER_STATE, None)), 1.0, "open");
    assert_eq!(value(BULKHEAD_REJECTED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(gauge(value(BULKHEAD_IN_FLIGHT, None)), 1.0);
    assert_eq!(gauge(value(BULKHEAD_QUEUED, None)), 0.0, "the waiter left the queue");
    assert_eq!(value(RETRY_ATTEMPTS, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(RETRY_EXHAUSTED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(TIMEOUT_ELAPSED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(FALLBACK_USED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(SHED_REJECTED, None), Some(&DebugValue::Counter(1)));
    assert_eq!(gauge(value(SHED_LOAD, None)), 2.0);

    // Giving the slot and the load back moves the gauges down by as much.
    drop((held, permit));
    let after: Vec<_> = snapshotter.snapshot().into_vec();
    let change = |name: &str| {
        gauge(
            after.iter().find_map(|(key, _, _, value)| (key.key().name() == name).then_some(value)),
        )
    };
    assert_eq!(change(BULKHEAD_IN_FLIGHT), -1.0);
    assert_eq!(change(SHED_LOAD), -2.0);

    let emitted: BTreeSet<String> =
        snapshot.iter().map(|(key, ..)| key.key().name().to_owned()).collect();
    let declared: BTreeSet<String> = declared().into_iter().map(str::to_owned).collect();
    assert_eq!(emitted, declared, "emitted names differ from the crate's constants");
}

/// A full window of successes takes the closed path's shortcut (nothing is
/// written to the window): every success still reaches the metric, and the
/// failure after them still reaches the window.
#[test]
fn successes_in_a_full_window_are_all_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let breaker = metrics::with_local_recorder(&recorder, || {
        let breaker = CircuitBreaker::builder()
            .sliding_window(conc_resilience::FailureWindow::count(4))
            .clock(ManualClock::new())
            .build()
            .unwrap();
        for _ in 0..10 {
            breaker.try_acquire().unwrap().success();
        }
        breaker.try_acquire().unwrap().failure();
        breaker
    });
    let successes = snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let success = key.labels().any(|l| l.key() == "outcome" && l.value() == "success");
        (key.name() == BREAKER_CALLS && success).then_some(value)
    });
    assert_eq!(successes, Some(DebugValue::Counter(10)));
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failed_calls), (4, 1));
}

fn reports<M: MetricsSource>(source: &M) -> Vec<String> {
    let entries = source.metrics().entries();
    source.reset_metrics();
    entries.iter().map(|entry| entry.name.to_owned()).collect()
}

/// Breaker, bulkhead, retry, budget and shedder all answer `metrics()` and
/// `reset_metrics()`, and the names their snapshots use that look like metric
/// names are constants.
#[test]
fn every_long_lived_primitive_is_a_metrics_source() {
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.force_open();
    let _ = breaker.try_acquire().unwrap_err();
    assert_eq!(breaker.metrics().not_permitted, 1);
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    let _ = bulkhead.try_acquire().unwrap_err();
    let retry = Retry::builder().build().unwrap();
    let budget = RetryBudget::builder().min_per_second(0).build().unwrap();
    assert!(!budget.try_withdraw());
    let shedder = LoadShedder::builder(1).build().unwrap();
    let _ = shedder.try_admit(2).unwrap_err();
    let names: Vec<String> = [
        reports(&breaker),
        reports(&bulkhead),
        reports(&retry),
        reports(&budget),
        reports(&shedder),
    ]
    .concat();
    let constants: BTreeSet<&str> = ALL.iter().map(|m| m.name).collect();
    for name in names.iter().filter(|name| name.contains('.')) {
        assert!(constants.contains(name.as_str()), "{name} is not a constant");
    }
    // reset_metrics zeroed the counters.
    assert_eq!(breaker.metrics().not_permitted, 0);
    assert_eq!(bulkhead.metrics().rejected, 0);
    assert_eq!(budget.metrics().refused, 0);
    assert_eq!(shedder.metrics().rejected(), 0);
}
