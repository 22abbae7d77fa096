//! The scheduler's wall time: the system's by default, or a clock anchored to
//! a chosen time for tests.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_core::time::{Clock, Timeline};
use jiff::Timestamp;

/// Where "now" comes from.
#[derive(Clone)]
pub(crate) enum WallTime {
    /// `SystemTime::now()`, so the schedule follows the system's clock when
    /// it is set (NTP, a manual change).
    System,
    /// A clock's time since its origin, plus the Unix time at that origin.
    Anchored { timeline: Arc<Timeline<Arc<dyn Clock>>>, unix_at_origin_ms: i64 },
}

impl WallTime {
    /// `clock`, read as if it said `now` at this moment.
    pub(crate) fn anchored(clock: Arc<dyn Clock>, now: SystemTime) -> Self {
        let timeline = Timeline::new(clock);
        let since_origin = i64::try_from(timeline.now() / 1_000_000).unwrap_or(i64::MAX);
        let unix_now = unix_ms(now);
        Self::Anchored {
            timeline: Arc::new(timeline),
            unix_at_origin_ms: unix_now.saturating_sub(since_origin),
        }
    }

    /// Unix milliseconds now.
    pub(crate) fn now_ms(&self) -> i64 {
        match self {
            Self::System => unix_ms(SystemTime::now()),
            Self::Anchored { timeline, unix_at_origin_ms } => {
                let since = i64::try_from(timeline.now() / 1_000_000).unwrap_or(i64::MAX);
                unix_at_origin_ms.saturating_add(since)
            }
        }
    }

    /// Now, as a timestamp.
    pub(crate) fn now(&self) -> Timestamp {
        timestamp(self.now_ms())
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("System"),
            Self::Anchored { .. } => {
                f.debug_struct("Anchored").field("now_ms", &self.now_ms()).finish()
            }
        }
    }
}

/// `time` in Unix milliseconds (negative before 1970), saturating.
pub(crate) fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Unix milliseconds as a timestamp, clamped to jiff's range.
pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// A timestamp as a `SystemTime`.
pub(crate) fn system_time(at: Timestamp) -> SystemTime {
    let ms = at.as_millisecond();
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conc_core::time::ManualClock;

    #[test]
    fn an_anchored_clock_starts_at_the_time_given_and_follows_its_clock() {
        let manual = ManualClock::new();
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let wall = WallTime::anchored(Arc::new(manual.clone()), start);
        assert_eq!(system_time(wall.now()), start);
        manual.advance(Duration::from_millis(1_500));
        assert_eq!(wall.now_ms(), 1_800_000_001_500);
    }

    #[test]
    fn times_before_1970_and_far_away_saturate() {
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(unix_ms(before), -5);
        assert_eq!(system_time(timestamp(-5)), before);
        assert_eq!(timestamp(i64::MAX), Timestamp::MAX);
        assert_eq!(timestamp(i64::MIN), Timestamp::MIN);
    }
}
