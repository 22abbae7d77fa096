//! Loom models of the per-thread tally: counts written with a plain load and
//! store by the one holder of an index are never lost, including across a
//! hand-off of the index to another thread, and counts through the shared
//! pair from several threads add up.

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::super::{Count, Tally};

/// Two threads count at their own indices while a third counts through the
/// shared pair; a reader sums concurrently and sees no more than was added.
#[test]
fn loom_owned_and_shared_counts_add_up() {
    loom::model(|| {
        let tally = Arc::new(Tally::new(2));
        let counters: Vec<_> = [0, 1, usize::MAX]
            .into_iter()
            .map(|index| {
                let tally = Arc::clone(&tally);
                thread::spawn(move || {
                    tally.add_at(index, Count::Acquired);
                    tally.add_at(index, Count::Released);
                })
            })
            .collect();
        let (acquired, released) = tally.totals();
        assert!(acquired <= 3 && released <= 3);
        for counter in counters {
            counter.join().unwrap();
        }
        assert_eq!(tally.totals(), (3, 3));
    });
}

/// An index handed from one thread to the next through a mutex (as exiting
/// threads hand theirs back): the second holder continues from the first's
/// count, so nothing is lost.
#[test]
fn loom_a_handed_over_index_keeps_its_count() {
    loom::model(|| {
        let tally = Arc::new(Tally::new(1));
        let free = Arc::new(Mutex::new(None::<usize>));
        let first = {
            let (tally, free) = (Arc::clone(&tally), Arc::clone(&free));
            thread::spawn(move || {
                tally.add_at(0, Count::Acquired);
                tally.add_at(0, Count::Acquired);
                *free.lock().unwrap() = Some(0);
            })
        };
        let second = {
            let (tally, free) = (Arc::clone(&tally), Arc::clone(&free));
            thread::spawn(move || {
                // Counts through the shared pair until it holds the index.
                match free.lock().unwrap().take() {
                    Some(index) => tally.add_at(index, Count::Acquired),
                    None => tally.add_at(usize::MAX, Count::Acquired),
                }
            })
        };
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(tally.totals(), (3, 0));
    });
}
