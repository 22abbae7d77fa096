//! Loom models of the striped count: bumps written with a plain load and
//! store by the one owner of a stripe are never lost, including across a
//! hand-off of the stripe number to another thread, bumps on the shared
//! stripe from several threads add up, and a concurrent sum never sees more
//! than was added. (Loom runs its threads on one OS thread, so the models
//! hand out stripe numbers themselves.)

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::super::{StripedCounter, UNCLAIMED};

/// Two threads bump their own stripes while a third bumps the shared one;
/// a reader sums concurrently.
#[test]
fn loom_owned_and_shared_bumps_add_up() {
    loom::model(|| {
        let count = Arc::new(StripedCounter::with_stripes(2));
        let bumpers: Vec<_> = [0, 1, UNCLAIMED]
            .into_iter()
            .map(|number| {
                let count = Arc::clone(&count);
                thread::spawn(move || {
                    count.increment_as(number);
                    count.increment_as(number);
                })
            })
            .collect();
        assert!(count.sum() <= 6);
        for bumper in bumpers {
            bumper.join().unwrap();
        }
        assert_eq!(count.sum(), 6);
    });
}

/// A number handed from one thread to the next through a mutex (as exiting
/// threads give theirs back): the second owner continues from the first's
/// count, so nothing is lost.
#[test]
fn loom_a_handed_over_number_keeps_its_count() {
    loom::model(|| {
        let count = Arc::new(StripedCounter::with_stripes(1));
        let free = Arc::new(Mutex::new(None::<usize>));
        let first = {
            let (count, free) = (Arc::clone(&count), Arc::clone(&free));
            thread::spawn(move || {
                count.increment_as(0);
                count.increment_as(0);
                *free.lock().unwrap() = Some(0);
            })
        };
        let second = {
            let (count, free) = (Arc::clone(&count), Arc::clone(&free));
            thread::spawn(move || {
                // Counts on the shared stripe until it owns the number.
                let number = free.lock().unwrap().take().unwrap_or(UNCLAIMED);
                count.increment_as(number);
            })
        };
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(count.sum(), 3);
    });
}

/// A reset racing a bump: afterwards the count is the bump or nothing.
#[test]
fn loom_a_reset_racing_a_bump_keeps_it_or_drops_it_whole() {
    loom::model(|| {
        let count = Arc::new(StripedCounter::with_stripes(1));
        count.increment_as(0);
        let bumper = {
            let count = Arc::clone(&count);
            thread::spawn(move || count.increment_as(0))
        };
        count.reset();
        bumper.join().unwrap();
        assert!(count.sum() <= 1);
    });
}
