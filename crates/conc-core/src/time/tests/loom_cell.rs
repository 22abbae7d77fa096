//! Loom models of the elapsed-time cell shared by the coarse and manual clocks.

use loom::sync::Arc;
use loom::thread;

use crate::time::cell::ElapsedCell;

/// Two updaters racing with `advance_to` never move a reader backwards, and
/// the final reading is the larger value whichever wrote last.
#[test]
fn loom_advance_to_is_monotonic() {
    loom::model(|| {
        let cell = Arc::new(ElapsedCell::new(0));
        let writers: Vec<_> = [10, 20]
            .into_iter()
            .map(|value| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || cell.advance_to(value))
            })
            .collect();
        let first = cell.get();
        let second = cell.get();
        assert!(second >= first, "reading went back from {first} to {second}");
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(cell.get(), 20);
    });
}

/// Concurrent additions through `update` are never lost.
#[test]
fn loom_concurrent_updates_add_up() {
    loom::model(|| {
        let cell = Arc::new(ElapsedCell::new(5));
        let adders: Vec<_> = [3, 4]
            .into_iter()
            .map(|step| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || cell.update(|now| Some(now + step)).unwrap())
            })
            .collect();
        for adder in adders {
            adder.join().unwrap();
        }
        assert_eq!(cell.get(), 12);
    });
}

/// A refused checked subtraction racing an addition leaves the cell with
/// exactly the addition applied, and an accepted one is never applied twice.
#[test]
fn loom_refused_update_changes_nothing() {
    loom::model(|| {
        let cell = Arc::new(ElapsedCell::new(2));
        let rewinder = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.update(|now| now.checked_sub(5)))
        };
        let adder = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.update(|now| Some(now + 4)).unwrap())
        };
        let rewound = rewinder.join().unwrap();
        adder.join().unwrap();
        match rewound {
            Ok(_) => assert_eq!(cell.get(), 1),
            Err(_) => assert_eq!(cell.get(), 6),
        }
    });
}
