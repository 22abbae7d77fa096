//! Behaviour of the precise, coarse and manual clocks.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use conc_core::time::{
    Clock, ClockError, CoarseClock, MAX_RESOLUTION, MIN_RESOLUTION, ManualClock, SystemClock,
    Timeline, saturating_nanos,
};

#[test]
fn manual_clock_clones_share_one_time() {
    let clock = ManualClock::new();
    let other = clock.clone();
    let start = clock.now();
    other.advance(Duration::from_millis(1500));
    assert_eq!(clock.now() - start, Duration::from_millis(1500));
    assert_eq!(clock.elapsed(), other.elapsed());
}

#[test]
fn manual_clock_concurrent_advances_add_up() {
    let clock = ManualClock::new();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let clock = clock.clone();
            thread::spawn(move || {
                for _ in 0..1000 {
                    clock.advance(Duration::from_nanos(3));
                }
            })
        })
        .collect();
    for handle in threads {
        handle.join().unwrap();
    }
    assert_eq!(clock.elapsed(), Duration::from_micros(24));
}

#[test]
fn manual_clock_rewinds_but_not_before_origin() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(2));
    clock.rewind(Duration::from_millis(500)).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_millis(1500));

    let err = clock.rewind(Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, ClockError::BeforeOrigin { by } if by == Duration::from_millis(500)));
    assert_eq!(err.to_string(), "manual clock cannot move 500ms before its origin");
    assert_eq!(clock.elapsed(), Duration::from_millis(1500), "a refused rewind changes nothing");
}

#[test]
fn manual_clock_set_checks_both_ends() {
    let origin = Instant::now() + Duration::from_secs(10);
    let clock = ManualClock::with_origin(origin);
    assert_eq!(clock.now(), origin);

    clock.set(origin + Duration::from_secs(3)).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_secs(3));

    let err = clock.set(origin.checked_sub(Duration::from_secs(1)).unwrap()).unwrap_err();
    assert!(matches!(err, ClockError::BeforeOrigin { by } if by == Duration::from_secs(1)));

    let err = clock.set_elapsed(Duration::MAX).unwrap_err();
    assert!(matches!(err, ClockError::OutOfRange { value, .. } if value == Duration::MAX));
    assert!(err.to_string().contains("cannot represent"), "{err}");
    assert_eq!(clock.elapsed(), Duration::from_secs(3));
}

#[test]
fn manual_clock_try_advance_refuses_overflow_and_advance_saturates() {
    let clock = ManualClock::new();
    clock.set_elapsed(Duration::from_nanos(u64::MAX - 10)).unwrap();

    let err = clock.try_advance(Duration::from_nanos(11)).unwrap_err();
    assert!(matches!(err, ClockError::OutOfRange { .. }));
    assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX - 10));

    clock.try_advance(Duration::from_nanos(10)).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX));

    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX), "advance saturates");
}

#[test]
fn system_clock_is_monotonic() {
    let mut last = SystemClock.now();
    for _ in 0..1000 {
        let now = SystemClock.now();
        assert!(now >= last);
        last = now;
    }
}

#[test]
fn clocks_work_behind_references_and_trait_objects() {
    let manual = ManualClock::new();
    let shared: Arc<dyn Clock> = Arc::new(manual.clone());
    let boxed: Box<dyn Clock> = Box::new(manual.clone());
    manual.advance(Duration::from_secs(1));
    assert_eq!(shared.now(), manual.now());
    assert_eq!(boxed.now(), manual.now());
    assert_eq!(Clock::now(&&manual), manual.now());
}

#[test]
fn coarse_clock_rejects_resolutions_out_of_range() {
    for bad in [
        Duration::ZERO,
        MIN_RESOLUTION.checked_sub(Duration::from_nanos(1)).unwrap(),
        MAX_RESOLUTION * 2,
    ] {
        let err = CoarseClock::with_resolution(bad).unwrap_err();
        assert!(matches!(err, ClockError::Config(ref e) if e.value == format!("{bad:?}")));
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err} should name {bad:?}");
    }
}

#[test]
fn coarse_clock_is_monotonic_and_never_ahead_of_the_precise_clock() {
    let clock = CoarseClock::with_resolution(MIN_RESOLUTION).unwrap();
    let mut last = clock.now();
    for _ in 0..100_000 {
        let coarse = clock.now();
        let precise = Instant::now();
        assert!(coarse >= last, "coarse clock went backwards");
        assert!(coarse <= precise, "coarse clock ran ahead of Instant::now()");
        last = coarse;
    }
}

#[test]
fn coarse_clock_makes_progress() {
    let clock = CoarseClock::with_resolution(MIN_RESOLUTION).unwrap();
    let first = clock.now();
    // Progress, not timing: the reading must move within a generous bound.
    let gave_up_at = Instant::now() + Duration::from_secs(10);
    while clock.now() == first {
        assert!(Instant::now() < gave_up_at, "coarse clock never advanced");
        thread::sleep(MIN_RESOLUTION);
    }
}

#[test]
fn global_coarse_clock_is_shared() {
    let a = CoarseClock::global();
    let b = CoarseClock::global();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.origin(), b.origin());
    assert!(b.now() >= a.origin());
}

#[test]
fn timeline_counts_nanoseconds_from_the_clock_origin_and_never_goes_back() {
    let clock = ManualClock::new();
    let timeline = Timeline::new(clock.clone());
    assert_eq!(timeline.origin(), clock.origin());
    assert_eq!(timeline.now(), 0);
    clock.advance(Duration::from_micros(7));
    assert_eq!(timeline.now(), 7_000);
    clock.rewind(Duration::from_micros(5)).unwrap();
    assert_eq!(timeline.now(), 7_000, "a clock stepping back holds the timeline");
    clock.advance(Duration::from_micros(10));
    assert_eq!(timeline.now(), 12_000);
    assert_eq!(timeline.instant(12_000), clock.now());
}

#[test]
fn timeline_reads_any_clock_through_the_trait() {
    // A clock with no origin of its own counts from its first reading.
    let timeline = Timeline::new(SystemClock);
    let before = timeline.now();
    thread::sleep(Duration::from_millis(2));
    assert!(timeline.now() >= before + 2_000_000);

    // Behind a trait object the coarse and manual clocks keep their fast path.
    let manual = ManualClock::new();
    let shared: Arc<dyn Clock> = Arc::new(manual.clone());
    let timeline = Timeline::new(shared);
    manual.advance(Duration::from_secs(3));
    assert_eq!(timeline.now(), 3_000_000_000);
    assert_eq!(manual.nanos_since(manual.origin()), 3_000_000_000);
    let later = manual.now() + Duration::from_secs(1);
    assert_eq!(manual.nanos_since(later), 0, "an origin after now reads zero");

    let coarse = CoarseClock::global();
    let timeline = Timeline::new(coarse.clone());
    assert_eq!(timeline.origin(), coarse.origin());
    assert!(timeline.now() <= saturating_nanos(coarse.origin().elapsed()));
}

#[test]
fn timeline_saturates_far_in_the_future() {
    let clock = ManualClock::new();
    clock.advance(Duration::MAX);
    let timeline = Timeline::new(clock.clone());
    assert_eq!(timeline.now(), u64::MAX);
    let far = timeline.instant(u64::MAX);
    assert!(far >= timeline.origin());
    assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
}
