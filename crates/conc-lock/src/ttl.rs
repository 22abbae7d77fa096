//! Validating times to live.

use std::time::Duration;

use crate::LockError;

/// The longest time to live accepted: 365 days.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Validates `ttl` and rounds it up to whole milliseconds, the unit every
/// backend stores.
#[inline]
pub(crate) fn validate(ttl: Duration) -> Result<Duration, LockError> {
    conc_core::config::between("ttl", ttl, Duration::from_millis(1), MAX_TTL)?;
    // Whole seconds and milliseconds up to a year: the fraction of a
    // millisecond is rounded up without 128-bit division (this runs on every
    // one-shot `LockStore::get_with`).
    let fraction = ttl.subsec_nanos() % 1_000_000;
    if fraction == 0 {
        Ok(ttl)
    } else {
        Ok(ttl + Duration::from_nanos(u64::from(1_000_000 - fraction)))
    }
}

/// `ttl` in whole milliseconds (it is validated, so it fits).
#[cfg_attr(
    not(any(feature = "sqlite", feature = "redis")),
    allow(dead_code, reason = "used by the SQLite and Redis backends")
)]
pub(crate) fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_TTL, validate};
    use crate::LockError;

    #[test]
    fn rounds_up_to_whole_milliseconds() {
        assert_eq!(validate(Duration::from_micros(1500)).unwrap(), Duration::from_millis(2));
        assert_eq!(validate(Duration::from_millis(3)).unwrap(), Duration::from_millis(3));
        assert_eq!(validate(MAX_TTL).unwrap(), MAX_TTL);
        let just_over = Duration::new(7, 999_000_001);
        assert_eq!(validate(just_over).unwrap(), Duration::from_secs(8));
        assert_eq!(validate(Duration::new(7, 1)).unwrap(), Duration::new(7, 1_000_000));
    }

    #[test]
    fn rejects_zero_sub_millisecond_and_huge() {
        for bad in [Duration::ZERO, Duration::from_micros(999), MAX_TTL + Duration::from_secs(1)] {
            let err = validate(bad).unwrap_err();
            assert!(matches!(&err, LockError::Config(error) if error.field == "ttl"), "{err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
