//! `conc-resilience`: the circuit breaker's closed path (admit + record) and
//! open path (rejection) beside `failsafe` and `recloser`, the Rust circuit
//! breakers a user would pick instead, on one and two threads; the bulkhead
//! and the retry (no retry needed) each compared like for like: the plain
//! primitive beside the plain peer (a `tokio::sync::Semaphore` permit,
//! `backon`'s retry) and the tower layer beside tower's own layer
//! (`ConcurrencyLimit`, `Retry`); the load shedder beside a semaphore taking
//! the same units; the fallback beside the floor (a bare call answering the
//! failure by hand, listed as `peer/…` so its ratio is printed: no peer
//! answers failures by kind); and the whole stack (timeout + retry + breaker +
//! bulkhead) beside a lone breaker and a bare call, on a current-thread tokio
//! runtime.
//!
//! A counting global allocator checks, before any measurement, that our
//! closed and open paths allocate nothing per call: the bench panics if they
//! do. Each peer runs with its defaults (failsafe `Config::new()`, recloser
//! `Recloser::default()`), which is what a user gets; ours runs with its
//! defaults too (count window of 100 calls on the coarse clock).
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::Retryable as _;
use conc_core::BoxError;
use conc_resilience::{
    Attempt, Bulkhead, BulkheadLayer, CircuitBreaker, ErrorKind, FailureWindow, Fallback,
    FallbackLayer, LoadShedder, LoadShedderLayer, ResilienceError, Retry, RetryLayer, Stack,
    Timeout,
};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use tower::{Layer, Service, ServiceExt};

/// Counts the allocations of each thread (other threads, such as the coarse
/// clock's updater starting up, do not disturb the count of the thread measured).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    ALLOCATIONS.with(|count| count.set(count.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `dealloc`; `new_size` is the caller's, checked by its contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `op` 100 000 times and returns the allocations per call.
fn allocations_per_call(mut op: impl FnMut()) -> f64 {
    const CALLS: u64 = 100_000;
    op();
    let before = allocations();
    for _ in 0..CALLS {
        op();
    }
    (allocations() - before) as f64 / CALLS as f64
}

#[allow(clippy::print_stderr, reason = "the allocation counts are part of the bench's output")]
fn assert_no_allocation(what: &str, op: impl FnMut()) {
    let per_call = allocations_per_call(op);
    eprintln!("allocations per call, {what}: {per_call}");
    assert!(per_call == 0.0, "{what} allocates {per_call} times per call");
}

#[allow(clippy::print_stderr, reason = "the allocation counts are part of the bench's output")]
fn report_allocations(what: &str, op: impl FnMut()) {
    eprintln!("allocations per call, {what}: {}", allocations_per_call(op));
}

fn ours() -> CircuitBreaker {
    CircuitBreaker::builder().build().expect("valid breaker")
}

