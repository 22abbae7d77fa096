//! Memory per queued task: live heap bytes (allocated minus freed, on every
//! thread) that queueing 100,000 tasks into a pool whose only worker is
//! held adds, divided by the count. The tasks' own captures are zero-sized,
//! so every byte counted is the pool's: for a `submit`, the task's one
//! allocation (its state word and the result slot its handle reads; a
//! small `spawn` closure is stored in the queue entry instead) and the
//! queue's storage. The default lane stores entries in blocks it allocates
//! as the queue grows and frees as it drains (32 bytes per task: a 24-byte
//! entry, two words of job and the time it was queued, and its slot's
//! state), so both rounds count them; the second round is the one asserted,
//! the first is printed too.
//!
//! Run with `cargo test -p conc-pool --test memory_per_task -- --nocapture`
//! to see the figures; the bounds asserted are the ones in `docs/pool.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use conc_pool::{BlockingPool, TaskHandle};
use support::occupy;

mod support;

/// Counts live heap bytes on every thread.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(clippy::cast_possible_wrap, reason = "no single allocation exceeds isize::MAX")]
fn size(layout: Layout) -> isize {
    layout.size() as isize
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a plain atomic that never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(size(layout), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size(layout), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            size(Layout::from_size_align(new_size, 1).unwrap()) - size(layout),
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tasks queued per round.
const N: usize = 100_000;

/// Bytes a queued `submit` may cost beyond its task (see `docs/pool.md`).
const SUBMIT_BOUND: usize = 56;

/// Bytes a queued `spawn` may cost beyond its task (see `docs/pool.md`).
const SPAWN_BOUND: usize = 32;

fn live() -> usize {
    usize::try_from(LIVE.load(Ordering::SeqCst)).unwrap_or(0)
}

/// Per-task bytes of `queue` (cold round, warm round): `queue` queues `N`
/// tasks behind the held worker, then `finish` lets them run and checks them.
fn per_task<H>(
    pool: &BlockingPool,
    mut queue: impl FnMut(&mut Vec<H>),
    mut finish: impl FnMut(Vec<H>),
) -> (usize, usize) {
    let mut figures = [0; 2];
    for figure in &mut figures {
        let mut held = Vec::with_capacity(N);
        let release = occupy(pool, 1);
        let before = live();
        queue(&mut held);
        *figure = live().saturating_sub(before) / N;
        drop(release);
        finish(held);
        // Let the worker drain the queue before the next round.
        pool.submit(|| ()).unwrap().join().unwrap();
    }
    (figures[0], figures[1])
}

#[test]
#[allow(clippy::print_stdout, reason = "the test reports the figures it asserts")]
fn queued_tasks_cost_a_bounded_number_of_bytes() {
    let pool = BlockingPool::builder().workers(1).build().unwrap();

    let (cold, warm) = per_task(
        &pool,
        |handles: &mut Vec<TaskHandle<u8>>| {
            for _ in 0..N {
                handles.push(pool.submit(|| 7_u8).unwrap());
            }
        },
        |handles| {
            for handle in handles {
                assert_eq!(handle.join(), Ok(7));
            }
        },
    );
    println!("a queued submit costs {warm} B beyond its task ({cold} B growing the queue)");
    assert!(warm <= SUBMIT_BOUND, "a queued submit costs {warm} bytes, bound {SUBMIT_BOUND}");

    let (cold, warm) = per_task(
        &pool,
        |_: &mut Vec<()>| {
            for _ in 0..N {
                pool.spawn(|| ()).unwrap();
            }
        },
        |_| {},
    );
    println!("a queued spawn costs {warm} B beyond its task ({cold} B growing the queue)");
    assert!(warm <= SPAWN_BOUND, "a queued spawn costs {warm} bytes, bound {SPAWN_BOUND}");

    // In the same test: the counter sees every thread, so nothing else may
    // run beside it.
    every_way_a_task_and_its_handle_part_gives_its_memory_back(&pool);
}

/// Tasks per way of parting in one round.
const PARTINGS: usize = 1_000;

/// Live bytes a round may leave beyond the one before: less than the
/// smallest task (24 bytes) times [`PARTINGS`], so that leaking one kind of
/// task in every round fails.
const SLACK: usize = 4_096;

/// One round of every way a task and its handle can part, `PARTINGS` times
/// each, ending with the queue drained.
fn part_every_way(pool: &BlockingPool) {
    let payload = [1_u64; 4];
    // Joined: the value is taken.
    for i in 0..PARTINGS {
        assert_eq!(pool.submit(move || i).unwrap().join(), Ok(i));
    }
    let release = occupy(pool, 1);
    // Dropped or cancelled while queued, a value of four words left unread,
    // and fire-and-forget spawns, wide (allocated) and one word (inline).
    for _ in 0..PARTINGS {
        drop(pool.submit(move || payload).unwrap());
        pool.submit(move || payload).unwrap().cancel();
        pool.spawn(move || {
            std::hint::black_box(payload);
        })
        .unwrap();
        let one_word = Box::new(7_u8);
        pool.spawn(move || drop(one_word)).unwrap();
    }
    let unread: Vec<_> = (0..PARTINGS).map(|_| pool.submit(move || payload).unwrap()).collect();
    drop(release);
    pool.submit(|| ()).unwrap().join().unwrap();
    // Dropped after the task ran, with its value in the slot.
    drop(unread);
    // A task that panics: the error is boxed into the slot and taken.
    for _ in 0..PARTINGS / 10 {
        assert!(pool.submit(|| -> u8 { panic!("a task that panics") }).unwrap().join().is_err());
    }
}

/// Every way a task and its handle can part (joined, dropped before or
/// after the run, cancelled, spawned, panicked) frees the task's
/// allocation, its closure and its value: a second round leaves the live
/// heap where the first left it.
fn every_way_a_task_and_its_handle_part_gives_its_memory_back(pool: &BlockingPool) {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    part_every_way(pool);
    let after_first = live();
    part_every_way(pool);
    let after_second = live();
    std::panic::set_hook(hook);
    assert!(
        after_second <= after_first + SLACK,
        "a round of partings left {} bytes behind",
        after_second - after_first
    );
}
