//! "No allocation per call": the plain primitives' admit, record and refuse
//! paths (every rejection is a value, no allocation, no backtrace) and every
//! tower layer's `ready` + `call`, counted by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use conc_resilience::{
    Bulkhead, CircuitBreaker, ErrorKind, FailureWindow, Fallback, LoadShedder, ResilienceError,
    Timeout,
};

/// Counts the allocations of each thread, so tests running in parallel do
/// not disturb each other's counts.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: as for `dealloc`; `new_size` is the caller's, checked by its contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u64 = 1_000;

/// Runs `op` once to warm up, then `CALLS` times, and returns the allocations of those.
fn allocations_of(mut op: impl FnMut()) -> u64 {
    op();
    let before = allocations();
    for _ in 0..CALLS {
        op();
    }
    allocations() - before
}

#[test]
fn breaker_paths_allocate_nothing() {
    let count = CircuitBreaker::builder()
        .failure_rate_threshold(1.0)
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    let time = CircuitBreaker::builder()
        .sliding_window(FailureWindow::time(Duration::from_secs(10)))
        .failure_rate_threshold(1.0)
        .build()
        .unwrap();
    for breaker in [&count, &time] {
        let closed = allocations_of(|| {
            black_box(breaker).try_acquire().unwrap().record(&black_box(Ok::<u32, ()>(1)));
            black_box(breaker).try_acquire().unwrap().record(&black_box(Err::<u32, ()>(())));
        });
        assert_eq!(closed, 0, "closed path");
    }
    count.force_open();
    assert_eq!(
        allocations_of(|| {
            black_box(count.try_acquire().unwrap_err());
        }),
        0,
        "rejection"
    );
    count.transition_to_half_open();
    let probe = allocations_of(|| {
        let probe = count.try_acquire().unwrap();
        black_box(count.try_acquire().unwrap_err());
        probe.ignore();
    });
    assert_eq!(probe, 0, "half-open probe and its refusal");
}

#[test]
fn bulkhead_and_shedder_paths_allocate_nothing() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let shedder = LoadShedder::builder(1).build().unwrap();
    let slots = allocations_of(|| {
        let slot = bulkhead.try_acquire().unwrap();
        black_box(bulkhead.try_acquire().unwrap_err());
        drop(slot);
    });
    assert_eq!(slots, 0, "bulkhead slot and refusal");
    let units = allocations_of(|| {
        let units = shedder.try_admit(1).unwrap();
        black_box(shedder.try_admit(1).unwrap_err());
        drop(units);
    });
    assert_eq!(units, 0, "load units and refusal");
}

#[test]
fn timeout_and_fallback_paths_allocate_nothing() {
    let timeout = Timeout::new(Duration::from_secs(1)).unwrap();
    let ready = allocations_of(|| {
        black_box(futures::executor::block_on(timeout.call(async { black_box(1) }))).unwrap();
    });
    assert_eq!(ready, 0, "a call ready at once");
    let fallback: Fallback<u32, ()> = Fallback::new().on(ErrorKind::Inner, |_| 0);
    let answered = allocations_of(|| {
        black_box(fallback.apply(Err(ResilienceError::Inner(())))).unwrap();
    });
    assert_eq!(answered, 0, "an answered failure");
}

#[cfg(feature = "tower")]
mod layers {
    use std::hint::black_box;
    use std::time::Duration;

    use conc_resilience::{
        Bulkhead, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer, Fallback, FallbackLayer,
        LoadShedder, LoadShedderLayer, Retry, RetryLayer, Timeout, TimeoutLayer,
    };
    use tower::{Layer, Service, ServiceExt, service_fn};

    use super::{CALLS, allocations};

    /// Allocations of `CALLS` calls (`ready` + `call` + the response) after a
    /// warm-up call, on a current-thread runtime driven from this thread.
    fn allocations_of_calls<S>(mut service: S) -> u64
    where
        S: Service<u32, Response = u32>,
        S::Error: std::fmt::Debug,
    {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async move {
            let one = async |service: &mut S| {
                let response = service.ready().await.unwrap().call(black_box(7)).await;
                black_box(response.unwrap());
            };
            one(&mut service).await;
            let before = allocations();
            for _ in 0..CALLS {
                one(&mut service).await;
            }
            allocations() - before
        })
    }

    #[test]
    fn every_layer_allocates_nothing_per_call() {
        let inner = service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) });
        let breaker = CircuitBreaker::builder().build().unwrap();
        let bulkhead = Bulkhead::builder().build().unwrap();
        let retry = Retry::builder().build().unwrap();
        let timeout = Timeout::new(Duration::from_secs(1)).unwrap();
        let shedder = LoadShedder::builder(10).build().unwrap();
        let fallback = Fallback::new().on_inner(|_| Some(0_u32));
        let counts = [
            ("breaker", allocations_of_calls(CircuitBreakerLayer::new(breaker).layer(inner))),
            ("bulkhead", allocations_of_calls(BulkheadLayer::new(bulkhead).layer(inner))),
            ("retry", allocations_of_calls(RetryLayer::new(retry).layer(inner))),
            ("timeout", allocations_of_calls(TimeoutLayer::new(timeout).layer(inner))),
            ("shedder", allocations_of_calls(LoadShedderLayer::new(shedder).layer(inner))),
            ("fallback", allocations_of_calls(FallbackLayer::new(fallback).layer(inner))),
        ];
        for (layer, count) in counts {
            assert_eq!(count, 0, "{layer} allocates per call");
        }
    }
}