fn ours_time_window() -> CircuitBreaker {
    CircuitBreaker::builder()
        .sliding_window(FailureWindow::time(Duration::from_secs(60)))
        .build()
        .expect("valid")
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

fn failsafe_default() -> Failsafe {
    failsafe::Config::new().build()
}

fn ours_closed(breaker: &CircuitBreaker) {
    let permit = black_box(breaker).try_acquire().expect("closed");
    permit.record(&black_box(Ok::<u32, ()>(1)));
}

/// One call through a closed breaker: admit, run a trivial call, record success.
fn closed_one_thread(c: &mut Criterion) {
    let breaker = ours();
    let timed = ours_time_window();
    let failsafe = failsafe_default();
    let recloser = recloser::Recloser::default();
    assert_no_allocation("ours, closed", || ours_closed(&breaker));
    assert_no_allocation("ours, closed, time window", || ours_closed(&timed));
    report_allocations("failsafe, closed", || drop(black_box(failsafe.call(|| Ok::<u32, ()>(1)))));
    report_allocations("recloser, closed", || drop(black_box(recloser.call(|| Ok::<u32, ()>(1)))));

    let mut group = c.benchmark_group("resilience/breaker_closed");
    group.bench_function("ours", |b| b.iter(|| ours_closed(&breaker)));
    group.bench_function("ours/time_window", |b| b.iter(|| ours_closed(&timed)));
    group.bench_function("peer/failsafe", |b| {
        b.iter(|| black_box(failsafe.call(|| black_box(Ok::<u32, ()>(1)))));
    });
    group.bench_function("peer/recloser", |b| {
        b.iter(|| black_box(recloser.call(|| black_box(Ok::<u32, ()>(1)))));
    });
    group.finish();

    let mut group = c.benchmark_group("resilience/baseline");
    let call = || black_box(Ok::<u32, ()>(1));
    group.bench_function("bare_call", |b| b.iter(|| black_box(call())));
    group.finish();
}

/// Runs `op` `iters` times on each of two threads at once; the time per
/// iteration is the wall time over `iters`, so it is the cost of one call on
/// each thread while the other thread calls too.
fn two_threads(iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            barrier.wait();
            for _ in 0..iters {
                op();
            }
        });
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        worker.join().expect("worker");
        start.elapsed()
    })
}

/// The closed path with two threads calling one shared breaker.
fn closed_two_threads(c: &mut Criterion) {
    let breaker = ours();
    let failsafe = failsafe_default();
    let recloser = recloser::Recloser::default();
    let mut group = c.benchmark_group("resilience/breaker_closed_2_threads");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| two_threads(iters, || ours_closed(&breaker)));
    });
    group.bench_function("peer/failsafe", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || drop(black_box(failsafe.call(|| black_box(Ok::<u32, ()>(1))))))
        });
    });
    group.bench_function("peer/recloser", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || drop(black_box(recloser.call(|| black_box(Ok::<u32, ()>(1))))))
        });
    });
    group.finish();
}

/// A call refused by an open breaker.
fn open(c: &mut Criterion) {
    let breaker = CircuitBreaker::builder()
        .minimum_calls(1)
        .wait_in_open(Duration::from_secs(3600))
        .build()
        .expect("valid");
    breaker.try_acquire().expect("closed").failure();
    assert!(breaker.try_acquire().is_err(), "ours is open");
    let failsafe = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(Duration::from_secs(3600)),
        ))
        .build();
    let _ = failsafe.call(|| Err::<(), ()>(()));
    assert!(!failsafe.is_call_permitted(), "failsafe is open");
    let recloser =
        recloser::Recloser::custom().closed_len(1).open_wait(Duration::from_secs(3600)).build();
    for _ in 0..2 {
        let _ = recloser.call(|| Err::<(), ()>(()));
    }
    assert!(
        matches!(recloser.call(|| Ok::<(), ()>(())), Err(recloser::Error::Rejected)),
        "recloser is open"
    );

    let ours_open = || {
        let rejected = black_box(&breaker).try_acquire().expect_err("open");
        black_box(rejected.retry_after());
    };
    assert_no_allocation("ours, open", ours_open);

    let mut group = c.benchmark_group("resilience/breaker_open");
    group.bench_function("ours", |b| b.iter(ours_open));
    group.bench_function("peer/failsafe", |b| {
        b.iter(|| black_box(failsafe.call(|| black_box(Ok::<u32, ()>(1)))));
    });
    group.bench_function("peer/recloser", |b| {
        b.iter(|| black_box(recloser.call(|| black_box(Ok::<u32, ()>(1)))));
    });
    group.finish();

    let mut group = c.benchmark_group("resilience/breaker_open_2_threads");
    group.bench_function("ours", |b| b.iter_custom(|iters| two_threads(iters, ours_open)));
    group.bench_function("peer/failsafe", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || drop(black_box(failsafe.call(|| black_box(Ok::<u32, ()>(1))))))
        });
    });
    group.bench_function("peer/recloser", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || drop(black_box(recloser.call(|| black_box(Ok::<u32, ()>(1))))))
        });
    });
    group.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

