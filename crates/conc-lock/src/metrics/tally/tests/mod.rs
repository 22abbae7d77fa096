#[cfg(conc_loom)]
mod loom_tally;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use super::{Count, Tally, thread_index};

#[test]
fn counts_from_many_threads_add_up() {
    // More threads than pairs: some count through the shared pair.
    let tally = Arc::new(Tally::new(2));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let tally = Arc::clone(&tally);
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    tally.add(Count::Acquired);
                    tally.add(Count::Released);
                }
                tally.add(Count::Acquired);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(tally.totals(), (6_006, 6_000));
}

#[test]
fn live_threads_hold_distinct_indices_and_exited_ones_hand_them_back() {
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let index = thread_index();
                // All four alive at once.
                barrier.wait();
                index
            })
        })
        .collect();
    let indices: HashSet<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(indices.len(), 4, "{indices:?}");
    assert!(!indices.contains(&usize::MAX));
    // The four exited: a new thread gets one of the handed-back indices, not
    // a fresh one past them (other tests' threads may hold some meanwhile).
    let reused = std::thread::spawn(thread_index).join().unwrap();
    let fresh_bound = indices.iter().max().unwrap() + 1 + 64;
    assert!(reused < fresh_bound, "{reused} vs {indices:?}");
}
