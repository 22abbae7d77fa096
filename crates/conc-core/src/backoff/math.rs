//! Saturating duration arithmetic: nothing here panics, overflows or wraps.
//!
//! Delays are computed in whole nanoseconds held in a `u128`, which holds every `Duration`
//! (at most about 1.8e28 ns) with room to multiply. Results beyond `Duration::MAX` saturate to it.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Converts a nanosecond count to a `Duration`, saturating at `Duration::MAX`.
pub(crate) fn from_nanos(nanos: u128) -> Duration {
    // Fast path: below about 584 years the value fits a u64, whose division
    // by a constant compiles to a multiply; u128 division is a slow libcall.
    if let Ok(small) = u64::try_from(nanos) {
        return Duration::from_nanos(small);
    }
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits a u32 and `Duration::new` cannot carry.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Converts a floating-point nanosecond count to a `Duration`, rounding to the nearest
/// nanosecond; NaN and values beyond `Duration::MAX` (including infinity) saturate to
/// `Duration::MAX`, negative values to zero.
pub(crate) fn from_f64_nanos(nanos: f64) -> Duration {
    if nanos.is_nan() {
        return Duration::MAX;
    }
    // Float-to-int `as` casts saturate: negative becomes 0 and +inf becomes u128::MAX.
    from_nanos(nanos.round() as u128)
}

/// Returns `duration * factor`, saturating at `Duration::MAX`.
pub(crate) fn scale(duration: Duration, factor: u128) -> Duration {
    duration.as_nanos().checked_mul(factor).map_or(Duration::MAX, from_nanos)
}

/// Maps 64 random bits to a duration in `[0, range)`, or zero when `range` is zero.
///
/// Uses the multiply-shift reduction (Lemire), which is uniform up to a bias below 2^-64 per
/// nanosecond, far under anything a timer can observe.
pub(crate) fn uniform(range: Duration, random: u64) -> Duration {
    let nanos = range.as_nanos();
    let scaled = match u64::try_from(nanos) {
        Ok(nanos) => (u128::from(nanos) * u128::from(random)) >> 64,
        // Ranges above 2^64 ns (584 years) use 32 random bits so the product stays below
        // 2^94 * 2^32 = 2^126 and fits the u128.
        Err(_) => (nanos * u128::from(random >> 32)) >> 32,
    };
    from_nanos(scaled)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{from_f64_nanos, from_nanos, scale, uniform};

    #[test]
    fn from_nanos_round_trips_and_saturates() {
        assert_eq!(from_nanos(0), Duration::ZERO);
        assert_eq!(from_nanos(1_500_000_001), Duration::new(1, 500_000_001));
        assert_eq!(from_nanos(Duration::MAX.as_nanos()), Duration::MAX);
        assert_eq!(from_nanos(Duration::MAX.as_nanos() + 1), Duration::MAX);
        assert_eq!(from_nanos(u128::MAX), Duration::MAX);
    }

    #[test]
    fn from_f64_nanos_rounds_and_saturates() {
        assert_eq!(from_f64_nanos(1e8), Duration::from_millis(100));
        assert_eq!(from_f64_nanos(2.5), Duration::from_nanos(3));
        assert_eq!(from_f64_nanos(-5.0), Duration::ZERO);
        assert_eq!(from_f64_nanos(f64::NAN), Duration::MAX);
        assert_eq!(from_f64_nanos(f64::INFINITY), Duration::MAX);
        assert_eq!(from_f64_nanos(1e300), Duration::MAX);
    }

    #[test]
    fn scale_saturates() {
        assert_eq!(scale(Duration::from_millis(100), 3), Duration::from_millis(300));
        assert_eq!(scale(Duration::from_nanos(1), u128::MAX), Duration::MAX);
        assert_eq!(scale(Duration::MAX, 2), Duration::MAX);
        assert_eq!(scale(Duration::MAX, 0), Duration::ZERO);
    }

    #[test]
    fn uniform_stays_below_its_range() {
        let ranges =
            [Duration::ZERO, Duration::from_nanos(1), Duration::from_secs(10), Duration::MAX];
        for range in ranges {
            assert_eq!(uniform(range, 0), Duration::ZERO);
            let top = uniform(range, u64::MAX);
            assert!(top <= range, "{top:?} > {range:?}");
            if range > Duration::from_nanos(1) {
                assert!(top < range, "{top:?} >= {range:?}");
            }
        }
        assert_eq!(uniform(Duration::from_secs(10), 1 << 63), Duration::from_secs(5));
        assert_eq!(uniform(Duration::MAX, 1 << 63), Duration::MAX / 2);
    }
}
