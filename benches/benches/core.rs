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

/// A full ten-retry exponential schedule with full jitter and a cap, the
/// shape a retry loop computes per failing call; `backon` is the peer.
fn backoff_schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/backoff_exponential_jitter_10");
    let ours = Backoff::exponential(Duration::from_millis(100))
        .jitter(Jitter::Full)
        .max_delay(Duration::from_secs(10))
        .max_retries(10)
        .build()
        .expect("valid backoff");
    group.bench_function("ours", |b| {
        b.iter(|| black_box(&ours).delays().fold(Duration::ZERO, |sum, d| sum + d));
    });
    group.bench_function("peer/backon", |b| {
        use backon::BackoffBuilder;
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(10)
            .with_jitter();
        b.iter(|| black_box(builder).build().fold(Duration::ZERO, |sum, d| sum + d));
    });
    group.finish();

    let mut group = c.benchmark_group("core/backoff_schedule_10");
    let strategies = [
        ("ours/fixed", Backoff::fixed(Duration::from_millis(100))),
        ("ours/linear", Backoff::linear(Duration::from_millis(100), Duration::from_millis(100))),
        ("ours/fibonacci", Backoff::fibonacci(Duration::from_millis(100))),
        ("ours/decorrelated_jitter", Backoff::decorrelated_jitter(Duration::from_millis(100))),
    ];
    for (name, builder) in strategies {
        let backoff =
            builder.max_delay(Duration::from_secs(10)).max_retries(10).build().expect("valid");
        group.bench_function(name, |b| {
            b.iter(|| black_box(&backoff).delays().fold(Duration::ZERO, |sum, d| sum + d));
        });
    }
    group.finish();
}

criterion_group!(benches, clock_read, backoff_schedule);
criterion_main!(benches);
