//! Behaviour of `conc_core::backoff`: the golden tables of the module docs, limits, validation,
//! seeding, resuming, saturation, allocation-freedom and the auto traits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::iter::FusedIterator;
use std::time::Duration;

use conc_core::backoff::{Backoff, BackoffBuilder, DelayFn, Delays, Jitter, Strategy};
use conc_core::config::ConfigError;
use static_assertions::assert_impl_all;

assert_impl_all!(Backoff: Send, Sync, Clone, Debug, Unpin);
assert_impl_all!(BackoffBuilder: Send, Sync, Clone, Debug, Unpin);
assert_impl_all!(Delays: Send, Sync, Clone, Debug, Unpin, Iterator<Item = Duration>, FusedIterator);
assert_impl_all!(ConfigError: Send, Sync, Clone, Debug, std::error::Error, PartialEq);
assert_impl_all!(Jitter: Send, Sync, Copy, Debug, Default, Eq, std::hash::Hash);
assert_impl_all!(Strategy: Send, Sync, Clone, Debug);
assert_impl_all!(DelayFn: Send, Sync, Clone, Debug);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn millis(delays: impl IntoIterator<Item = Duration>) -> Vec<u64> {
    delays.into_iter().map(|delay| u64::try_from(delay.as_millis()).expect("small delay")).collect()
}

fn build(builder: BackoffBuilder) -> Backoff {
    builder.build().expect("valid backoff")
}

/// Every strategy, each with a first delay of 100ms, so the tests can run over all of them.
fn every_strategy() -> Vec<(&'static str, BackoffBuilder)> {
    vec![
        ("fixed", Backoff::fixed(ms(100))),
        ("linear", Backoff::linear(ms(100), ms(100))),
        ("exponential", Backoff::exponential(ms(100))),
        ("fibonacci", Backoff::fibonacci(ms(100))),
        ("decorrelated", Backoff::decorrelated_jitter(ms(100))),
        ("custom", Backoff::custom(|n| ms(100) * (n % 5 + 1))),
    ]
}

/// The jitter modes a strategy accepts: all of them, except decorrelated jitter's `None` only.
fn jitters_for(name: &str) -> &'static [Jitter] {
    if name == "decorrelated" {
        &[Jitter::None]
    } else {
        &[Jitter::None, Jitter::Full, Jitter::Equal]
    }
}

// ===== golden tables (identical to the module docs) =====

#[test]
fn golden_fixed() {
    let backoff = build(Backoff::fixed(ms(100)).max_retries(8));
    assert_eq!(millis(backoff.delays()), [100; 8]);
}

#[test]
fn golden_linear() {
    let backoff = build(Backoff::linear(ms(100), ms(100)).max_retries(8));
    assert_eq!(millis(backoff.delays()), [100, 200, 300, 400, 500, 600, 700, 800]);
}

#[test]
fn golden_exponential() {
    let backoff = build(Backoff::exponential(ms(100)).max_retries(8));
    assert_eq!(millis(backoff.delays()), [100, 200, 400, 800, 1600, 3200, 6400, 12_800]);
}

#[test]
fn golden_fibonacci() {
    let backoff = build(Backoff::fibonacci(ms(100)).max_retries(8));
    assert_eq!(millis(backoff.delays()), [100, 100, 200, 300, 500, 800, 1300, 2100]);
}

