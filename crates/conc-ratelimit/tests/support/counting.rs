//! A global allocator that counts, per thread, live heap bytes and
//! allocation calls, for the tests that check what the docs promise about
//! memory. Per thread, so the test harness's own allocations on its other
//! threads never show in a measurement.

#![allow(unreachable_pub, dead_code, reason = "shared by several test binaries")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live heap bytes and allocations, forwarding to the system allocator.
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn add(bytes: isize, calls: u64) {
    // `try_with`: a thread being torn down still frees memory.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + calls));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size().cast_signed(), 1);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-layout.size().cast_signed(), 0);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size.cast_signed() - layout.size().cast_signed(), 1);
        // SAFETY: as for `realloc`'s caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap bytes this thread allocated and has not freed.
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Allocation calls this thread made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
