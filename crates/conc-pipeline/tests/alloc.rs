//! "Each stage keeps up to `concurrency` items in flight in slots that are
//! boxed once and reused, so nothing is allocated per item": checked with a
//! counting allocator (allocations made by this thread only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use conc_pipeline::{Pipeline, Stage};
use futures::StreamExt;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a thread-local `Cell` that never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made by one run of `items` items through `pipeline`,
/// consumed on this thread.
fn allocations_for(pipeline: &Pipeline<u64, u64>, items: u64) -> u64 {
    let before = allocations();
    let sum = futures::executor::block_on(
        pipeline
            .process_stream(futures::stream::iter(0..items))
            .fold(0_u64, |sum, n| async move { sum.wrapping_add(n.unwrap()) }),
    );
    assert!(sum > 0);
    allocations() - before
}

#[test]
fn inline_stages_allocate_nothing_per_item() {
    let pipeline = Pipeline::builder()
        .map("ordered", 8, 16, |n: u64| async move { n.wrapping_mul(31) })
        .filter(|n| n % 7 != 0)
        .then(Stage::map("unordered", |n: u64| async move { n ^ 0x55 }).concurrency(4).unordered())
        .then(
            Stage::new("fallible", |n: u64| async move { Ok::<_, std::io::Error>(n + 1) })
                .concurrency(2),
        )
        .build()
        .unwrap();
    // The first run on this thread also sets up what the facades and the
    // executor keep for later; after it, a run's allocations do not depend on
    // how many items pass.
    allocations_for(&pipeline, 1_000);
    let few = allocations_for(&pipeline, 1_000);
    let many = allocations_for(&pipeline, 101_000);
    assert!(few > 0, "a run allocates its stages");
    assert_eq!(many, few, "100,000 more items: {few} allocations became {many}");
}
