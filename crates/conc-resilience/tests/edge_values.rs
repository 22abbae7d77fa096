//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds, NaN, ±∞, empty names and
//! names with NUL bytes), each call inside `catch_unwind`. What builds is then
//! driven through its main paths with edge values too (advancing the clock by
//! huge steps, admitting huge units, waiting on tokio's paused clock, which
//! jumps to the next timer, so even `Duration::MAX` waits end at once).
//!
//! Covered (79 public constructors and setters): `CircuitBreaker::builder`,
//! `CircuitBreakerBuilder::{new, sliding_window, failure_rate_threshold,
//! slow_call, minimum_calls, permitted_calls_in_half_open, wait_in_open,
//! wait_in_open_backoff, max_wait_in_half_open, config, classify, on_event,
//! name, initial_state, clock, build}`, `FailureWindow::{count, time,
//! time_with_buckets}`, `CircuitBreaker::update` with
//! `BreakerConfig::{default, failure_rate_threshold, slow_call, no_slow_call,
//! minimum_calls, permitted_calls_in_half_open, wait_in_open,
//! wait_in_open_backoff, max_wait_in_half_open}`, `Bulkhead::builder`,
//! `BulkheadBuilder::{max_concurrent, max_queued, max_wait, name, build}`,
//! `Retry::builder`, `RetryBuilder::{backoff, max_attempts, max_retries,
//! deadline, retry_if, retry_if_result, budget, name, build}`,
//! `RetryBudget::builder`, `RetryBudgetBuilder::{ttl, min_per_second,
//! retry_ratio, clock, build}`, `LoadShedder::builder`,
//! `LoadShedderBuilder::{cooldown, max_queue_wait, clock, name, build}`,
//! `Timeout::new`, `Fallback::{new, on, on_rejection, on_inner}`,
//! `Stack::builder`, `StackBuilder::{load_shedder, total_timeout, retry,
//! circuit_breaker, bulkhead, attempt_timeout, build}`, `Attempt::first`,
//! and `CircuitBreakerLayer::new`, `BulkheadLayer::new`, `RetryLayer::new`,
//! `TimeoutLayer::new`, `LoadShedderLayer::{new, units}`,
//! `FallbackLayer::new`. Run-time inputs too: `LoadShedder::try_admit` and
//! `try_admit_after_wait` with edge units and waits, a `ManualClock` moved
//! by edge steps under every time-deciding primitive.
//!
//! It found one: a shedder with `max_load` near `u64::MAX` admitted units
//! whose sum with the load overflowed (a saturating check, then a plain
//! add); the check is a checked add now.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::driver::panic_message;
use conc_core::time::ManualClock;
use conc_resilience::{
    Attempt, BreakerState, Bulkhead, CallOutcome, CircuitBreaker, ErrorKind, FailureWindow,
    Fallback, HalfOpenTimeout, LoadShedder, ResilienceError, Retry, RetryBudget, Stack, Timeout,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ===== edge-value strategies =====

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![0, 1, 2, u32::MAX, u32::MAX - 1, u32::MAX / 2, 1 << 20, 8_192]),
        1 => any::<u32>(),
    ]
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0,
            1,
            2,
            u64::MAX,
            u64::MAX - 1,
            u64::MAX / 2,
            u64::from(u32::MAX),
        ]),
        1 => any::<u64>(),
    ]
}

fn edge_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => prop::sample::select(vec![
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::from_secs(61),
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX / 2),
            Duration::from_nanos(u64::MAX),
            Duration::from_secs(u64::from(u32::MAX)),
        ]),
        1 => (any::<u64>(), 0..1_000_000_000_u32).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
    ]
}

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1e-300,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            1000.0,
            1_000.000_001,
            f64::MAX,
            f64::MIN,
        ]),
        1 => any::<f64>(),
    ]
}

fn edge_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["", "\0", "a\0b", "default", "payments"]).prop_map(str::to_owned),
        "[a-z\\x00]{0,8}",
        Just("n".repeat(10_000)),
    ]
}

fn edge_window() -> impl Strategy<Value = FailureWindow> {
    prop_oneof![
        edge_u32().prop_map(FailureWindow::count),
        edge_duration().prop_map(FailureWindow::time),
        (edge_duration(), edge_u32()).prop_map(|(d, b)| FailureWindow::time_with_buckets(d, b)),
    ]
}

