//! Load shedding on a `ManualClock`.

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_resilience::{LoadShedder, Shed};

#[test]
fn admits_up_to_the_maximum_and_gives_load_back_on_drop() {
    let shedder = LoadShedder::builder(10).clock(ManualClock::new()).build().unwrap();
    let a = shedder.try_admit(4).unwrap();
    let b = shedder.try_admit(6).unwrap();
    assert_eq!(shedder.metrics().load, 10);
    assert_eq!(
        shedder.try_admit(1).unwrap_err(),
        Shed::Overloaded { load: 10, units: 1, max_load: 10 }
    );
    drop(a);
    // No cooldown configured: admitted again at once.
    let c = shedder.try_admit(4).unwrap();
    assert_eq!(c.units(), 4);
    drop((b, c));
    let snapshot = shedder.metrics();
    assert_eq!((snapshot.load, snapshot.admitted, snapshot.rejected_overloaded), (0, 3, 1));
}

#[test]
fn cooldown_refuses_everything_until_it_ends() {
    let clock = ManualClock::new();
    let shedder = LoadShedder::builder(5)
        .cooldown(Duration::from_secs(2))
        .clock(clock.clone())
        .build()
        .unwrap();
    let held = shedder.try_admit(5).unwrap();
    assert!(matches!(shedder.try_admit(1), Err(Shed::Overloaded { .. })));
    drop(held);
    clock.advance(Duration::from_millis(500));
    let refused = shedder.try_admit(1).unwrap_err();
    assert_eq!(refused, Shed::CoolingDown { remaining: Duration::from_millis(1_500) });
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(1_500)));
    assert!(shedder.metrics().cooling_down);
    clock.advance(Duration::from_millis(1_500));
    drop(shedder.try_admit(5).unwrap());
    let snapshot = shedder.metrics();
    assert_eq!(
        (snapshot.rejected_overloaded, snapshot.rejected_cooling_down, snapshot.rejected()),
        (1, 1, 2)
    );
}

#[test]
fn sheds_on_queue_wait() {
    let clock = ManualClock::new();
    let shedder = LoadShedder::builder(100)
        .max_queue_wait(Duration::from_millis(50))
        .cooldown(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    drop(shedder.try_admit_after_wait(1, Duration::from_millis(50)).unwrap());
    assert_eq!(
        shedder.try_admit_after_wait(1, Duration::from_millis(51)).unwrap_err(),
        Shed::QueueWait { waited: Duration::from_millis(51), max: Duration::from_millis(50) }
    );
    assert!(matches!(shedder.try_admit(1), Err(Shed::CoolingDown { .. })));
    assert_eq!(shedder.metrics().rejected_queue_wait, 1);
}

#[test]
fn builder_validates() {
    assert_eq!(
        LoadShedder::builder(0).build().unwrap_err().to_string(),
        "invalid `max_load` 0: must be at least 1"
    );
}

#[test]
fn threads_never_exceed_the_maximum() {
    let shedder = LoadShedder::builder(3).clock(ManualClock::new()).build().unwrap();
    let held = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for units in 1..=3 {
            let (shedder, held) = (&shedder, &held);
            scope.spawn(move || {
                for _ in 0..10_000 {
                    if let Ok(permit) = shedder.try_admit(units) {
                        let now =
                            held.fetch_add(units, std::sync::atomic::Ordering::SeqCst) + units;
                        assert!(now <= 3);
                        held.fetch_sub(units, std::sync::atomic::Ordering::SeqCst);
                        drop(permit);
                    }
                }
            });
        }
    });
    assert_eq!(shedder.metrics().load, 0);
}

/// A maximum of `u64::MAX`: a request whose units would overflow the load is
/// refused, not admitted with a wrapped (or panicking) sum.
#[test]
fn units_that_would_overflow_the_load_are_refused() {
    let shedder = LoadShedder::builder(u64::MAX).clock(ManualClock::new()).build().unwrap();
    let one = shedder.try_admit(1).unwrap();
    assert_eq!(
        shedder.try_admit(u64::MAX).unwrap_err(),
        Shed::Overloaded { load: 1, units: u64::MAX, max_load: u64::MAX }
    );
    drop(one);
    let all = shedder.try_admit(u64::MAX).unwrap();
    assert_eq!(shedder.metrics().load, u64::MAX);
    drop(all);
    assert_eq!(shedder.metrics().load, 0);
}
