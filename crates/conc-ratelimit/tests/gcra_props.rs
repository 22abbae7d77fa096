//! GCRA against a reference model: the bucket-fill formulation in exact u128
//! arithmetic, fed the same arrivals on a manual clock.

use std::time::Duration;

use conc_core::time::{Clock, ManualClock};
use conc_ratelimit::{Gcra, Quota, RateLimitError};
use proptest::prelude::*;

/// A continuously refilling bucket measured in nanoseconds of credit:
/// capacity `burst × T`, one unit costs `T`.
struct Model {
    emission: u128,
    capacity: u128,
    level: u128,
    at: u128,
}

impl Model {
    fn new(emission: u64, burst: u32) -> Self {
        let capacity = u128::from(emission) * u128::from(burst);
        Self { emission: emission.into(), capacity, level: capacity, at: 0 }
    }

    fn check(&mut self, now: u128, n: u32) -> Result<(), u128> {
        let now = now.max(self.at);
        self.level = (self.level + (now - self.at)).min(self.capacity);
        self.at = now;
        let cost = self.emission * u128::from(n);
        if self.level >= cost {
            self.level -= cost;
            Ok(())
        } else {
            Err(cost - self.level)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_the_bucket_model(
        rate in 1u32..50,
        period_ms in 1u64..5_000,
        burst in 1u32..20,
        steps in proptest::collection::vec((0u64..400_000_000, 0u32..25), 1..120),
    ) {
        let quota = Quota::new(rate, Duration::from_millis(period_ms)).unwrap().with_burst(burst).unwrap();
        let clock = ManualClock::new();
        let gcra = Gcra::builder(quota).clock(clock.clone()).build();
        let mut model = Model::new(quota.emission_interval().as_nanos() as u64, burst);
        let mut now: u128 = 0;
        for (gap, n) in steps {
            clock.advance(Duration::from_nanos(gap));
            now += u128::from(gap);
            let ours = gcra.try_acquire(n);
            if n > burst {
                prop_assert_eq!(ours, Err(RateLimitError::ExceedsCapacity { requested: n, capacity: burst }));
                continue;
            }
            match model.check(now, n) {
                Ok(()) => prop_assert_eq!(ours, Ok(())),
                Err(wait) => {
                    prop_assert_eq!(ours, Err(RateLimitError::Limited { retry_after: Duration::from_nanos(wait as u64) }));
                }
            }
            prop_assert_eq!(u128::from(gcra.remaining()), model.level / model.emission);
        }
    }

    #[test]
    fn retry_after_is_exact(
        rate in 1u32..100,
        burst in 1u32..10,
        taken in 1u32..10,
        n in 1u32..10,
    ) {
        prop_assume!(taken <= burst && n <= burst);
        let quota = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
        let clock = ManualClock::new();
        let gcra = Gcra::builder(quota).clock(clock.clone()).build();
        gcra.try_acquire(taken).unwrap();
        if let Err(RateLimitError::Limited { retry_after }) = gcra.try_acquire(n) {
            prop_assert!(retry_after > Duration::ZERO);
            clock.advance(retry_after.checked_sub(Duration::from_nanos(1)).unwrap());
            prop_assert!(gcra.try_acquire(n).is_err(), "admitted 1ns early");
            clock.advance(Duration::from_nanos(1));
            prop_assert_eq!(gcra.try_acquire(n), Ok(()));
        } else {
            prop_assert!(taken + n <= burst);
        }
    }

    #[test]
    fn window_bound_holds(
        steps in proptest::collection::vec((0u64..50_000_000, 1u32..4), 1..300),
        window_ms in 1u64..2_000,
    ) {
        // Over any window w, admitted units ≤ burst + floor(w / T).
        let quota = Quota::per_second(20).unwrap().with_burst(5).unwrap();
        let emission = quota.emission_interval().as_nanos() as u64;
        let clock = ManualClock::new();
        let gcra = Gcra::builder(quota).clock(clock.clone()).build();
        let mut admitted: Vec<(u64, u32)> = Vec::new();
        let mut now = 0u64;
        for (gap, n) in steps {
            clock.advance(Duration::from_nanos(gap));
            now += gap;
            if gcra.try_acquire(n).is_ok() {
                admitted.push((now, n));
            }
        }
        let window = window_ms * 1_000_000;
        for (i, &(start, _)) in admitted.iter().enumerate() {
            let total: u64 = admitted[i..].iter().take_while(|(t, _)| *t < start + window).map(|(_, n)| u64::from(*n)).sum();
            prop_assert!(total <= 5 + window / emission, "{total} units in {window_ms} ms");
        }
    }

    #[test]
    fn a_backwards_clock_is_never_stricter(
        steps in proptest::collection::vec((any::<bool>(), 0u64..100_000_000, 1u32..3), 1..100),
    ) {
        // Compared with a limiter whose clock never goes back, a limiter whose
        // clock sometimes steps back decides identically: readings are clamped.
        let quota = Quota::per_second(10).unwrap().with_burst(3).unwrap();
        let jumpy = ManualClock::new();
        let steady = ManualClock::with_origin(jumpy.origin());
        let a = Gcra::builder(quota).clock(jumpy.clone()).build();
        let b = Gcra::builder(quota).clock(steady.clone()).build();
        for (back, step, n) in steps {
            if back {
                let _ = jumpy.rewind(Duration::from_nanos(step));
            } else {
                let target = steady.elapsed() + Duration::from_nanos(step);
                steady.set_elapsed(target).unwrap();
                jumpy.set_elapsed(target).unwrap();
            }
            prop_assert_eq!(a.try_acquire(n), b.try_acquire(n));
        }
    }
}