async fn op(_: Attempt) -> Result<u32, std::io::Error> {
    Ok(black_box(1))
}

/// One async call: bare, through a lone breaker, and through the whole stack.
fn stack(c: &mut Criterion) {
    let rt = runtime();
    let breaker = ours();
    let stack = Stack::builder()
        .total_timeout(Timeout::new(Duration::from_secs(30)).expect("valid"))
        .retry(Retry::builder().max_attempts(3).build().expect("valid"))
        .circuit_breaker(ours())
        .bulkhead(Bulkhead::builder().max_concurrent(64).build().expect("valid"))
        .build();
    let first = Attempt::first();
    let mut group = c.benchmark_group("resilience/stack");
    group.bench_function("bare_call", |b| {
        b.to_async(&rt).iter(|| async { black_box(op(first).await) });
    });
    group.bench_function("breaker", |b| {
        b.to_async(&rt).iter(|| async { black_box(breaker.call(op(first)).await) });
    });
    group.bench_function("stack", |b| {
        b.to_async(&rt).iter(|| async { black_box(stack.run(op).await) });
    });
    group.finish();
}

/// A slot taken and given back: our permit beside a tokio semaphore's.
fn bulkhead_permit(c: &mut Criterion) {
    let bulkhead = Bulkhead::builder().max_concurrent(64).build().expect("valid");
    let semaphore = tokio::sync::Semaphore::new(64);
    assert_no_allocation("ours, bulkhead try_acquire + drop", || {
        drop(black_box(bulkhead.try_acquire().expect("free")));
    });
    let mut group = c.benchmark_group("resilience/bulkhead_permit");
    group.bench_function("ours", |b| {
        b.iter(|| drop(black_box(bulkhead.try_acquire().expect("free"))));
    });
    group.bench_function("peer/tokio_semaphore", |b| {
        b.iter(|| drop(black_box(semaphore.try_acquire().expect("free"))));
    });
    group.finish();
}

/// A tower service behind a concurrency limit, layer against layer:
/// `ready().await` + `call` on a clone of the service.
fn bulkhead(c: &mut Criterion) {
    let rt = runtime();
    let inner = tower::service_fn(|n: u32| async move { Ok::<_, std::io::Error>(black_box(n)) });
    let bulkhead = Bulkhead::builder().max_concurrent(64).build().expect("valid");
    let ours = BulkheadLayer::new(bulkhead).layer(inner);
    let peer = tower::limit::ConcurrencyLimitLayer::new(64).layer(inner);
    let mut group = c.benchmark_group("resilience/bulkhead");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = ours.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.bench_function("peer/tower_concurrency_limit", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = peer.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.finish();
}

/// A tower retry policy that never needs to retry: the peer of our no-retry path.
#[derive(Clone)]
struct NeverNeeded;

impl<E> tower::retry::Policy<u32, u32, E> for NeverNeeded {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut u32, result: &mut Result<u32, E>) -> Option<Self::Future> {
        result.is_err().then(|| std::future::ready(()))
    }

    fn clone_request(&mut self, request: &u32) -> Option<u32> {
        Some(*request)
    }
}

/// An operation that succeeds the first time, through a retry: the plain
/// retry beside `backon`'s, and the layer beside tower's `Retry` layer.
fn retry(c: &mut Criterion) {
    let rt = runtime();
    let retry = Retry::builder().max_attempts(3).build().expect("valid");
    let mut group = c.benchmark_group("resilience/retry_no_retry_plain");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| async { black_box(retry.run(op).await) });
    });
    let backoff = backon::ExponentialBuilder::default().with_max_times(2);
    group.bench_function("peer/backon", |b| {
        b.to_async(&rt).iter(|| async {
            black_box((|| op(Attempt::first())).retry(backoff).sleep(tokio::time::sleep).await)
        });
    });
    group.finish();

    let inner = tower::service_fn(|n: u32| async move { Ok::<_, std::io::Error>(black_box(n)) });
    let ours = RetryLayer::new(retry).layer(inner);
    let peer = tower::retry::RetryLayer::new(NeverNeeded).layer(inner);
    let mut group = c.benchmark_group("resilience/retry_no_retry");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = ours.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.bench_function("peer/tower_retry", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = peer.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.finish();
}

