//! What the docs promise about memory, measured with a counting allocator:
//! `Keyed` gives the memory of a burst of keys back once they are idle, with
//! only known keys seen afterwards and no prune call; a key costs the key
//! plus 8 bytes and table slack (19–39 B for `u64` keys); a sliding log entry
//! 16 bytes (queue capacity up to twice the entries); a sliding window's
//! admissions allocate nothing.

#[path = "support/counting.rs"]
mod counting;

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{Keyed, Quota, SlidingLog, SlidingWindow};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// The slack in the documented bound: 1 024 keys of at most 64 bytes each.
const SLACK_KEYS: usize = 1_024;
const SLACK_BYTES: isize = 64 * 1_024;

#[test]
#[allow(clippy::print_stderr, reason = "the figures go to the report")]
fn a_burst_of_keys_is_given_back_without_a_prune_call() {
    let clock = ManualClock::new();
    // A key replenishes fully in one second: the eviction horizon.
    let limiter: Keyed<u64, ManualClock> =
        Keyed::builder(Quota::per_second(10).unwrap()).clock(clock.clone()).build();
    let active: Vec<u64> = (0..10).collect();
    for key in &active {
        limiter.try_acquire(key, 1).unwrap();
    }
    let baseline = counting::live();

    // A spike: 1 000 000 distinct keys, each touched once.
    for key in 1_000..1_001_000u64 {
        limiter.try_acquire(&key, 1).unwrap();
    }
    let peak = counting::live();
    let peak_keys = limiter.len();

    // Idle far past the horizon, then steady traffic on the 10 known keys
    // only, for a minute; nobody calls a prune.
    clock.advance(Duration::from_secs(3_600));
    for _ in 0..600 {
        clock.advance(Duration::from_millis(100));
        for key in &active {
            limiter.try_acquire(key, 1).unwrap();
        }
    }
    let after = counting::live();
    let kept = limiter.len();
    eprintln!(
        "keyed burst: baseline {baseline} B with 10 keys; peak {peak_keys} keys, {peak} B; \
         after idle + known-key traffic {kept} keys, {after} B"
    );
    assert!(kept <= 2 * active.len() + SLACK_KEYS, "{kept} keys kept");
    let bound = baseline + baseline / 10 + SLACK_BYTES;
    assert!(
        after <= bound,
        "heap {after} B after the burst, bound {bound} B (baseline {baseline})"
    );
    assert!(limiter.metrics().evicted >= 1_000_000, "{:?}", limiter.metrics());

    // Checks of known keys allocate nothing.
    let before = counting::allocations();
    for round in 0..1_000 {
        let _ = limiter.try_acquire(&active[round % active.len()], 1);
    }
    assert_eq!(counting::allocations(), before, "known-key checks allocated");
}

#[test]
#[allow(clippy::print_stderr, reason = "the figures go to the report")]
fn a_u64_key_costs_between_19_and_39_bytes() {
    for n in [10_000u64, 100_000, 300_000] {
        let before = counting::live();
        // One per day per key: every key stays live while it is measured.
        let limiter: Keyed<u64, ManualClock> =
            Keyed::builder(Quota::per_day(1).unwrap()).clock(ManualClock::new()).build();
        for key in 0..n {
            limiter.try_acquire(&key, 1).unwrap();
        }
        let per_key = (counting::live() - before) as f64 / n as f64;
        eprintln!("keyed: {n} u64 keys, {per_key:.1} B per key");
        assert!((16.0..=39.5).contains(&per_key), "{per_key} B per key for {n} keys");
    }
}

#[test]
fn a_sliding_log_entry_is_16_bytes_and_a_window_allocates_nothing() {
    let clock = ManualClock::new();
    let limit = 10_000;
    let log = SlidingLog::builder(limit, Duration::from_secs(3_600))
        .clock(clock.clone())
        .build()
        .unwrap();
    let before = counting::live();
    for _ in 0..limit {
        clock.advance(Duration::from_millis(1));
        log.try_acquire(1).unwrap();
    }
    assert_eq!(log.entries(), limit as usize);
    let bytes = counting::live() - before;
    let entries = isize::try_from(limit).unwrap();
    assert!(bytes >= 16 * entries && bytes <= 2 * 16 * entries, "{bytes} B for {limit} entries");
    // Past the limit nothing grows: the log never holds more than `limit`.
    for _ in 0..1_000 {
        clock.advance(Duration::from_millis(1));
        let _ = log.try_acquire(1);
    }
    assert!(log.entries() <= limit as usize);

    let window =
        SlidingWindow::builder(1_000, Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    let before = (counting::live(), counting::allocations());
    for _ in 0..10_000 {
        clock.advance(Duration::from_micros(300));
        let _ = window.try_acquire(1);
    }
    assert_eq!((counting::live(), counting::allocations()), before, "admissions allocate nothing");
}
