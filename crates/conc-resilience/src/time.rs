//! Where the primitives read time: nanoseconds since an origin, with the
//! coarse and manual clocks read without `Instant` arithmetic.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conc_core::time::{Clock, CoarseClock, ManualClock};

/// A clock, read as nanoseconds since its origin.
#[derive(Clone)]
pub(crate) enum TimeSource {
    Coarse(CoarseClock),
    Manual(ManualClock),
    Other { clock: Arc<dyn Clock>, origin: Instant },
}

impl fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Coarse(clock) => f.debug_tuple("Coarse").field(clock).finish(),
            Self::Manual(clock) => f.debug_tuple("Manual").field(clock).finish(),
            Self::Other { clock, .. } => f.debug_tuple("Other").field(clock).finish(),
        }
    }
}

impl Default for TimeSource {
    fn default() -> Self {
        Self::Coarse(CoarseClock::global().clone())
    }
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl TimeSource {
    pub(crate) fn new<C: Clock + 'static>(clock: C) -> Self {
        let any: &dyn Any = &clock;
        if let Some(coarse) = any.downcast_ref::<CoarseClock>() {
            Self::Coarse(coarse.clone())
        } else if let Some(manual) = any.downcast_ref::<ManualClock>() {
            Self::Manual(manual.clone())
        } else {
            let origin = clock.now();
            Self::Other { clock: Arc::new(clock), origin }
        }
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Self::Coarse(clock) => nanos(clock.elapsed()),
            Self::Manual(clock) => nanos(clock.elapsed()),
            Self::Other { clock, origin } => nanos(clock.now().saturating_duration_since(*origin)),
        }
    }
}
