//! `conc-core`: clock reads and backoff schedules, beside the peers a user
//! would reach for instead (`std::time::Instant`, `quanta`, `backon`).
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use conc_core::backoff::{Backoff, Jitter};
use conc_core::time::{Clock, CoarseClock, ManualClock};
use criterion::{Criterion, criterion_group, criterion_main};

/// One clock read. The coarse clock should be several times cheaper than
/// `Instant::now()`; `quanta::Clock::now()` reads the TSC and is the peer a
/// user who wants cheap time picks today.
fn clock_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/clock_read");
    let coarse = CoarseClock::global();
    let manual = ManualClock::new();
    let quanta = quanta::Clock::new();
    group.bench_function("ours/coarse", |b| b.iter(|| black_box(coarse.now())));
    group.bench_function("ours/manual", |b| b.iter(|| black_box(manual.now())));
    group.bench_function("peer/instant_now", |b| b.iter(|| black_box(Instant::now())));
    group.bench_function("peer/quanta_now", |b| b.iter(|| black_box(quanta.now())));
    group.finish();
}

/// The total of a schedule: consuming every delay is what a retry loop does.
fn total(delays: impl Iterator<Item = Duration>) -> Duration {
    delays.fold(Duration::ZERO, |sum, d| sum + d)
}

/// One ours-against-backon group: both sides compute a whole schedule per iteration. When
/// `same_schedule` is set (deterministic strategies) the two schedules are checked equal first,
/// so the group compares the same work.
fn against_backon<P>(
    c: &mut Criterion,
    group_name: &str,
    ours: &Backoff,
    peer: P,
    same_schedule: bool,
) where
    P: backon::BackoffBuilder + Copy,
{
    if same_schedule {
        assert_eq!(
            ours.delays().collect::<Vec<_>>(),
            peer.build().collect::<Vec<_>>(),
            "{group_name}: the two sides must compute the same schedule"
        );
    }
    let mut group = c.benchmark_group(group_name);
    group.bench_function("ours", |b| b.iter(|| total(black_box(ours).delays())));
    group.bench_function("peer/backon", |b| b.iter(|| total(black_box(peer).build())));
    group.finish();
}

/// A full ten-retry exponential schedule with full jitter and a cap, the shape a retry loop
/// computes per failing call. Jittered schedules differ by their random draws, so only the
/// cost is compared.
fn backoff_exponential_jitter(c: &mut Criterion) {
    let ours = Backoff::exponential(Duration::from_millis(100))
        .jitter(Jitter::Full)
        .max_delay(Duration::from_secs(10))
        .max_retries(10)
        .build()
        .expect("valid backoff");
    let peer = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(10)
        .with_jitter();
    against_backon(c, "core/backoff_exponential_jitter_10", &ours, peer, false);
}

/// A ten-retry fixed schedule of 100 ms. Neither side has a cap (a fixed delay needs none).
fn backoff_fixed(c: &mut Criterion) {
    let ours = Backoff::fixed(Duration::from_millis(100)).max_retries(10).build().expect("valid");
    let peer =
        backon::ConstantBuilder::new().with_delay(Duration::from_millis(100)).with_max_times(10);
    against_backon(c, "core/backoff_fixed_10", &ours, peer, true);
}

/// A ten-retry Fibonacci schedule from 100 ms with a 10 s cap. The cap is not reached in ten
/// retries (the tenth delay is 5.5 s).
fn backoff_fibonacci(c: &mut Criterion) {
    let ours = Backoff::fibonacci(Duration::from_millis(100))
        .max_delay(Duration::from_secs(10))
        .max_retries(10)
        .build()
        .expect("valid");
    let peer = backon::FibonacciBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(10);
    against_backon(c, "core/backoff_fibonacci_10", &ours, peer, true);
}

/// Ten-retry linear (100 ms + 100 ms per retry) and decorrelated-jitter (base 100 ms)
/// schedules with a 10 s cap. Ours only: backon 1.x, the peer of the other backoff groups,
/// has no linear or decorrelated-jitter builder (only constant, exponential and Fibonacci),
/// so these groups have no peer and the summary shows our times alone.
fn backoff_without_peers(c: &mut Criterion) {
    let strategies = [
        (
            "core/backoff_linear_10",
            Backoff::linear(Duration::from_millis(100), Duration::from_millis(100)),
        ),
        (
            "core/backoff_decorrelated_jitter_10",
            Backoff::decorrelated_jitter(Duration::from_millis(100)),
        ),
    ];
    for (name, builder) in strategies {
        let mut group = c.benchmark_group(name);
        let ours =
            builder.max_delay(Duration::from_secs(10)).max_retries(10).build().expect("valid");
        group.bench_function("ours", |b| b.iter(|| total(black_box(&ours).delays())));
        group.finish();
    }
}

criterion_group!(
    benches,
    clock_read,
    backoff_exponential_jitter,
    backoff_fixed,
    backoff_fibonacci,
    backoff_without_peers
);
criterion_main!(benches);
