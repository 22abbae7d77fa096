//! The one place atomics and the slot's small mutex come from, so loom
//! models can swap them in.
//!
//! Under `--cfg conc_loom` (set by `cargo xtask loom`) the crate's own test build
//! uses loom's; every other build uses `std`'s. Library code imports
//! `crate::loom::sync::…`, never `std::sync::atomic` directly.

#[cfg(all(test, conc_loom))]
pub(crate) use loom::{sync, thread};

#[cfg(not(all(test, conc_loom)))]
pub(crate) use std::{sync, thread};
