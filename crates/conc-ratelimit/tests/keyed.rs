//! The keyed limiter: the conformance suite it shares with the Redis
//! limiter, independent keys, exact waits, automatic eviction that bounds
//! memory and never changes a decision.

mod conformance;

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{Keyed, Quota, RateLimitError, TokioClock};
use proptest::prelude::*;

/// The in-memory limiter under the conformance suite, on a manual clock.
struct Memory {
    limiter: Keyed<String, ManualClock>,
    clock: ManualClock,
}

impl conformance::Subject for Memory {
    async fn try_acquire(&self, key: &str, n: u32) -> Result<(), RateLimitError> {
        self.limiter.try_acquire(&key.to_owned(), n)
    }

    async fn remaining(&self, key: &str) -> u32 {
        self.limiter.remaining(&key.to_owned())
    }

    async fn reset(&self, key: &str) {
        self.limiter.reset(&key.to_owned());
    }

    async fn pass(&self, elapsed: Duration) {
        self.clock.advance(elapsed);
    }
}

conformance::suite!(async |quota: Quota| {
    let (limiter, clock) = keyed::<String>(quota);
    Some((Memory { limiter, clock }, Box::new(()) as conformance::KeepAlive))
});

fn keyed<K: std::hash::Hash + Eq + Clone>(quota: Quota) -> (Keyed<K, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (Keyed::builder(quota).clock(clock.clone()).build(), clock)
}

#[test]
fn keys_are_independent_with_exact_waits() {
    let (limiter, clock) = keyed::<String>(Quota::per_second(2).unwrap());
    let alice = "alice".to_owned();
    let bob = "bob".to_owned();
    assert_eq!(limiter.try_acquire(&alice, 2), Ok(()));
    assert_eq!(
        limiter.try_acquire(&alice, 1),
        Err(RateLimitError::Limited { retry_after: Duration::from_millis(500) })
    );
    assert_eq!(limiter.remaining(&bob), 2, "an unknown key has its whole burst");
    assert_eq!(limiter.try_acquire(&bob, 1), Ok(()));
    assert_eq!(limiter.remaining(&bob), 1);
    assert_eq!(limiter.retry_after(&alice, 2), Ok(Duration::from_secs(1)));
    assert_eq!(limiter.reset_after(&alice), Duration::from_secs(1));
    clock.advance(Duration::from_millis(500));
    assert_eq!(limiter.try_acquire(&alice, 1), Ok(()));
    assert_eq!(
        limiter.try_acquire(&alice, 3),
        Err(RateLimitError::ExceedsCapacity { requested: 3, capacity: 2 })
    );
}

#[test]
fn decide_is_per_key() {
    let (limiter, _clock) = keyed::<u64>(Quota::per_minute(2).unwrap());
    assert!(limiter.decide("per-user", &1, 2).unwrap().allowed());
    let refused = limiter.decide("per-user", &1, 1).unwrap();
    assert!(!refused.allowed());
    assert_eq!(refused.retry_after(), Duration::from_secs(30));
    assert_eq!(limiter.decide("per-user", &2, 1).unwrap().remaining(), 1);
}

#[test]
fn batches_queries_and_resets() {
    let (limiter, _clock) = keyed::<u64>(Quota::per_second(5).unwrap());
    assert_eq!(limiter.try_acquire_batch(&1, 0), Ok(0));
    assert_eq!(limiter.try_acquire_batch(&1, 3), Ok(3));
    assert_eq!(limiter.try_acquire_batch(&1, 9), Ok(2));
    assert!(limiter.try_acquire_batch(&1, 9).is_err());
    assert_eq!(limiter.try_acquire_batch(&2, 9), Ok(5));
    assert_eq!(limiter.len(), 2);
    limiter.reset(&1);
    assert_eq!(limiter.remaining(&1), 5);
    assert_eq!(limiter.len(), 1);
    limiter.reset_all();
    assert!(limiter.is_empty());
    assert_eq!(limiter.capacity(), 5);
    assert_eq!(limiter.quota(), Quota::per_second(5).unwrap());
    assert!(format!("{limiter:?}").contains("Keyed"));
}

