//! Jitter modes: how a computed delay is randomised so that callers do not retry in lockstep.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::math::uniform;

/// How each delay of a schedule is randomised.
///
/// Jitter is applied to the delay *after* it was capped by
/// [`max_delay`](super::BackoffBuilder::max_delay), and the result is capped again, so a
/// jittered delay never exceeds the cap. With `d` the capped delay:
///
/// | mode | delay | range |
/// |---|---|---|
/// | `None` | `d` | exactly `d` |
/// | `Full` | `random(0, d)` | `[0, d]` |
/// | `Equal` | `d/2 + random(0, d/2)` | `[d/2, d]` |
///
/// `Full` spreads retries the most (AWS's recommendation for contended resources); `Equal`
/// keeps at least half of the delay, so a retry never comes almost immediately.
///
/// Decorrelated jitter is a strategy of its own
/// ([`Backoff::decorrelated_jitter`](super::Backoff::decorrelated_jitter)), not a mode here.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::Jitter;
///
/// let d = Duration::from_millis(100);
/// assert_eq!(Jitter::default(), Jitter::None);
/// assert_eq!(Jitter::Equal.bounds(d), Duration::from_millis(50)..=d);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomisation: every delay is exactly the computed one. The default.
    #[default]
    None,
    /// A uniformly random delay between zero and the computed delay.
    Full,
    /// Half of the computed delay plus a uniformly random part of the other half.
    Equal,
}

impl Jitter {
    /// Returns the range a delay of `delay` can take after this jitter is applied.
    ///
    /// `Equal` rounds the lower bound `delay / 2` down to the nanosecond.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::Jitter;
    ///
    /// let d = Duration::from_secs(1);
    /// assert_eq!(Jitter::None.bounds(d), d..=d);
    /// assert_eq!(Jitter::Full.bounds(d), Duration::ZERO..=d);
    /// assert_eq!(Jitter::Equal.bounds(d), Duration::from_millis(500)..=d);
    /// ```
    pub fn bounds(self, delay: Duration) -> RangeInclusive<Duration> {
        match self {
            Self::None => delay..=delay,
            Self::Full => Duration::ZERO..=delay,
            Self::Equal => delay / 2..=delay,
        }
    }

    /// Applies this jitter to `delay` using 64 random bits; the result lies in
    /// [`bounds(delay)`](Self::bounds).
    pub(crate) fn apply(self, delay: Duration, random: u64) -> Duration {
        match self {
            Self::None => delay,
            Self::Full => uniform(delay, random),
            Self::Equal => {
                let half = delay / 2;
                // `delay - half` is at least `half` (it keeps the odd nanosecond), so the sum
                // reaches at most `delay` and cannot overflow.
                half.saturating_add(uniform(delay.saturating_sub(half), random))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Jitter;

    #[test]
    fn apply_stays_within_bounds_at_the_extremes() {
        let delays =
            [Duration::ZERO, Duration::from_nanos(1), Duration::from_nanos(3), Duration::MAX];
        for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
            for delay in delays {
                for random in [0, 1, 1 << 63, u64::MAX] {
                    let got = jitter.apply(delay, random);
                    assert!(
                        jitter.bounds(delay).contains(&got),
                        "{jitter:?} of {delay:?} with {random} gave {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn equal_jitter_spans_its_upper_half() {
        let delay = Duration::from_secs(10);
        assert_eq!(Jitter::Equal.apply(delay, 0), Duration::from_secs(5));
        assert_eq!(Jitter::Equal.apply(delay, 1 << 63), Duration::from_millis(7_500));
        assert_eq!(Jitter::Full.apply(delay, 1 << 63), Duration::from_secs(5));
    }
}
