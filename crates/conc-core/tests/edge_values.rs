//! Bad input never panics, aborts or hangs: every public constructor and
//! setter of conc-core fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds, NaN, ±∞), each call in
//! `catch_unwind` under a watchdog; what is built is then used.

use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use conc_core::backoff::{Backoff, BackoffBuilder, Jitter};
use conc_core::config;
use conc_core::item::{DeadLetter, DeadLetterQueue, DeadLetterSink, ItemError, Origin};
use conc_core::ready::ReadyQueue;
use conc_core::recent::RecentLog;
use conc_core::time::{CoarseClock, ManualClock, Timeline, saturating_nanos};
use conc_test_support::edge::{self, DURATIONS, U32, U64, USIZE, no_panic, within};
use proptest::prelude::*;

const FACTORS: [f64; 8] =
    [0.0, 1.0, 1.5, 2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX];

/// Every strategy constructor with `d` for each of its durations.
fn strategies(d: Duration) -> Vec<BackoffBuilder> {
    vec![
        Backoff::fixed(d),
        Backoff::linear(d, d),
        Backoff::exponential(d),
        Backoff::fibonacci(d),
        Backoff::decorrelated_jitter(d),
        Backoff::custom(move |n| d.saturating_mul(n)),
    ]
}

/// Builds and uses a backoff from `builder`: a refusal is fine, a panic is not.
fn exercise(builder: BackoffBuilder) {
    if let Ok(backoff) = builder.build() {
        for retry in U32 {
            let _ = backoff.base_delay(retry);
            let _ = backoff.delay_bounds(retry);
            let _ = backoff.delays_from(retry, Some(Duration::MAX)).take(3).count();
        }
        let _ = backoff.delays().take(64).count();
    }
}

#[test]
fn backoff_builders_refuse_or_saturate_never_panic() {
    within(Duration::from_secs(60), || {
        let mut cases = 0;
        for d in DURATIONS {
            for (i, factor) in FACTORS.iter().enumerate() {
                for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
                    for builder in strategies(d) {
                        let configured = builder
                            .factor(*factor)
                            .jitter(jitter)
                            .max_delay(DURATIONS[i % DURATIONS.len()])
                            .max_retries(U32[i % U32.len()])
                            .seed(U64[i % U64.len()]);
                        no_panic(|| exercise(configured)).unwrap();
                        cases += 1;
                    }
                }
            }
            for attempts in U32 {
                for builder in strategies(d) {
                    no_panic(|| exercise(builder.clone().max_attempts(attempts))).unwrap();
                    no_panic(|| exercise(builder.max_retries(attempts).max_attempts(attempts)))
                        .unwrap();
                }
            }
        }
        assert!(cases > 1_000);
    });
}

#[test]
fn clocks_and_timelines_refuse_or_saturate() {
    within(Duration::from_secs(30), || {
        for d in DURATIONS {
            let _ = no_panic(|| CoarseClock::with_resolution(d)).unwrap();
            let clock = ManualClock::new();
            no_panic(|| clock.advance(d)).unwrap();
            no_panic(|| {
                let _ = clock.try_advance(d);
                let _ = clock.rewind(d);
                let _ = clock.set_elapsed(d);
                let _ = clock.set(Instant::now());
            })
            .unwrap();
            let timeline = Timeline::new(clock.clone());
            for nanos in U64 {
                no_panic(|| timeline.instant(nanos)).unwrap();
            }
            assert!(no_panic(|| timeline.now()).is_ok());
            let nanos = saturating_nanos(d);
            assert!(nanos == u64::MAX || u128::from(nanos) == d.as_nanos());
        }
    });
}

#[test]
fn logs_and_ready_queues_take_any_size_and_slot() {
    within(Duration::from_secs(30), || {
        for capacity in USIZE {
            let log = no_panic(|| RecentLog::new(capacity)).unwrap();
            no_panic(|| {
                for entry in 0..3 {
                    log.push(entry);
                }
                let _ = log.take();
            })
            .unwrap();
            let dead = DeadLetterQueue::<u8>::new(capacity);
            let now = Instant::now();
            no_panic(|| {
                dead.send(DeadLetter::new(
                    1,
                    ItemError::Panicked("x".into()),
                    Origin::Worker(capacity),
                    1,
                    now,
                    now,
                ));
            })
            .unwrap();
        }
        let queue = ReadyQueue::new();
        let owner = Waker::noop().clone();
        let mut woken = Vec::new();
        for slot in USIZE {
            let waker = no_panic(|| queue.waker(slot)).unwrap();
            waker.wake_by_ref();
        }
        queue.drain(&mut woken, &owner);
        assert_eq!(woken.len(), USIZE.len());
        let _ = Arc::strong_count(&queue);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_checks_name_the_field_and_never_panic(
        n in edge::u64s(),
        d in edge::durations(),
        text in edge::texts(),
        x in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), any::<f64>()],
    ) {
        let results = [
            config::at_least("n", n, 1).err(),
            config::at_most("n", n, 1 << 20).err(),
            config::between("x", x, 0.0, 1.0).err(),
            config::positive("d", d).err(),
            config::name("name", &text).err(),
        ];
        for error in results.into_iter().flatten() {
            prop_assert!(!error.field.is_empty() && !error.reason.is_empty());
            prop_assert!(error.to_string().starts_with("invalid `"));
        }
    }
}
