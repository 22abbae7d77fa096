//! Property tests of `conc_core::backoff`: for every strategy and jitter mode, the cap holds after
//! jitter, jitter stays within its bounds, deterministic schedules never shrink, limits count
//! right, and resuming equals skipping.

use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, BackoffBuilder, Jitter};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// How many delays of each schedule the properties look at.
const DELAYS: usize = 48;

/// A strategy to test, with whatever parameters beyond the first delay it needs.
#[derive(Clone, Debug)]
enum Kind {
    Fixed,
    Linear { increment: Duration },
    Exponential { factor: f64 },
    Fibonacci,
    Decorrelated,
    Custom { table: Arc<[Duration]> },
}

impl Kind {
    fn builder(&self, initial: Duration) -> BackoffBuilder {
        match self {
            Self::Fixed => Backoff::fixed(initial),
            Self::Linear { increment } => Backoff::linear(initial, *increment),
            Self::Exponential { factor } => Backoff::exponential(initial).factor(*factor),
            Self::Fibonacci => Backoff::fibonacci(initial),
            Self::Decorrelated => Backoff::decorrelated_jitter(initial),
            Self::Custom { table } => {
                let table = Arc::clone(table);
                Backoff::custom(move |n| table[n as usize % table.len()])
            }
        }
    }

    /// Whether the schedule without jitter is a non-decreasing function of the index.
    fn is_monotonic(&self) -> bool {
        !matches!(self, Self::Decorrelated | Self::Custom { .. })
    }
}

/// Durations from a nanosecond to the largest, weighted towards realistic values.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        8 => (1_u64..=3_600_000_000_000).prop_map(Duration::from_nanos),
        1 => (1_u64..=u64::MAX).prop_map(Duration::from_nanos),
        1 => prop_oneof![
            Just(Duration::from_nanos(1)),
            Just(Duration::from_secs(u64::MAX / 2)),
            Just(Duration::MAX),
        ],
    ]
}

fn factor() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 1.0_f64..=10.0,
        1 => Just(1.0),
        1 => prop_oneof![Just(f64::MAX), 1.0_f64..=f64::MAX],
    ]
}

/// Every strategy except decorrelated jitter, which only accepts `Jitter::None`.
fn jitterable_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Fixed),
        duration().prop_map(|increment| Kind::Linear { increment }),
        factor().prop_map(|factor| Kind::Exponential { factor }),
        Just(Kind::Fibonacci),
        proptest::collection::vec(prop_oneof![Just(Duration::ZERO), duration()], 1..16)
            .prop_map(|table| Kind::Custom { table: table.into() }),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal)]
}

/// Any valid combination of strategy and jitter mode.
fn kind_and_jitter() -> impl Strategy<Value = (Kind, Jitter)> {
    prop_oneof![
        5 => (jitterable_kind(), jitter()),
        1 => Just((Kind::Decorrelated, Jitter::None)),
    ]
}

/// A cap at or above `initial` (so that the policy is valid), from equal to far above.
fn cap_above(initial: Duration, extra: Duration, scale: u32) -> Duration {
    initial.saturating_add(extra.saturating_mul(scale) / 1000)
}

/// A retry index from the start, the middle or the very end of the `u32` range.
fn retry_index() -> impl Strategy<Value = u32> {
    prop_oneof![0_u32..256, any::<u32>(), (u32::MAX - 64)..=u32::MAX]
}