fn edge_state() -> impl Strategy<Value = BreakerState> {
    prop::sample::select(vec![
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::Disabled,
        BreakerState::ForcedOpen,
        BreakerState::MetricsOnly,
    ])
}

/// A backoff built from edge values, when conc-core accepts them.
fn edge_backoff() -> impl Strategy<Value = Option<Backoff>> {
    (0..3_u8, edge_duration(), edge_duration(), edge_f64(), edge_u32()).prop_map(
        |(kind, first, cap, factor, retries)| {
            let builder = match kind {
                0 => Backoff::fixed(first),
                1 => Backoff::linear(first, cap),
                _ => Backoff::exponential(first).factor(factor),
            };
            catch_unwind(AssertUnwindSafe(|| {
                builder.max_delay(cap).max_retries(retries).build().ok()
            }))
            .ok()
            .flatten()
        },
    )
}

// ===== harness =====

/// Runs `f`, failing the case (with the panic's message) if it panics.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        TestCaseError::fail(format!("{what} panicked: {}", panic_message(&*payload)))
    })
}

/// A current-thread runtime on tokio's paused clock: every wait ends as soon
/// as nothing else can run, however long it is.
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// A century: longer than any wait tokio's timer keeps (it sleeps
/// `Duration::MAX` as about 30 years).
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Bounds `work` to a century of tokio's paused clock (instants to run): a
/// wait that never ends fails the case instead of hanging it.
fn bounded<F: std::future::Future>(work: F) -> Result<F::Output, TestCaseError> {
    paused()
        .block_on(async { tokio::time::timeout(CENTURY, work).await })
        .map_err(|_| TestCaseError::fail("hung: still waiting after a century of paused time"))
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() }
}

// ===== the properties =====

