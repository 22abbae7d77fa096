//! The one place atomics and locks come from, so loom models can swap them in.
//!
//! Under `--cfg conc_loom` (set by `cargo xtask loom`) the crate's own test build
//! uses loom's types; every other build uses `std`'s. Library code imports
//! `crate::loom::…`, never `std::sync::atomic` directly.

#[cfg(all(test, conc_loom))]
pub(crate) use loom::sync;

#[cfg(not(all(test, conc_loom)))]
pub(crate) use std::sync;
