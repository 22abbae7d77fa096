//! `conc-fan`: fan-out of 1M items over 8 workers, unordered against futures'
//! `buffer_unordered(8)` and ordered against `buffered(8)`, and fan-in of 8,
//! 1,000 and 10,000 streams against `futures::stream::select_all`.
//!
//! Every function processes `ITEMS` items per iteration; divide the time per
//! iteration by `ITEMS` for the time per item. Fan-in groups keep the total
//! fixed and vary the number of inputs, so a flat time across
//! `fan/in_8`, `fan/in_1000` and `fan/in_10000` means O(1) per item.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;

use conc_fan::{FanIn, FanOut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use tokio::runtime::Runtime;

const ITEMS: u64 = 1_000_000;
const WORKERS: usize = 8;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a tokio runtime")
}

async fn work(n: u64) -> Result<u64, std::convert::Infallible> {
    Ok(n.wrapping_mul(31) ^ 0x5555)
}

async fn sum(stream: impl futures::Stream<Item = u64>) -> u64 {
    stream.fold(0_u64, |sum, n| async move { sum.wrapping_add(n) }).await
}

/// Unordered fan-out against `buffer_unordered(8)`: results as they finish
/// on both sides.
fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fan/out_8_workers_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ITEMS));
    let unordered =
        FanOut::builder().workers(WORKERS).unordered().batch(64).build(work).expect("valid");
    let large =
        FanOut::builder().workers(WORKERS).unordered().batch(512).build(work).expect("valid");
    for (name, fan) in [("ours", &unordered), ("ours/batch_512", &large)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    sum(fan.process_stream(futures::stream::iter(0..ITEMS)).map(Result::unwrap))
                        .await,
                )
            });
        });
    }
    group.bench_function("peer/buffer_unordered_8", |b| {
        b.to_async(&rt).iter(|| async {
            let stream = futures::stream::iter(0..ITEMS)
                .map(work)
                .buffer_unordered(WORKERS)
                .map(Result::unwrap);
            black_box(sum(stream).await)
        });
    });
    group.finish();
}

/// Ordered fan-out against `buffered(8)`: results in input order on both sides.
fn fan_out_ordered(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fan/out_8_workers_1m_ordered");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ITEMS));
    let ordered = FanOut::builder().workers(WORKERS).batch(64).build(work).expect("valid");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                sum(ordered.process_stream(futures::stream::iter(0..ITEMS)).map(Result::unwrap))
                    .await,
            )
        });
    });
    group.bench_function("peer/buffered_8", |b| {
        b.to_async(&rt).iter(|| async {
            let stream =
                futures::stream::iter(0..ITEMS).map(work).buffered(WORKERS).map(Result::unwrap);
            black_box(sum(stream).await)
        });
    });
    group.finish();
}

/// About a microsecond of CPU work per item: what a fan-out is for.
async fn heavy(n: u64) -> Result<u64, std::convert::Infallible> {
    let mut acc = black_box(n);
    for i in 0..2_000 {
        acc = acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    Ok(acc)
}

/// The same fan-out with about 1 µs of CPU work per item, over 100,000
/// items: the workers run on both runtime threads, `buffer_unordered` on the
/// consumer's task only.
fn fan_out_cpu(c: &mut Criterion) {
    const CPU_ITEMS: u64 = 100_000;
    let rt = runtime();
    let mut group = c.benchmark_group("fan/out_8_workers_cpu_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CPU_ITEMS));
    let fan = FanOut::builder().workers(WORKERS).unordered().batch(64).build(heavy).expect("valid");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                sum(fan.process_stream(futures::stream::iter(0..CPU_ITEMS)).map(Result::unwrap))
                    .await,
            )
        });
    });
    group.bench_function("peer/buffer_unordered_8", |b| {
        b.to_async(&rt).iter(|| async {
            let stream = futures::stream::iter(0..CPU_ITEMS)
                .map(heavy)
                .buffer_unordered(WORKERS)
                .map(Result::unwrap);
            black_box(sum(stream).await)
        });
    });
    group.finish();
}

fn fan_in(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    for inputs in [8_u64, 1_000, 10_000] {
        let mut group = c.benchmark_group(format!("fan/in_{inputs}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(ITEMS));
        let per_input = ITEMS / inputs;
        group.bench_function("ours", |b| {
            b.to_async(&rt).iter(|| async {
                let mut fan_in = FanIn::new();
                for input in 0..inputs {
                    fan_in.add(futures::stream::iter(input * per_input..(input + 1) * per_input));
                }
                black_box(sum(fan_in).await)
            });
        });
        group.bench_function("peer/select_all", |b| {
            b.to_async(&rt).iter(|| async {
                let streams = (0..inputs)
                    .map(|input| futures::stream::iter(input * per_input..(input + 1) * per_input));
                black_box(sum(futures::stream::select_all(streams)).await)
            });
        });
        group.finish();
    }
}

criterion_group!(benches, fan_out, fan_out_ordered, fan_out_cpu, fan_in);
criterion_main!(benches);
