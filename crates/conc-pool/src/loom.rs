//! The one place atomics (and the yield of a spin) come from, so loom models
//! can swap them in.
//!
//! Under `--cfg conc_loom` (set by `cargo xtask loom`) the crate's own test build
//! uses loom's atomics; every other build uses `std`'s. Library code imports
//! `crate::loom::sync::atomic::…`, never `std::sync::atomic` directly, and
//! yields in a spin with `crate::loom::thread::yield_now`. Shared memory that
//! a lock of the crate's own guards goes through `crate::loom::cell::UnsafeCell`,
//! so the models also check that every access to it holds the lock.

#[cfg(all(test, conc_loom))]
pub(crate) use loom::{cell, sync, thread};

#[cfg(not(all(test, conc_loom)))]
pub(crate) use std::{sync, thread};

/// Waits one round of a short spin: a pause, then, after a few rounds, a
/// yield (under loom, always a yield, so the model runs the thread waited for).
pub(crate) fn spin_round(round: u32) {
    #[cfg(all(test, conc_loom))]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(all(test, conc_loom)))]
    {
        if round < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// `std`'s `UnsafeCell` with loom's interface (accesses through closures).
#[cfg(not(all(test, conc_loom)))]
pub(crate) mod cell {
    /// An `UnsafeCell` read and written through closures, as loom's is.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a pointer to the value to write it.
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
