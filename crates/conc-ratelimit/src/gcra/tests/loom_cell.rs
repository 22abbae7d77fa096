//! Loom models of the GCRA cell: concurrent charges never admit more than the
//! tolerance allows and never lose an admitted charge.

use loom::sync::Arc;
use loom::thread;

use crate::gcra::GcraCell;

const T: u64 = 10;

/// Burst 1: of two racing charges at the same instant exactly one is admitted,
/// and the refused one is told the exact wait.
#[test]
fn loom_one_slot_two_racers() {
    loom::model(|| {
        let cell = Arc::new(GcraCell::new());
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || cell.charge(100, T, T))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(admitted, 1, "{results:?}");
        assert!(results.contains(&Err(T)), "{results:?}");
        assert_eq!(cell.tat(), 100 + T);
    });
}

/// Burst 3 and three racers charging 1, 1 and 2 units: admitted units never
/// exceed 3, and the stored TAT accounts for exactly the admitted ones.
#[test]
fn loom_admitted_units_match_tat() {
    loom::model(|| {
        let cell = Arc::new(GcraCell::new());
        let racers: Vec<_> = [1u64, 1, 2]
            .into_iter()
            .map(|units| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || (units, cell.charge(50, units * T, 3 * T)))
            })
            .collect();
        let mut admitted = 0;
        for racer in racers {
            let (units, result) = racer.join().unwrap();
            if result.is_ok() {
                admitted += units;
            }
        }
        assert!(admitted <= 3, "admitted {admitted} units with burst 3");
        assert!(admitted >= 2, "refused while capacity was left: admitted {admitted}");
        assert_eq!(cell.tat(), 50 + admitted * T);
    });
}

/// A charge racing a batch charge: the batch takes only what is left.
#[test]
fn loom_batch_and_single() {
    use crate::gcra::Params;
    loom::model(|| {
        let cell = Arc::new(GcraCell::new());
        let params = Params { emission: T, tolerance: 2 * T, burst: 2 };
        let single = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.charge(0, T, 2 * T).is_ok())
        };
        let batch = cell.charge_up_to(0, 5, params);
        let single = single.join().unwrap();
        let batch = batch.map(|(granted, _)| granted).unwrap_or(0);
        assert_eq!(batch + u64::from(single), 2, "batch {batch}, single {single}");
        assert_eq!(cell.tat(), 2 * T);
    });
}
