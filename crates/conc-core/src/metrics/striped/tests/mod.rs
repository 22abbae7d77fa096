#[cfg(conc_loom)]
mod loom_striped;

#[cfg(not(conc_loom))]
mod threads {
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};

    use super::super::{StripedCounter, owned_number};

    /// More threads than stripes: some count on their own stripes, the rest
    /// on the shared one, and every bump is there; a reset clears them all.
    #[test]
    fn every_bump_counts_on_owned_and_shared_stripes() {
        let count = StripedCounter::with_stripes(2);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        count.increment();
                    }
                });
            }
        });
        assert_eq!(count.sum(), 60_000);
        count.reset();
        assert_eq!(count.sum(), 0);
        count.increment();
        assert_eq!(count.sum(), 1);
    }

    /// The default size: at least four stripes, a power of two or not.
    #[test]
    fn a_counter_has_at_least_four_stripes() {
        let count = StripedCounter::new();
        assert!((4..=128).contains(&count.stripes.len()), "{}", count.stripes.len());
    }

    #[test]
    fn live_threads_own_distinct_numbers_and_exited_ones_give_them_back() {
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let number = owned_number();
                    // All four alive at once.
                    barrier.wait();
                    number
                })
            })
            .collect();
        let numbers: HashSet<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(numbers.len(), 4, "{numbers:?}");
        assert!(!numbers.contains(&super::super::UNCLAIMED));
        // The four exited: a new thread gets a number given back, not a fresh
        // one past them (other tests' threads may hold some meanwhile).
        let reused = std::thread::spawn(owned_number).join().unwrap();
        let fresh_bound = numbers.iter().max().unwrap() + 1 + 64;
        assert!(reused < fresh_bound, "{reused} vs {numbers:?}");
    }

    /// Waves of more threads than stripes: numbers are given back and taken
    /// over with counts in their stripes, and no bump is lost.
    #[test]
    fn counts_every_bump_of_threads_that_come_and_go() {
        let count = StripedCounter::with_stripes(4);
        for _ in 0..4 {
            std::thread::scope(|scope| {
                for _ in 0..7 {
                    scope.spawn(|| (0..1_000).for_each(|_| count.increment()));
                }
            });
        }
        assert_eq!(count.sum(), 4 * 7 * 1_000);
    }

    /// One thread's number indexes every counter, each with its own counts.
    #[test]
    fn two_counters_share_a_threads_number_without_sharing_counts() {
        let (a, b) = (StripedCounter::new(), StripedCounter::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                a.increment();
                b.increment();
                b.increment();
            });
        });
        assert_eq!((a.sum(), b.sum()), (1, 2));
    }

    /// A thread that takes over an exited thread's number continues its
    /// stripe: nothing counted before is lost.
    #[test]
    fn a_number_taken_over_keeps_its_count() {
        let count = Arc::new(StripedCounter::with_stripes(64));
        for _ in 0..8 {
            let count = Arc::clone(&count);
            std::thread::spawn(move || (0..100).for_each(|_| count.increment())).join().unwrap();
        }
        assert_eq!(count.sum(), 800);
    }
}