#[test]
fn golden_capped_exponential() {
    let backoff = build(Backoff::exponential(ms(100)).max_delay(ms(1000)).max_retries(8));
    assert_eq!(millis(backoff.delays()), [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
}

#[test]
fn golden_tables_are_exact_to_the_nanosecond() {
    // `millis` truncates, so check the full durations of the float-computed strategy too.
    let backoff = build(Backoff::exponential(ms(100)).max_retries(8));
    let expected: Vec<Duration> = (0..8).map(|n| ms(100) * 2_u32.pow(n)).collect();
    assert_eq!(backoff.delays().collect::<Vec<_>>(), expected);
    let backoff = build(Backoff::exponential(ms(100)).factor(1.5).max_retries(4));
    let expected = [ms(100), ms(150), ms(225), Duration::from_micros(337_500)];
    assert_eq!(backoff.delays().collect::<Vec<_>>(), expected);
}

#[test]
fn golden_decorrelated_bounds() {
    let backoff = build(Backoff::decorrelated_jitter(ms(100)).max_delay(ms(10_000)));
    let upper = [300, 900, 2700, 8100, 10_000, 10_000];
    for (retry, upper) in (0..).zip(upper) {
        assert_eq!(backoff.delay_bounds(retry), ms(100)..=ms(upper), "retry index {retry}");
        assert_eq!(backoff.base_delay(retry), ms(upper), "retry index {retry}");
    }
    for seed in 0..200 {
        for (retry, delay) in (0..).zip(backoff.delays_seeded(seed).take(6)) {
            assert!(backoff.delay_bounds(retry).contains(&delay), "seed {seed}: {delay:?}");
        }
    }
}

#[test]
fn golden_jitter_bounds() {
    let full = build(Backoff::exponential(ms(100)).max_delay(ms(1000)).jitter(Jitter::Full));
    let equal = build(Backoff::exponential(ms(100)).max_delay(ms(1000)).jitter(Jitter::Equal));
    let capped = [100, 200, 400, 800, 1000, 1000];
    for (retry, d) in (0..).zip(capped) {
        assert_eq!(full.delay_bounds(retry), Duration::ZERO..=ms(d), "retry index {retry}");
        assert_eq!(equal.delay_bounds(retry), ms(d / 2)..=ms(d), "retry index {retry}");
    }
    for seed in 0..200 {
        for backoff in [&full, &equal] {
            for (retry, delay) in (0..).zip(backoff.delays_seeded(seed).take(6)) {
                assert!(backoff.delay_bounds(retry).contains(&delay), "seed {seed}: {delay:?}");
            }
        }
    }
}

#[test]
fn jitter_actually_spreads_delays() {
    // Over many seeds, full jitter covers most of [0, d] and equal jitter most of [d/2, d].
    let d = ms(1000);
    for (jitter, low) in [(Jitter::Full, Duration::ZERO), (Jitter::Equal, ms(500))] {
        let backoff = build(Backoff::fixed(d).jitter(jitter));
        let samples: Vec<Duration> =
            (0..1000).map(|seed| backoff.delays_seeded(seed).next().expect("unlimited")).collect();
        let min = samples.iter().min().expect("samples");
        let max = samples.iter().max().expect("samples");
        assert!(
            *min < low + ms(20) && *max > d.saturating_sub(ms(20)),
            "{jitter:?}: {min:?}..{max:?}"
        );
        let mean = samples.iter().sum::<Duration>() / 1000;
        let centre = low + d.saturating_sub(low) / 2;
        assert!(mean.abs_diff(centre) < ms(40), "{jitter:?}: mean {mean:?}, centre {centre:?}");
    }
}

#[test]
fn custom_receives_the_zero_based_retry_index_and_is_capped_and_jittered() {
    let backoff = build(Backoff::custom(|n| ms(100) * (n + 1)).max_delay(ms(250)).max_retries(4));
    assert_eq!(millis(backoff.delays()), [100, 200, 250, 250]);
    let jittered = build(Backoff::custom(|n| ms(100) * (n + 1)).jitter(Jitter::Equal).seed(3));
    for (retry, delay) in (0..).zip(jittered.delays().take(50)) {
        let base = ms(100) * (retry + 1);
        assert!(base / 2 <= delay && delay <= base, "index {retry}: {delay:?}");
    }
}

#[test]
fn factor_one_gives_a_constant_schedule() {
    let backoff = build(Backoff::exponential(ms(100)).factor(1.0).max_retries(5));
    assert_eq!(millis(backoff.delays()), [100; 5]);
}

// ===== limits =====

#[test]
fn max_retries_counts_retries_after_the_first_call() {
    for retries in [0, 1, 3, 10] {
        let backoff = build(Backoff::fixed(ms(1)).max_retries(retries));
        assert_eq!(backoff.max_retries(), Some(retries));
        assert_eq!(backoff.max_attempts(), Some(retries + 1));
        assert_eq!(backoff.delays().count(), retries as usize);
    }
}

#[test]
fn max_attempts_counts_the_first_call() {
    for attempts in [1, 2, 4, 11] {
        let backoff = build(Backoff::fixed(ms(1)).max_attempts(attempts));
        assert_eq!(backoff.max_attempts(), Some(attempts));
        assert_eq!(backoff.max_retries(), Some(attempts - 1));
        assert_eq!(backoff.delays().count(), attempts as usize - 1);
    }
}

#[test]
fn max_attempts_one_equals_max_retries_zero() {
    let attempts = build(Backoff::exponential(ms(100)).max_attempts(1));
    let retries = build(Backoff::exponential(ms(100)).max_retries(0));
    assert_eq!(attempts.max_retries(), retries.max_retries());
    assert_eq!(attempts.delays().next(), None);
    assert_eq!(retries.delays().next(), None);
}

#[test]
fn the_last_setting_of_one_limit_wins() {
    let backoff = build(Backoff::fixed(ms(1)).max_retries(9).max_retries(2));
    assert_eq!(backoff.delays().count(), 2);
}

#[test]
fn a_limited_schedule_reports_its_length_and_stays_exhausted() {
    let backoff = build(Backoff::fixed(ms(1)).max_retries(3));
    let mut delays = backoff.delays();
    assert_eq!(delays.size_hint(), (3, Some(3)));
    assert_eq!(delays.remaining(), Some(3));
    assert_eq!(delays.by_ref().count(), 3);
    assert_eq!(delays.retries_so_far(), 3);
    assert_eq!(delays.remaining(), Some(0));
    assert_eq!(delays.size_hint(), (0, Some(0)));
    assert_eq!(delays.next(), None);
    assert_eq!(delays.next(), None);
}

#[test]
fn without_a_limit_the_schedule_is_infinite() {
    let backoff = build(Backoff::exponential(ms(100)).max_delay(ms(1000)));
    assert_eq!(backoff.max_retries(), None);
    assert_eq!(backoff.max_attempts(), None);
    let mut delays = backoff.delays();
    assert_eq!(delays.size_hint(), (usize::MAX, None));
    assert_eq!(delays.remaining(), None);
    assert_eq!(delays.by_ref().take(10_000).count(), 10_000);
    assert_eq!(delays.next(), Some(ms(1000)));
}

#[test]
fn the_largest_retry_limit_is_reported_without_overflow() {
    let backoff = build(Backoff::fixed(ms(1)).max_retries(u32::MAX));
    assert_eq!(backoff.max_retries(), Some(u32::MAX));
    assert_eq!(backoff.max_attempts(), Some(u32::MAX));
    let backoff = build(Backoff::fixed(ms(1)).max_attempts(u32::MAX));
    assert_eq!(backoff.max_retries(), Some(u32::MAX - 1));
}

// ===== validation =====

fn error(builder: BackoffBuilder) -> ConfigError {
    builder.build().expect_err("invalid backoff")
}

#[test]
fn zero_durations_are_rejected_naming_the_field() {
    let cases = [
        (Backoff::fixed(Duration::ZERO), "delay"),
        (Backoff::linear(Duration::ZERO, ms(1)), "initial"),
        (Backoff::linear(ms(1), Duration::ZERO), "increment"),
        (Backoff::exponential(Duration::ZERO), "initial"),
        (Backoff::fibonacci(Duration::ZERO), "initial"),
        (Backoff::decorrelated_jitter(Duration::ZERO), "base"),
        (Backoff::exponential(ms(1)).max_delay(Duration::ZERO), "max_delay"),
        (Backoff::custom(|_| ms(1)).max_delay(Duration::ZERO), "max_delay"),
    ];
    for (builder, field) in cases {
        let err = error(builder);
        assert_eq!(err.field, field);
        assert_eq!(err.to_string(), format!("invalid `{field}` 0ns: must be longer than zero"));
    }
}

#[test]
fn invalid_factors_are_rejected_with_their_value() {
    let cases = [
        (0.5, "0.5"),
        (0.0, "0.0"),
        (-2.0, "-2.0"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for (factor, shown) in cases {
        let err = error(Backoff::exponential(ms(100)).factor(factor));
        assert_eq!((err.field.as_ref(), err.value.as_str()), ("factor", shown));
        assert_eq!(
            err.to_string(),
            format!("invalid `factor` {shown}: must be a finite number of at least 1.0")
        );
    }
}

#[test]
fn a_factor_on_another_strategy_is_rejected() {
    let err = error(Backoff::fibonacci(ms(100)).factor(2.0));
    assert_eq!(
        err.to_string(),
        "invalid `factor` 2.0: applies only to exponential backoff, not to fibonacci backoff"
    );
    for (name, builder) in every_strategy() {
        if name != "exponential" {
            assert_eq!(error(builder.factor(3.0)).field, "factor");
        }
    }
}

#[test]
fn a_max_delay_below_the_first_delay_is_rejected() {
    let cases = [
        (Backoff::fixed(ms(100)), "delay"),
        (Backoff::linear(ms(100), ms(1)), "initial"),
        (Backoff::exponential(ms(100)), "initial"),
        (Backoff::fibonacci(ms(100)), "initial"),
        (Backoff::decorrelated_jitter(ms(100)), "base"),
    ];
    for (builder, field) in cases {
        let err = error(builder.clone().max_delay(ms(99)));
        assert_eq!(
            err.to_string(),
            format!("invalid `max_delay` 99ms: must be at least `{field}` (100ms)")
        );
        // Equal to the first delay is fine: every delay is then exactly the cap (or below it).
        assert!(builder.max_delay(ms(100)).build().is_ok());
    }
}

#[test]
fn zero_attempts_are_rejected() {
    let err = error(Backoff::fixed(ms(1)).max_attempts(0));
    assert_eq!(
        err.to_string(),
        "invalid `max_attempts` 0: must be at least 1 because it counts the first call"
    );
}

#[test]
fn both_limits_on_one_builder_are_rejected() {
    for builder in [
        Backoff::fixed(ms(1)).max_retries(3).max_attempts(4),
        Backoff::fixed(ms(1)).max_attempts(4).max_retries(3),
    ] {
        let err = error(builder);
        assert_eq!(
            err.to_string(),
            "invalid `max_attempts` 4: must not be set with `max_retries` (3): set only one"
        );
    }
}

#[test]
fn jitter_on_decorrelated_jitter_is_rejected() {
    for jitter in [Jitter::Full, Jitter::Equal] {
        let err = error(Backoff::decorrelated_jitter(ms(100)).jitter(jitter));
        assert_eq!(
            err.to_string(),
            format!(
                "invalid `jitter` {jitter:?}: must be `Jitter::None` for decorrelated jitter, which is random already"
            )
        );
    }
}

// ===== seeding =====

#[test]
fn a_seeded_policy_repeats_its_schedule() {
    for (name, builder) in every_strategy() {
        for &jitter in jitters_for(name) {
            let backoff = build(builder.clone().jitter(jitter).max_retries(20).seed(42));
            let first: Vec<Duration> = backoff.delays().collect();
            assert_eq!(first, backoff.delays().collect::<Vec<_>>(), "{name} {jitter:?}");
            assert_eq!(first, backoff.clone().delays().collect::<Vec<_>>(), "{name} {jitter:?}");
            assert_eq!(first, backoff.delays_seeded(42).collect::<Vec<_>>(), "{name} {jitter:?}");
            assert_eq!(backoff.seed(), Some(42));
            assert_eq!(backoff.delays().seed(), 42);
        }
    }
}

#[test]
fn different_seeds_give_different_random_schedules() {
    for (name, builder) in every_strategy() {
        for &jitter in jitters_for(name) {
            let backoff = build(builder.clone().jitter(jitter).max_retries(20));
            let one: Vec<Duration> = backoff.delays_seeded(1).collect();
            let two: Vec<Duration> = backoff.delays_seeded(2).collect();
            if jitter == Jitter::None && name != "decorrelated" {
                assert_eq!(one, two, "{name} is deterministic");
            } else {
                assert_ne!(one, two, "{name} {jitter:?}");
            }
        }
    }
}

#[test]
fn unseeded_schedules_draw_fresh_seeds() {
    let backoff = build(Backoff::exponential(ms(100)).jitter(Jitter::Full).max_retries(20));
    assert_eq!(backoff.seed(), None);
    let one = backoff.delays();
    let two = backoff.delays();
    assert_ne!(one.seed(), two.seed());
    assert_ne!(one.collect::<Vec<_>>(), two.collect::<Vec<_>>());
    let from_threads: Vec<u64> = (0..4)
        .map(|_| {
            let backoff = backoff.clone();
            std::thread::spawn(move || backoff.delays().seed())
        })
        .map(|handle| handle.join().expect("seed thread"))
        .collect();
    for (i, seed) in from_threads.iter().enumerate() {
        assert!(!from_threads[..i].contains(seed), "threads drew the same seed");
    }
}

// ===== resuming =====

#[test]
fn delays_from_resumes_exactly_where_the_schedule_stopped() {
    for (name, builder) in every_strategy() {
        for &jitter in jitters_for(name) {
            let backoff =
                build(builder.clone().jitter(jitter).max_delay(ms(5000)).max_retries(12).seed(9));
            let whole: Vec<Duration> = backoff.delays().collect();
            for next in 0..=12_u32 {
                let previous = next.checked_sub(1).map(|i| whole[i as usize]);
                let resumed: Vec<Duration> = backoff.delays_from(next, previous).collect();
                assert_eq!(resumed, whole[next as usize..], "{name} {jitter:?} from {next}");
            }
        }
    }
}

#[test]
fn a_stopped_schedule_hands_over_what_resuming_needs() {
    let backoff =
        build(Backoff::decorrelated_jitter(ms(100)).max_delay(ms(5000)).max_retries(8).seed(5));
    let mut delays = backoff.delays();
    assert_eq!((delays.retries_so_far(), delays.previous()), (0, None));
    let taken: Vec<Duration> = delays.by_ref().take(3).collect();
    assert_eq!(delays.retries_so_far(), 3);
    assert_eq!(delays.previous(), taken.last().copied());
    assert_eq!(delays.remaining(), Some(5));
    let resumed = backoff.delays_from(delays.retries_so_far(), delays.previous());
    assert_eq!(resumed.retries_so_far(), 3);
    assert_eq!(resumed.remaining(), Some(5));
    assert_eq!(resumed.collect::<Vec<_>>(), delays.collect::<Vec<_>>());
}

#[test]
fn delays_from_counts_the_retries_already_made_against_the_limit() {
    let backoff = build(Backoff::linear(ms(100), ms(100)).max_attempts(5));
    assert_eq!(millis(backoff.delays_from(2, Some(ms(200)))), [300, 400]);
    assert_eq!(backoff.delays_from(4, None).next(), None);
    assert_eq!(backoff.delays_from(u32::MAX, None).next(), None);
}

#[test]
fn decorrelated_jitter_restarts_its_growth_without_a_previous_delay() {
    let backoff = build(Backoff::decorrelated_jitter(ms(100)).max_delay(ms(60_000)));
    for seed in 0..100 {
        let delay = backoff.delays_seeded(seed).next().expect("unlimited");
        let resumed = backoff.delays_from(50, None).next().expect("unlimited");
        assert!(ms(100) <= delay && delay <= ms(300), "{delay:?}");
        assert!(ms(100) <= resumed && resumed <= ms(300), "{resumed:?}");
    }
}

// ===== saturation =====

#[test]
fn huge_retry_indices_saturate_without_panicking() {
    let retries = [200, 1_000, u32::MAX / 2, u32::MAX - 1, u32::MAX];
    for (name, builder) in every_strategy() {
        if name == "custom" {
            continue;
        }
        let uncapped = build(builder.clone());
        let capped = build(builder.max_delay(ms(10_000)));
        for &retry in &retries {
            let expected = match name {
                "fixed" => ms(100),
                // 100ms steps cannot overflow within u32 indices: the sum stays exact.
                "linear" => ms(100 * (u64::from(retry) + 1)),
                _ => Duration::MAX,
            };
            assert_eq!(uncapped.base_delay(retry), expected, "{name} at {retry}");
            let expected = if name == "fixed" { ms(100) } else { ms(10_000) };
            assert_eq!(capped.base_delay(retry), expected, "{name} at {retry}");
            let resumed: Vec<Duration> =
                capped.delays_from(retry, Some(Duration::MAX)).take(3).collect();
            assert!(resumed.iter().all(|delay| *delay <= ms(10_000)), "{name} at {retry}");
        }
    }
}

#[test]
fn the_largest_durations_saturate_without_panicking() {
    let builders = [
        Backoff::fixed(Duration::MAX),
        Backoff::linear(Duration::MAX, Duration::MAX),
        Backoff::exponential(Duration::MAX).factor(f64::MAX),
        Backoff::fibonacci(Duration::MAX),
        Backoff::decorrelated_jitter(Duration::MAX),
        Backoff::custom(|_| Duration::MAX),
    ];
    for builder in builders {
        let backoff = build(builder.clone().max_retries(5));
        assert_eq!(backoff.delays().collect::<Vec<_>>(), [Duration::MAX; 5], "{backoff:?}");
        if !matches!(backoff.strategy(), Strategy::DecorrelatedJitter { .. }) {
            for jitter in [Jitter::Full, Jitter::Equal] {
                let jittered = build(builder.clone().jitter(jitter).max_retries(50).seed(1));
                for delay in jittered.delays() {
                    assert!(jitter.bounds(Duration::MAX).contains(&delay), "{jittered:?}");
                }
            }
        }
    }
}

#[test]
fn an_unlimited_schedule_keeps_going_past_the_last_retry_index() {
    let backoff =
        build(Backoff::exponential(ms(100)).jitter(Jitter::Full).max_delay(ms(1000)).seed(3));
    let mut delays = backoff.delays_from(u32::MAX - 1, None);
    let tail: Vec<Duration> = delays.by_ref().take(5).collect();
    assert!(tail.iter().all(|delay| *delay <= ms(1000)));
    assert_eq!(delays.retries_so_far(), u32::MAX);
    // The random draw still advances past index u32::MAX, so the jitter does not freeze.
    assert!(tail[2..].windows(2).any(|pair| pair[0] != pair[1]), "{tail:?}");
}

// ===== inspection =====

#[test]
fn accessors_report_the_configuration() {
    let backoff = build(
        Backoff::exponential(ms(100))
            .factor(3.0)
            .jitter(Jitter::Equal)
            .max_delay(ms(10_000))
            .max_attempts(4)
            .seed(11),
    );
    assert!(matches!(
        backoff.strategy(),
        Strategy::Exponential { initial, factor, .. } if *initial == ms(100) && factor.total_cmp(&3.0).is_eq()
    ));
    assert_eq!(backoff.jitter(), Jitter::Equal);
    assert_eq!(backoff.max_delay(), Some(ms(10_000)));
    assert_eq!(backoff.max_retries(), Some(3));
    assert_eq!(backoff.max_attempts(), Some(4));
    assert_eq!(backoff.seed(), Some(11));
    assert_eq!(backoff.delays().backoff().seed(), Some(11));

    let plain = build(Backoff::fixed(ms(100)));
    assert_eq!(plain.jitter(), Jitter::None);
    assert_eq!(plain.max_delay(), None);
    assert_eq!(plain.seed(), None);
}

#[test]
fn debug_output_describes_the_policy_and_hides_custom_functions() {
    let backoff = build(Backoff::linear(ms(100), ms(50)).max_retries(3));
    assert_eq!(
        format!("{backoff:?}"),
        "Backoff { strategy: Linear { initial: 100ms, increment: 50ms }, jitter: None, \
         max_delay: None, max_retries: Some(3), seed: None }"
    );
    let custom = build(Backoff::custom(|_| ms(1)));
    assert_eq!(format!("{:?}", custom.strategy()), "Custom(..)");
    assert!(format!("{custom:?}").contains("strategy: Custom(..)"));
    if let Strategy::Custom(f) = custom.strategy() {
        assert_eq!(format!("{f:?}"), "DelayFn(..)");
        assert_eq!(f.delay(7), ms(1));
    }
}

// ===== allocation =====

// Counts allocations per thread, so that tests running in parallel do not disturb each other.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with` fails only while the thread is being torn down; nothing is measured then.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches only a
// thread-local `Cell` that needs no allocation.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn schedules_do_not_allocate() {
    let policies: Vec<Backoff> = every_strategy()
        .into_iter()
        .flat_map(|(name, builder)| {
            jitters_for(name).iter().map(move |&jitter| {
                build(builder.clone().jitter(jitter).max_delay(ms(5000)).max_retries(16))
            })
        })
        .collect();
    // Prove the counter works before trusting a zero.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1_u8]))) > 0);
    for backoff in &policies {
        let allocations = allocations_during(|| {
            let mut sum = Duration::ZERO;
            for delay in backoff.delays().chain(backoff.delays_seeded(1)) {
                sum = sum.saturating_add(delay);
            }
            for delay in backoff.delays_from(5, Some(ms(700))) {
                sum = sum.saturating_add(delay);
            }
            sum = sum.saturating_add(backoff.base_delay(u32::MAX));
            std::hint::black_box(sum);
        });
        assert_eq!(allocations, 0, "{backoff:?}");
    }
}
