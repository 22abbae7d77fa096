//! Loom models of the token bucket's cell: racing takes never overdraw the
//! bucket and never lose a taken token.

use loom::sync::Arc;
use loom::thread;

use crate::token_bucket::cell::TokenCell;

/// Capacity 3, full; takes of 2, 1 and 1 race: at most 3 tokens leave, at
/// least 2 (no refusal while enough was left), and the cell records exactly
/// the tokens that left.
#[test]
fn loom_racing_takes_never_overdraw() {
    loom::model(|| {
        let cell = Arc::new(TokenCell::new(0));
        let racers: Vec<_> = [2u64, 1, 1]
            .into_iter()
            .map(|n| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || if cell.take(3, 3, n).is_ok() { n } else { 0 })
            })
            .collect();
        let taken: u64 = racers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!((2..=3).contains(&taken), "took {taken}");
        assert_eq!(cell.level(3, 3), 3 - taken);
    });
}

/// A take racing a take-everything: together they take exactly the level.
#[test]
fn loom_take_and_drain() {
    loom::model(|| {
        let cell = Arc::new(TokenCell::new(0));
        let one = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || u64::from(cell.take(2, 2, 1).is_ok()))
        };
        let drained = cell.take_up_to(2, 2, 10).unwrap_or(0);
        let one = one.join().unwrap();
        assert_eq!(drained + one, 2);
        assert_eq!(cell.level(2, 2), 0);
    });
}