proptest! {
    #![proptest_config(config())]

    /// The breaker's builder and every run-time setting.
    #[test]
    fn breaker(
        window in edge_window(),
        ratios in (edge_f64(), edge_f64()),
        durations in (edge_duration(), edge_duration(), edge_duration(), edge_duration()),
        counts in (edge_u32(), edge_u32()),
        backoff in edge_backoff(),
        name in edge_name(),
        initial in edge_state(),
        advance in edge_duration(),
    ) {
        let (failure, slow) = ratios;
        let (slow_after, wait, max_half_open, update_wait) = durations;
        let (minimum, probes) = counts;
        let clock = ManualClock::new();
        let built = no_panic("CircuitBreakerBuilder::build", || {
            let builder = conc_resilience::CircuitBreakerBuilder::new()
                .sliding_window(window)
                .failure_rate_threshold(failure)
                .slow_call(slow_after, slow)
                .minimum_calls(minimum)
                .permitted_calls_in_half_open(probes)
                .wait_in_open(wait)
                .max_wait_in_half_open(max_half_open, HalfOpenTimeout::Closed)
                .name(name.clone())
                .initial_state(initial)
                .on_event(|_| {})
                .classify(|result: &Result<(), ()>| CallOutcome::of(result))
                .clock(clock.clone());
            let builder = match backoff.clone() {
                Some(backoff) => builder.wait_in_open_backoff(backoff),
                None => builder,
            };
            builder.build()
        })?;
        let configured = no_panic("CircuitBreaker::builder().config(…)", || {
            CircuitBreaker::builder().config(conc_resilience::BreakerConfig::default()).build()
        })?;
        prop_assert!(configured.is_ok());
        let Ok(breaker) = built else { return Ok(()) };
        no_panic("a breaker's paths", || {
            for round in 0..8 {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record(&if round % 3 == 0 { Ok(()) } else { Err(()) });
                }
                clock.advance(advance);
                let _ = (breaker.state(), breaker.retry_after(), breaker.metrics());
            }
            breaker.transition_to_open();
            let _ = breaker.retry_after();
            clock.advance(advance);
            breaker.transition_to_half_open();
            let probes: Vec<_> = (0..16).filter_map(|_| breaker.try_acquire().ok()).collect();
            for probe in probes {
                probe.failure();
            }
            let _ = breaker.update(|config| {
                config
                    .failure_rate_threshold(slow)
                    .slow_call(update_wait, failure)
                    .minimum_calls(probes_or(minimum))
                    .permitted_calls_in_half_open(minimum)
                    .wait_in_open(update_wait)
                    .max_wait_in_half_open(update_wait, HalfOpenTimeout::Open)
                    .no_slow_call();
                if let Some(backoff) = backoff.clone() {
                    config.wait_in_open_backoff(backoff);
                }
            });
            for _ in 0..4 {
                breaker.transition_to_open();
                clock.advance(advance);
                if let Ok(permit) = breaker.try_acquire() {
                    permit.failure();
                }
            }
            breaker.reset();
        })?;
    }

    /// The bulkhead's builder, its slots and its queue.
    #[test]
    fn bulkhead(
        max in edge_u32(),
        queued in edge_u32(),
        wait in edge_duration(),
        name in edge_name(),
    ) {
        let built = no_panic("BulkheadBuilder::build", || {
            Bulkhead::builder().max_concurrent(max).max_queued(queued).max_wait(wait).name(name).build()
        })?;
        let Ok(bulkhead) = built else { return Ok(()) };
        let held: Vec<_> =
            no_panic("Bulkhead::try_acquire", || (0..3).filter_map(|_| bulkhead.try_acquire().ok()).collect())?;
        no_panic("Bulkhead::acquire", || bounded(async {
            let waiting = tokio::spawn({
                let bulkhead = bulkhead.clone();
                async move { bulkhead.acquire().await.map(drop) }
            });
            tokio::task::yield_now().await;
            drop(held);
            let _ = waiting.await;
            let _ = bulkhead.call(async {}).await;
        }))??;
        prop_assert_eq!(bulkhead.metrics().queued, 0);
    }

    /// The retry's builder, a run, and the budget's builder.
    #[test]
    fn retry(
        counts in (edge_u32(), edge_u32(), edge_u32()),
        deadline in edge_duration(),
        backoff in edge_backoff(),
        budget in (edge_duration(), edge_u32(), edge_f64()),
        name in edge_name(),
        advance in edge_duration(),
    ) {
        let (attempts, retries, min_per_second) = counts;
        let (ttl, _, ratio) = budget;
        let clock = ManualClock::new();
        let budget = no_panic("RetryBudgetBuilder::build", || {
            RetryBudget::builder().ttl(ttl).min_per_second(min_per_second).retry_ratio(ratio).clock(clock.clone()).build()
        })?;
        if let Ok(budget) = &budget {
            no_panic("a budget's paths", || {
                for _ in 0..4 {
                    budget.deposit();
                    let _ = (budget.try_withdraw(), budget.remaining(), budget.metrics());
                    clock.advance(advance);
                }
            })?;
        }
        for limit in [Some(attempts), None] {
            let built = no_panic("RetryBuilder::build", || {
                let mut builder = Retry::builder()
                    .max_retries(retries)
                    .deadline(deadline)
                    .retry_if(|(): &()| true)
                    .retry_if_result(|value: &u32| *value == 0)
                    .name(name.clone());
                if let Some(attempts) = limit {
                    builder = builder.max_attempts(attempts);
                }
                if let Some(backoff) = backoff.clone() {
                    builder = builder.backoff(backoff);
                }
                if let Ok(budget) = budget.clone() {
                    builder = builder.budget(budget);
                }
                builder.build()
            })?;
            let Ok(retry) = built else { continue };
            prop_assert_eq!(Attempt::first().number(), 1);
            // At most three attempts, whatever the limits: the third succeeds.
            let calls = AtomicU32::new(0);
            let _last = no_panic("Retry::run", || bounded(retry.run(|attempt: Attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if attempt.number() >= 3 { Ok(attempt.number()) } else { Err(()) } }
            })))??;
            prop_assert!(calls.load(Ordering::SeqCst) <= 3);
        }
    }

    /// The load shedder's builder and its admissions.
    #[test]
    fn shedder(
        max_load in edge_u64(),
        cooldown in edge_duration(),
        max_wait in edge_duration(),
        units in (edge_u64(), edge_u64()),
        waited in edge_duration(),
        advance in edge_duration(),
        name in edge_name(),
    ) {
        let clock = ManualClock::new();
        let built = no_panic("LoadShedderBuilder::build", || {
            LoadShedder::builder(max_load)
                .cooldown(cooldown)
                .max_queue_wait(max_wait)
                .clock(clock.clone())
                .name(name)
                .build()
        })?;
        let Ok(shedder) = built else { return Ok(()) };
        no_panic("a shedder's paths", || {
            let first = shedder.try_admit(units.0);
            let second = shedder.try_admit_after_wait(units.1, waited);
            clock.advance(advance);
            let third = shedder.try_admit(units.1);
            let _ = (shedder.metrics(), first.map(|p| p.units()), second.is_ok(), third.is_ok());
        })?;
        prop_assert_eq!(shedder.metrics().load, 0, "every admitted unit came back");
    }

    /// Timeouts, fallbacks and a stack of edge-built primitives.
    #[test]
    fn timeout_fallback_and_stack(
        after in edge_duration(),
        total in edge_duration(),
        units in edge_u64(),
        max in edge_u32(),
    ) {
        let timeout = no_panic("Timeout::new", || Timeout::new(after))?;
        let total = no_panic("Timeout::new", || Timeout::new(total))?;
        let fallback: Fallback<u32, ()> = no_panic("Fallback", || {
            Fallback::new().on(ErrorKind::Timeout, |_| 1).on_rejection(|_| 2).on_inner(|()| Some(3))
        })?;
        let shedder = LoadShedder::builder(units.max(1)).build().unwrap();
        let bulkhead = Bulkhead::builder().max_concurrent(max).build();
        let stack = no_panic("StackBuilder::build", || {
            let mut builder = Stack::builder()
                .load_shedder(shedder.clone(), units)
                .retry(Retry::builder().backoff(Backoff::fixed(Duration::from_millis(1)).build().unwrap()).max_attempts(2).build().unwrap())
                .circuit_breaker(CircuitBreaker::builder().build().unwrap());
            if let Ok(timeout) = timeout.clone() {
                builder = builder.attempt_timeout(timeout);
            }
            if let Ok(total) = total.clone() {
                builder = builder.total_timeout(total);
            }
            if let Ok(bulkhead) = bulkhead.clone() {
                builder = builder.bulkhead(bulkhead);
            }
            builder.build()
        })?;
        no_panic("Stack::run", || bounded(async {
            let slow = stack.run_with_fallback(&fallback, |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Err(())
            });
            let _ = slow.await;
            if let Ok(timeout) = &timeout {
                let _ = timeout.call(async { 1 }).await;
                let _ = timeout.call(tokio::time::sleep(Duration::MAX)).await;
            }
        }))??;
        prop_assert_eq!(shedder.metrics().load, 0);
        let answered = fallback.apply(Err(ResilienceError::Inner(())));
        prop_assert_eq!(answered, Ok(3));
    }
}