#[test]
fn memory_stays_bounded_while_keys_churn() {
    // 200 000 distinct keys, 1 000 new ones per millisecond, each idle after
    // 10 ms: about 10 000 are live at any time. Nobody calls a prune.
    let (limiter, clock) = keyed::<u64>(Quota::per_second(100).unwrap().with_burst(1).unwrap());
    let mut peak = 0;
    for key in 0..200_000u64 {
        if key % 1_000 == 0 {
            clock.advance(Duration::from_millis(1));
        }
        limiter.try_acquire(&key, 1).unwrap();
        peak = peak.max(limiter.len());
    }
    let metrics = limiter.metrics();
    assert!(peak <= 2 * 11_000 + 1_024, "peak {peak} keys");
    assert!(metrics.evicted >= 170_000, "{metrics:?}");
    assert!(metrics.sweeps > 5, "{metrics:?}");
    assert_eq!(metrics.keys, limiter.len() as u64);
    conc_core::metrics::MetricsSource::reset_metrics(&limiter);
    assert_eq!(limiter.metrics().evicted, 0);
    assert_eq!(conc_core::metrics::MetricsSnapshot::entries(&limiter.metrics()).len(), 6);
}

#[test]
fn live_keys_are_never_evicted() {
    let (limiter, clock) = keyed::<u64>(Quota::per_minute(1).unwrap());
    limiter.try_acquire(&7, 1).unwrap();
    // Many short-lived keys trigger sweeps; key 7 stays charged for a minute.
    for key in 100..20_000u64 {
        limiter.try_acquire(&key, 1).unwrap();
        limiter.reset(&key);
    }
    clock.advance(Duration::from_secs(30));
    assert_eq!(limiter.evict_idle(), 0);
    assert!(limiter.try_acquire(&7, 1).is_err());
}

#[test]
fn concurrent_callers_on_one_key_get_exactly_the_burst() {
    let (limiter, _clock) = keyed::<&str>(Quota::per_hour(500).unwrap());
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| (0..400).filter(|_| limiter.try_acquire(&"k", 1).is_ok()).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 500);
}

/// Checks on a key write-lock its shard when no other thread is in it and
/// charge by compare-and-swap under the read lock when one is: with more
/// threads than cores, both kinds meet on the same keys (and `decide` and
/// batches beside them), and no unit is admitted twice or lost.
#[test]
fn both_ways_of_charging_a_key_admit_exactly_the_burst_together() {
    const BURST: u32 = 10_000;
    let (limiter, _clock) = keyed::<u64>(Quota::per_hour(BURST).unwrap());
    let admitted: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8_u64)
            .map(|thread| {
                let limiter = &limiter;
                scope.spawn(move || {
                    let mut units = 0_u64;
                    for i in 0..12_000_u64 {
                        let key = (i + thread) % 4;
                        units += match i % 16 {
                            0 => u64::from(limiter.decide("p", &key, 1).unwrap().allowed()),
                            1 => u64::from(limiter.try_acquire_batch(&key, 3).unwrap_or(0)),
                            _ => u64::from(limiter.try_acquire(&key, 1).is_ok()),
                        };
                    }
                    units
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 4 * u64::from(BURST));
    assert!((0..4).all(|key| limiter.remaining(&key) == 0));
    assert_eq!(limiter.metrics().keys, 4);
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_per_key() {
    let limiter: Keyed<u32, TokioClock> =
        Keyed::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build();
    let started = tokio::time::Instant::now();
    limiter.acquire(&1, 1).await.unwrap();
    limiter.acquire(&2, 1).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    limiter.acquire(&1, 1).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A fully replenished key is indistinguishable from an absent one, so
    /// evicting at any moment changes no decision.
    #[test]
    fn eviction_never_changes_a_decision(
        steps in proptest::collection::vec((0u8..6, 0u64..400_000_000, 1u32..4, any::<bool>()), 1..200),
    ) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(5).unwrap().with_burst(3).unwrap();
        let evicting: Keyed<u8, ManualClock> = Keyed::builder(quota).clock(clock.clone()).build();
        let keeping: Keyed<u8, ManualClock> = Keyed::builder(quota).clock(clock.clone()).build();
        for (key, gap, n, evict) in steps {
            clock.advance(Duration::from_nanos(gap));
            if evict {
                evicting.evict_idle();
            }
            prop_assert_eq!(evicting.try_acquire(&key, n), keeping.try_acquire(&key, n));
            prop_assert_eq!(evicting.remaining(&key), keeping.remaining(&key));
        }
    }
}

static_assertions::assert_impl_all!(Keyed<String>: Send, Sync);
