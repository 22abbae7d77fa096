//! The clock every time-deciding primitive reads: a [`Timeline`] over the
//! clock given to its builder's `.clock(c)`.

use std::sync::Arc;

use conc_core::time::{Clock, CoarseClock, Timeline};

/// A clock as a builder holds it.
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The timeline a primitive reads: over `clock`, or over
/// [`CoarseClock::global`] when none was given.
pub(crate) fn timeline(clock: Option<SharedClock>) -> Timeline<SharedClock> {
    Timeline::new(clock.unwrap_or_else(|| Arc::new(CoarseClock::global().clone())))
}
