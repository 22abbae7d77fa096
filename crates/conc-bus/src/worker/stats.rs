//! The numbers a worker keeps about itself: latency histograms with about 6 %
//! precision and a one-minute rate window. Only the worker's own loop writes
//! them; snapshots read them under a short lock.

use std::time::Duration;

/// Sub-buckets per power of two: 8, so a bucket spans at most 1/8 of its value.
const SUB: u32 = 8;
/// Powers of two covered: 2^0 ns to 2^48 ns (about 3 days); longer counts in the last bucket.
const OCTAVES: u32 = 48;
const BUCKETS: usize = (OCTAVES * SUB) as usize;

/// Durations counted in logarithmic buckets.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

impl Histogram {
    fn index(nanos: u64) -> usize {
        if nanos < u64::from(SUB) {
            return nanos as usize;
        }
        let octave = nanos.ilog2(); // >= 3
        let sub = (nanos >> (octave - 3)) & u64::from(SUB - 1);
        let index = (octave - 2) * SUB + sub as u32;
        (index as usize).min(BUCKETS - 1)
    }

    /// The largest duration that falls into bucket `index`.
    fn upper(index: usize) -> u64 {
        let index = index as u32;
        if index < SUB {
            return u64::from(index);
        }
        let octave = index / SUB + 2;
        let sub = u64::from(index % SUB);
        ((u64::from(SUB) + sub + 1) << (octave - 3)) - 1
    }

    pub(crate) fn record(&mut self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(nanos)] += 1;
        self.total += 1;
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0 to 1), as the upper bound of its bucket.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(Self::upper(index));
            }
        }
        Duration::from_nanos(Self::upper(BUCKETS - 1))
    }
}

/// Events counted per second over the last minute.
#[derive(Debug, Clone)]
pub(crate) struct MinuteRate {
    /// `(second, count)` per slot, slot = second % 60.
    slots: [(u64, u64); 60],
}

impl Default for MinuteRate {
    fn default() -> Self {
        Self { slots: [(u64::MAX, 0); 60] }
    }
}

impl MinuteRate {
    /// Counts one event at `second` (any monotonic count of seconds).
    pub(crate) fn add(&mut self, second: u64) {
        let slot = &mut self.slots[(second % 60) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
    }

    /// Events in the 60 seconds up to and including `second`.
    pub(crate) fn last_minute(&self, second: u64) -> u64 {
        self.slots
            .iter()
            .filter(|(at, _)| *at != u64::MAX && *at <= second && second - *at < 60)
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_bucket_bound_is_within_an_eighth(nanos in 1_u64..(1 << 47)) {
            let upper = Histogram::upper(Histogram::index(nanos));
            prop_assert!(upper >= nanos);
            prop_assert!(upper - nanos <= nanos / 8 + 1, "{} -> {}", nanos, upper);
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut histogram = Histogram::default();
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        let p50 = histogram.quantile(0.5).as_secs_f64() * 1e3;
        let p99 = histogram.quantile(0.99).as_secs_f64() * 1e3;
        assert!((50.0..=57.0).contains(&p50), "{p50}");
        assert!((99.0..=113.0).contains(&p99), "{p99}");
        assert_eq!(histogram.count(), 100);
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn the_minute_window_forgets_old_seconds() {
        let mut rate = MinuteRate::default();
        for second in 0..120 {
            rate.add(second);
        }
        assert_eq!(rate.last_minute(119), 60);
        assert_eq!(rate.last_minute(200), 0);
        rate.add(200);
        rate.add(200);
        assert_eq!(rate.last_minute(200), 2);
    }
}
