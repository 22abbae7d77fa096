//! `conc-pipeline`: a three-stage map over 1M small items, and the cost of one
//! stage hop, beside what a user would write instead: tokio `mpsc` channels
//! with a spawned task per stage, or a chain of futures `buffered` stages.
//!
//! Every function processes `ITEMS` items per iteration (criterion reports
//! the time per iteration; divide by `ITEMS` for the time per item). The
//! runtime is tokio's multi-threaded one with two workers, so spawned stages
//! can run in parallel.
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;

use conc_pipeline::{Pipeline, Stage};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const ITEMS: u64 = 1_000_000;
/// Per-stage concurrency and channel capacity, the same on every side.
const CONCURRENCY: usize = 8;
const CAPACITY: usize = 1_024;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a tokio runtime")
}

async fn step_a(n: u64) -> u64 {
    n.wrapping_mul(31)
}
async fn step_b(n: u64) -> u64 {
    n ^ 0x5555
}
async fn step_c(n: u64) -> u64 {
    n.wrapping_add(7)
}

fn three_stage(spawn: Option<usize>) -> Pipeline<u64, u64> {
    let stage = |stage: Stage<u64, u64>| match spawn {
        Some(batch) => {
            stage.concurrency(CONCURRENCY).buffer(CAPACITY).spawn().hand_off_batch(batch)
        }
        None => stage.concurrency(CONCURRENCY),
    };
    Pipeline::builder()
        .then(stage(Stage::map("a", step_a)))
        .then(stage(Stage::map("b", step_b)))
        .then(stage(Stage::map("c", step_c)))
        .build()
        .expect("valid pipeline")
}

async fn drain(stream: impl futures::Stream<Item = u64>) -> u64 {
    stream.fold(0_u64, |sum, n| async move { sum.wrapping_add(n) }).await
}

/// The same pipeline by hand: one spawned task per stage, bounded channels between.
async fn hand_written_mpsc() -> u64 {
    let (tx_a, mut rx_a) = mpsc::channel::<u64>(CAPACITY);
    let (tx_b, mut rx_b) = mpsc::channel::<u64>(CAPACITY);
    let (tx_c, mut rx_c) = mpsc::channel::<u64>(CAPACITY);
    let source = tokio::spawn(async move {
        for n in 0..ITEMS {
            if tx_a.send(step_a(n).await).await.is_err() {
                return;
            }
        }
    });
    let b = tokio::spawn(async move {
        while let Some(n) = rx_a.recv().await {
            if tx_b.send(step_b(n).await).await.is_err() {
                return;
            }
        }
    });
    let c = tokio::spawn(async move {
        while let Some(n) = rx_b.recv().await {
            if tx_c.send(step_c(n).await).await.is_err() {
                return;
            }
        }
    });
    let mut sum = 0_u64;
    while let Some(n) = rx_c.recv().await {
        sum = sum.wrapping_add(n);
    }
    let _ = (source.await, b.await, c.await);
    sum
}

fn map3(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pipeline/map3_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ITEMS));
    let inline = three_stage(None);
    let spawned = three_stage(Some(64));
    let expected = rt.block_on(drain(
        inline.process_stream(futures::stream::iter(0..ITEMS)).map(Result::unwrap),
    ));
    assert_eq!(rt.block_on(hand_written_mpsc()), expected, "the peers compute the same");

    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                drain(inline.process_stream(futures::stream::iter(0..ITEMS)).map(Result::unwrap))
                    .await,
            )
        });
    });
    group.bench_function("ours/spawned_batched", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                drain(spawned.process_stream(futures::stream::iter(0..ITEMS)).map(Result::unwrap))
                    .await,
            )
        });
    });
    group.bench_function("peer/tokio_mpsc_tasks", |b| {
        b.to_async(&rt).iter(|| async { black_box(hand_written_mpsc().await) });
    });
    group.bench_function("peer/futures_buffered", |b| {
        b.to_async(&rt).iter(|| async {
            let chain = futures::stream::iter(0..ITEMS)
                .map(step_a)
                .buffered(CONCURRENCY)
                .map(step_b)
                .buffered(CONCURRENCY)
                .map(step_c)
                .buffered(CONCURRENCY);
            black_box(drain(chain).await)
        });
    });
    group.finish();
}

/// One spawned stage that passes items through: the cost of the hop, per
/// item or in batches of 64, against one tokio `mpsc` hop between two tasks.
fn hop(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pipeline/hop_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ITEMS));
    let hop_with = |batch: usize| {
        Pipeline::builder()
            .then(
                Stage::map("hop", |n: u64| async move { n })
                    .buffer(CAPACITY)
                    .spawn()
                    .hand_off_batch(batch),
            )
            .build()
            .expect("valid pipeline")
    };
    for (name, batch) in [("ours/unbatched", 1), ("ours/batch_64", 64)] {
        let pipeline = hop_with(batch);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    drain(
                        pipeline
                            .process_stream(futures::stream::iter(0..ITEMS))
                            .map(Result::unwrap),
                    )
                    .await,
                )
            });
        });
    }
    group.bench_function("peer/tokio_mpsc_hop", |b| {
        b.to_async(&rt).iter(|| async {
            let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
            let producer = tokio::spawn(async move {
                for n in 0..ITEMS {
                    if tx.send(n).await.is_err() {
                        return;
                    }
                }
            });
            let mut sum = 0_u64;
            while let Some(n) = rx.recv().await {
                sum = sum.wrapping_add(n);
            }
            let _ = producer.await;
            black_box(sum)
        });
    });
    group.finish();
}

criterion_group!(benches, map3, hop);
criterion_main!(benches);