/// A minimum that is never zero, for settings that need one.
fn probes_or(value: u32) -> u32 {
    value.max(1)
}

/// The tower layers' constructors over edge-built primitives, and a shedder
/// layer charging edge units per request.
#[cfg(feature = "tower")]
mod layers {
    use std::time::Duration;

    use conc_resilience::{
        Bulkhead, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer, Fallback, FallbackLayer,
        LoadShedder, LoadShedderLayer, Retry, RetryLayer, Timeout, TimeoutLayer,
    };
    use proptest::prelude::*;
    use tower::{Layer, Service, ServiceExt, service_fn};

    use super::{bounded, config, edge_duration, edge_u32, edge_u64, no_panic};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn layers(units in edge_u64(), max_load in edge_u64(), max in edge_u32(), after in edge_duration()) {
            let inner = service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n) });
            let shedder = LoadShedder::builder(max_load.max(1)).build().unwrap();
            let Ok(bulkhead) = Bulkhead::builder().max_concurrent(max).build() else { return Ok(()) };
            let Ok(timeout) = Timeout::new(after) else { return Ok(()) };
            let service = no_panic("the layers", || {
                let charged = LoadShedderLayer::new(shedder.clone()).units(move |_: &u64| units);
                FallbackLayer::new(Fallback::new().on_rejection(|_| 0)).layer(
                    RetryLayer::new(Retry::builder().build().unwrap()).layer(
                        CircuitBreakerLayer::new(CircuitBreaker::builder().build().unwrap()).layer(
                            charged.layer(BulkheadLayer::new(bulkhead).layer(TimeoutLayer::new(timeout).layer(inner))),
                        ),
                    ),
                )
            })?;
            no_panic("a call through the layers", || bounded(async move {
                let mut service = service;
                let ready = service.ready().await.unwrap();
                let _ = ready.call(units).await;
                let _ = Duration::ZERO;
            }))??;
            prop_assert_eq!(shedder.metrics().load, 0);
        }
    }
}

/// The harness fails a case that panics (so a property cannot pass by
/// swallowing panics).
#[test]
fn the_harness_reports_a_panic() {
    let caught = no_panic("a panic", || -> () { panic!("on purpose") });
    assert!(caught.unwrap_err().to_string().contains("on purpose"));
}
