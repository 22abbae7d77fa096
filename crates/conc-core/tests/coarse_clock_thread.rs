//! A private coarse clock's updater thread ends after the last handle is
//! dropped. Its own test binary, so no other test's clocks are counted.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use conc_core::time::CoarseClock;

fn updater_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim() == "conc-coarse-clo") // comm is cut to 15 bytes
        .count()
}

/// Waits (bounded) for the number of updater threads to become `expected`:
/// a new thread names itself only once it runs.
fn wait_for_updater_threads(expected: usize) {
    let gave_up_at = Instant::now() + Duration::from_secs(10);
    while updater_threads() != expected {
        assert!(Instant::now() < gave_up_at, "expected {expected} updater threads");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn updater_thread_exits_when_the_last_clone_is_dropped() {
    let clock = CoarseClock::with_resolution(Duration::from_millis(1)).unwrap();
    let clone = clock.clone();
    wait_for_updater_threads(1);
    drop(clock);
    assert_eq!(updater_threads(), 1, "a clone still holds the clock");
    drop(clone);
    wait_for_updater_threads(0);
}
