//! For edge-value tests: the edge values and proptest strategies mixing
//! them with random ones, a watchdog so a hang fails the test instead of
//! stalling CI, and a panic turned into an error message.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

/// Runs `check` on another thread and panics when it has not finished within
/// `limit` (a hang becomes a failure); a panic in `check` is passed on.
///
/// # Panics
///
/// When `check` panics or runs longer than `limit`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// conc_test_support::edge::within(Duration::from_secs(5), || assert_eq!(1 + 1, 2));
/// ```
pub fn within(limit: Duration, check: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        check();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?}: a hang"),
    }
}

/// `f()`, or the message of the panic it raised.
///
/// # Examples
///
/// ```
/// use conc_test_support::edge::no_panic;
///
/// assert_eq!(no_panic(|| 7), Ok(7));
/// assert_eq!(no_panic(|| -> u8 { panic!("boom") }), Err("boom".to_owned()));
/// ```
pub fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "a panic with a non-text payload".to_owned()
        }
    })
}

/// Edge values of `u32`: 0, 1, 2, MAX, MAX − 1, MAX / 2.
pub const U32: [u32; 6] = [0, 1, 2, u32::MAX, u32::MAX - 1, u32::MAX / 2];

/// Edge values of `u64`: 0, 1, MAX, MAX − 1, MAX / 2, `u32::MAX`.
pub const U64: [u64; 6] = [0, 1, u64::MAX, u64::MAX - 1, u64::MAX / 2, u32::MAX as u64];

/// Edge values of `usize`: 0, 1, MAX, MAX − 1, MAX / 2, `u32::MAX`.
pub const USIZE: [usize; 6] = [0, 1, usize::MAX, usize::MAX - 1, usize::MAX / 2, u32::MAX as usize];

/// Edge durations: zero, 1 ns, 1 ms, 1 s, a year, `Duration::MAX`,
/// `u64::MAX` seconds, half of them, `u64::MAX` and `u64::MAX − 1` nanoseconds.
pub const DURATIONS: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_secs(1),
    Duration::from_secs(365 * 24 * 3_600),
    Duration::MAX,
    Duration::from_secs(u64::MAX),
    Duration::from_secs(u64::MAX / 2),
    Duration::from_nanos(u64::MAX),
    Duration::from_nanos(u64::MAX - 1),
];

/// Edge names: empty, one letter, NUL bytes, braces, a separator control
/// character, non-ASCII text.
pub const TEXTS: [&str; 7] = ["", "a", "a\0b", "\0", "{tag}", "\u{1f}slot0", "ünï ✓"];

/// [`U32`] and 1 024, 1 025 (limits of some settings) mixed with any `u32`.
pub fn u32s() -> impl Strategy<Value = u32> {
    prop_oneof![prop::sample::select(U32.to_vec()), Just(1_024), Just(1_025), any::<u32>()]
}

/// [`U64`] mixed with any `u64`.
pub fn u64s() -> impl Strategy<Value = u64> {
    prop_oneof![prop::sample::select(U64.to_vec()), any::<u64>()]
}

/// [`USIZE`] mixed with small sizes (a huge random one is rarely interesting).
pub fn usizes() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(USIZE.to_vec()), 0..4_096usize]
}

/// [`DURATIONS`] mixed with any number of nanoseconds or seconds.
pub fn durations() -> impl Strategy<Value = Duration> {
    prop_oneof![
        prop::sample::select(DURATIONS.to_vec()),
        any::<u64>().prop_map(Duration::from_nanos),
        any::<u64>().prop_map(Duration::from_secs),
    ]
}

/// [`TEXTS`], a 4 KiB name, and short random text.
pub fn texts() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(TEXTS.to_vec()).prop_map(str::to_owned),
        Just("x".repeat(4_096)),
        ".{0,16}",
    ]
}
