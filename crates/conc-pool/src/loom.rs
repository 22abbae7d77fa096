//! The one place atomics (and the yield of a spin) come from, so loom models
//! can swap them in.
//!
//! Under `--cfg conc_loom` (set by `cargo xtask loom`) the crate's own test build
//! uses loom's atomics; every other build uses `std`'s. Library code imports
//! `crate::loom::sync::atomic::…`, never `std::sync::atomic` directly, and
//! yields in a spin with `crate::loom::thread::yield_now`.

#[cfg(all(test, conc_loom))]
pub(crate) use loom::{sync, thread};

#[cfg(not(all(test, conc_loom)))]
pub(crate) use std::{sync, thread};
