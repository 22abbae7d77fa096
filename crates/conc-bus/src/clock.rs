//! The bus's time: Unix milliseconds read from any `conc_core` clock, so that
//! stored times (created, available, lease deadlines, failed at) are shared by
//! processes and readable, while tests drive them with a `ManualClock`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_core::time::{Clock, CoarseClock, Timeline, saturating_nanos};

/// Unix milliseconds as every backend stores them.
pub(crate) type Millis = u64;

/// A clock read as Unix milliseconds: the Unix time at the timeline's origin
/// plus the time the clock says has passed since.
#[derive(Clone)]
pub(crate) struct WallClock {
    timeline: Arc<Timeline<Arc<dyn Clock>>>,
    unix_at_origin: Millis,
}

impl WallClock {
    /// A wall clock over `clock`, anchored to the system's Unix time now.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let timeline = Timeline::new(clock);
        let since_origin = Duration::from_nanos(timeline.now());
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let unix_at_origin = millis(unix_now.saturating_sub(since_origin));
        Self { timeline: Arc::new(timeline), unix_at_origin }
    }

    /// Unix milliseconds now.
    pub(crate) fn now(&self) -> Millis {
        self.unix_at_origin.saturating_add(self.timeline.now() / 1_000_000)
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new(Arc::new(CoarseClock::global().clone()))
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallClock").field("now", &self.now()).finish()
    }
}

/// `duration` in whole milliseconds, saturating, rounded up so a positive
/// delay is never stored as zero.
pub(crate) fn millis(duration: Duration) -> Millis {
    saturating_nanos(duration).div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conc_core::time::ManualClock;

    #[test]
    fn follows_the_clock_it_reads() {
        let manual = ManualClock::new();
        let clock = WallClock::new(Arc::new(manual.clone()));
        let start = clock.now();
        manual.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), start + 1_500);
        assert!(start > 1_700_000_000_000);
    }

    #[test]
    fn rounds_delays_up() {
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::MAX), u64::MAX / 1_000_000 + 1);
    }
}