proptest! {
    // Integration tests have no lib.rs for proptest to anchor its default regression directory
    // on; keep failing cases next to this file instead.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_delay_is_within_max_delay(
        (kind, jitter) in kind_and_jitter(),
        initial in duration(),
        extra in duration(),
        scale in 0_u32..=2000,
        seed in any::<u64>(),
        start in retry_index(),
        previous in proptest::option::of(duration()),
    ) {
        let max_delay = cap_above(initial, extra, scale);
        let backoff = kind.builder(initial).jitter(jitter).max_delay(max_delay).build().unwrap();
        for (retry, delay) in (0..).zip(backoff.delays_seeded(seed).take(DELAYS)) {
            prop_assert!(delay <= max_delay, "index {}: {:?} > {:?}", retry, delay, max_delay);
            prop_assert!(backoff.delay_bounds(retry).contains(&delay));
        }
        let mut resumed = backoff.delays_from(start, previous);
        for delay in resumed.by_ref().take(DELAYS) {
            prop_assert!(delay <= max_delay, "resumed at {}: {:?} > {:?}", start, delay, max_delay);
        }
        prop_assert!(backoff.base_delay(start) <= max_delay);
    }

    #[test]
    fn without_jitter_the_schedule_never_decreases(
        kind in jitterable_kind().prop_filter("monotonic strategies", Kind::is_monotonic),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        start in retry_index(),
    ) {
        let mut builder = kind.builder(initial);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        let delays: Vec<Duration> = backoff.delays().take(DELAYS).collect();
        prop_assert_eq!(delays[0], backoff.base_delay(0));
        for (retry, pair) in (0..).zip(delays.windows(2)) {
            prop_assert!(pair[0] <= pair[1], "index {}: {:?} > {:?}", retry, pair[0], pair[1]);
            prop_assert_eq!(pair[1], backoff.base_delay(retry + 1));
        }
        let next = start.saturating_add(1);
        prop_assert!(backoff.base_delay(start) <= backoff.base_delay(next));
        prop_assert!(backoff.base_delay(0) <= backoff.base_delay(start));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_base_delay(
        kind in jitterable_kind(),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        seed in any::<u64>(),
        start in retry_index(),
    ) {
        let mut builder = kind.builder(initial).jitter(Jitter::Full).seed(seed);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        for (retry, delay) in (0..).zip(backoff.delays().take(DELAYS)) {
            prop_assert!(delay <= backoff.base_delay(retry), "index {}: {:?}", retry, delay);
        }
        for (step, delay) in (0..).zip(backoff.delays_from(start, None).take(DELAYS)) {
            let retry = start.saturating_add(step);
            prop_assert!(delay <= backoff.base_delay(retry), "index {}: {:?}", retry, delay);
        }
    }

    #[test]
    fn equal_jitter_stays_between_half_and_all_of_the_base_delay(
        kind in jitterable_kind(),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        seed in any::<u64>(),
        start in retry_index(),
    ) {
        let mut builder = kind.builder(initial).jitter(Jitter::Equal).seed(seed);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        let check = |retry: u32, delay: Duration| {
            let base = backoff.base_delay(retry);
            base / 2 <= delay && delay <= base
        };
        for (retry, delay) in (0..).zip(backoff.delays().take(DELAYS)) {
            prop_assert!(check(retry, delay), "index {}: {:?}", retry, delay);
        }
        for (step, delay) in (0..).zip(backoff.delays_from(start, None).take(DELAYS)) {
            let retry = start.saturating_add(step);
            prop_assert!(check(retry, delay), "index {}: {:?}", retry, delay);
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_its_bound(
        base in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        seed in any::<u64>(),
        start in retry_index(),
        previous in proptest::option::of(duration()),
    ) {
        let mut builder = Backoff::decorrelated_jitter(base).seed(seed);
        let cap = max_delay.map(|(extra, scale)| cap_above(base, extra, scale));
        if let Some(cap) = cap {
            builder = builder.max_delay(cap);
        }
        let backoff = builder.build().unwrap();
        let cap = cap.unwrap_or(Duration::MAX);
        let mut previous_delay = base;
        for (retry, delay) in (0..).zip(backoff.delays().take(DELAYS)) {
            prop_assert!(base <= delay && delay <= cap, "index {}: {:?}", retry, delay);
            prop_assert!(delay <= backoff.base_delay(retry), "index {}: {:?}", retry, delay);
            prop_assert!(delay <= previous_delay.saturating_mul(3), "index {}: {:?}", retry, delay);
            previous_delay = delay;
        }
        for delay in backoff.delays_from(start, previous).take(DELAYS) {
            prop_assert!(base <= delay && delay <= cap, "resumed at {}: {:?}", start, delay);
        }
    }

    #[test]
    fn max_attempts_yields_one_delay_fewer_than_attempts(
        (kind, jitter) in kind_and_jitter(),
        initial in duration(),
        attempts in 1_u32..=300,
        seed in any::<u64>(),
    ) {
        let backoff = kind.builder(initial).jitter(jitter).max_attempts(attempts).seed(seed).build().unwrap();
        prop_assert_eq!(backoff.max_attempts(), Some(attempts));
        prop_assert_eq!(backoff.max_retries(), Some(attempts - 1));
        let delays = backoff.delays();
        prop_assert_eq!(delays.size_hint(), ((attempts - 1) as usize, Some((attempts - 1) as usize)));
        prop_assert_eq!(delays.count(), (attempts - 1) as usize);
        let retries = kind.builder(initial).jitter(jitter).max_retries(attempts).build().unwrap();
        prop_assert_eq!(retries.delays().count(), attempts as usize);
    }

    #[test]
    fn resuming_equals_skipping(
        (kind, jitter) in kind_and_jitter(),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        seed in any::<u64>(),
        next in 0_u32..40,
    ) {
        let mut builder = kind.builder(initial).jitter(jitter).max_retries(40).seed(seed);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        let whole: Vec<Duration> = backoff.delays().collect();
        let previous = next.checked_sub(1).map(|i| whole[i as usize]);
        let resumed: Vec<Duration> = backoff.delays_from(next, previous).collect();
        prop_assert_eq!(&resumed[..], &whole[next as usize..]);
    }

    /// Without jitter a schedule is its base delays, wherever it starts: the shortcuts that
    /// carry fixed and Fibonacci schedules forward by addition agree with the formula.
    #[test]
    fn without_jitter_a_schedule_is_its_base_delays(
        kind in jitterable_kind(),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        start in retry_index(),
    ) {
        let mut builder = kind.builder(initial);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        let formula: Vec<Duration> = (u64::from(start)..)
            .take(DELAYS)
            .map(|index| backoff.base_delay(u32::try_from(index).unwrap_or(u32::MAX)))
            .collect();
        let schedule: Vec<Duration> = backoff.delays_from(start, None).take(DELAYS).collect();
        prop_assert_eq!(schedule, formula);
    }
    /// Consuming a schedule whole (`fold`, `sum`, `for_each`, which take a loop of their own
    /// for fixed and Fibonacci steps) yields exactly the delays `next` yields, from any start.
    #[test]
    fn folding_a_schedule_equals_stepping_it(
        (kind, jitter) in kind_and_jitter(),
        initial in duration(),
        max_delay in proptest::option::of((duration(), 0_u32..=2000)),
        seed in any::<u64>(),
        retries in 0_u32..60,
        next in 0_u32..70,
    ) {
        let mut builder = kind.builder(initial).jitter(jitter).max_retries(retries).seed(seed);
        if let Some((extra, scale)) = max_delay {
            builder = builder.max_delay(cap_above(initial, extra, scale));
        }
        let backoff = builder.build().unwrap();
        let previous = Some(initial);
        let mut schedule = backoff.delays_from(next, previous);
        // `from_fn` steps with `next` alone, whatever the iterator's own `fold` does.
        let stepped: Vec<Duration> = std::iter::from_fn(|| schedule.next()).collect();
        let folded = backoff.delays_from(next, previous).fold(Vec::new(), |mut all, delay| {
            all.push(delay);
            all
        });
        prop_assert_eq!(stepped.len(), retries.saturating_sub(next) as usize);
        prop_assert_eq!(folded, stepped);
    }
}