/// Load units taken and given back: our shedder beside a tokio semaphore
/// taking the same units without waiting; and the shedder's layer beside the
/// floor, the same service called bare (tower's `LoadShed` sheds on a
/// different signal, the inner service being pending, and is not built here).
fn shed(c: &mut Criterion) {
    let shedder = LoadShedder::builder(64).build().expect("valid");
    let semaphore = tokio::sync::Semaphore::new(64);
    assert_no_allocation("ours, shedder try_admit + drop", || {
        drop(black_box(shedder.try_admit(black_box(1)).expect("admitted")));
    });
    let mut group = c.benchmark_group("resilience/shed");
    group.bench_function("ours", |b| {
        b.iter(|| drop(black_box(shedder.try_admit(black_box(1)).expect("admitted"))));
    });
    group.bench_function("peer/tokio_semaphore", |b| {
        b.iter(|| drop(black_box(semaphore.try_acquire_many(black_box(1)).expect("free"))));
    });
    group.finish();

    let rt = runtime();
    let inner = tower::service_fn(|n: u32| async move { Ok::<_, std::io::Error>(black_box(n)) });
    let ours = LoadShedderLayer::new(shedder).layer(inner);
    let mut group = c.benchmark_group("resilience/shed_layer");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = ours.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.bench_function("peer/bare_call", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = inner;
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.finish();
}

/// A failed call answered with a fallback value: `Fallback::apply` beside a
/// `match` answering by hand (the floor: no peer answers failures by kind),
/// and the fallback layer beside a bare call whose failure is answered by hand.
fn fallback(c: &mut Criterion) {
    let plain: Fallback<u32, std::io::ErrorKind> =
        Fallback::new().on(ErrorKind::BreakerOpen, |_| 7).on_inner(|_| Some(0));
    let failed = || Err(ResilienceError::Inner(black_box(std::io::ErrorKind::NotFound)));
    assert_no_allocation("ours, fallback apply", || drop(black_box(plain.apply(failed()))));
    let mut group = c.benchmark_group("resilience/fallback");
    group.bench_function("ours", |b| b.iter(|| black_box(plain.apply(failed()))));
    group.bench_function("peer/bare_match", |b| {
        b.iter(|| {
            let result: Result<u32, ResilienceError<std::io::ErrorKind>> = failed();
            black_box(match result {
                Err(ResilienceError::BreakerOpen(_)) => Ok(7),
                Err(ResilienceError::Inner(_)) => Ok(0),
                other => other,
            })
        });
    });
    group.finish();

    let rt = runtime();
    let inner = tower::service_fn(|_: u32| async { Err::<u32, BoxError>("not found".into()) });
    let ours = FallbackLayer::new(Fallback::new().on_inner(|_| Some(0_u32))).layer(inner);
    let mut group = c.benchmark_group("resilience/fallback_layer");
    group.bench_function("ours", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = ours.clone();
            async move { black_box(service.ready().await.expect("ready").call(1).await) }
        });
    });
    group.bench_function("peer/bare_call", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = inner;
            async move {
                let result = service.ready().await.expect("ready").call(1).await;
                black_box(result.or_else(|_| Ok::<u32, BoxError>(0)))
            }
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    closed_one_thread,
    closed_two_threads,
    open,
    stack,
    bulkhead_permit,
    bulkhead,
    retry,
    shed,
    fallback
);
criterion_main!(benches);
