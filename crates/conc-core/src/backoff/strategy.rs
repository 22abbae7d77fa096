//! The growth strategies and their deterministic, saturating delay formulas.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::math::{from_f64_nanos, scale, uniform};

/// How the delays of a [`Backoff`](super::Backoff) grow, as configured.
///
/// Returned by [`Backoff::strategy`](super::Backoff::strategy) so that callers can log or inspect
/// a policy; policies are created through the constructors on [`Backoff`](super::Backoff). The
/// formulas below give the delay at 0-based retry index `n`, before the cap and jitter.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::{Backoff, Strategy};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).factor(3.0).build()?;
/// match backoff.strategy() {
///     Strategy::Exponential { initial, factor, .. } => {
///         assert_eq!(*initial, Duration::from_millis(100));
///         assert_eq!(*factor, 3.0);
///     }
///     other => panic!("unexpected strategy {other:?}"),
/// }
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Strategy {
    /// The same delay before every retry: `delay`.
    #[non_exhaustive]
    Fixed {
        /// The delay before each retry.
        delay: Duration,
    },
    /// A delay that grows by a constant step: `initial + n * increment`.
    #[non_exhaustive]
    Linear {
        /// The delay before the first retry.
        initial: Duration,
        /// What each further retry adds.
        increment: Duration,
    },
    /// A delay that grows geometrically: `initial * factor^n`.
    #[non_exhaustive]
    Exponential {
        /// The delay before the first retry.
        initial: Duration,
        /// The growth factor, finite and at least 1.0.
        factor: f64,
    },
    /// A delay that follows the Fibonacci numbers: `initial * F(n + 1)`, so 1, 1, 2, 3, 5, 8 …
    /// times `initial`.
    #[non_exhaustive]
    Fibonacci {
        /// The delay before the first and the second retry.
        initial: Duration,
    },
    /// AWS "decorrelated jitter": `d(n) = random(base, 3 * d(n - 1))` with `d(-1) = base`,
    /// so the delay at index `n` lies in `[base, base * 3^(n + 1)]`.
    #[non_exhaustive]
    DecorrelatedJitter {
        /// The smallest delay, and the seed of the growth.
        base: Duration,
    },
    /// A delay computed by a function of the retry index.
    Custom(DelayFn),
}

impl fmt::Debug for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { delay } => f.debug_struct("Fixed").field("delay", delay).finish(),
            Self::Linear { initial, increment } => f
                .debug_struct("Linear")
                .field("initial", initial)
                .field("increment", increment)
                .finish(),
            Self::Exponential { initial, factor } => f
                .debug_struct("Exponential")
                .field("initial", initial)
                .field("factor", factor)
                .finish(),
            Self::Fibonacci { initial } => {
                f.debug_struct("Fibonacci").field("initial", initial).finish()
            }
            Self::DecorrelatedJitter { base } => {
                f.debug_struct("DecorrelatedJitter").field("base", base).finish()
            }
            Self::Custom(_) => f.debug_tuple("Custom").finish_non_exhaustive(),
        }
    }
}

impl Strategy {
    /// The strategy's name as used in error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Fixed { .. } => "fixed",
            Self::Linear { .. } => "linear",
            Self::Exponential { .. } => "exponential",
            Self::Fibonacci { .. } => "fibonacci",
            Self::DecorrelatedJitter { .. } => "decorrelated jitter",
            Self::Custom(_) => "custom",
        }
    }

    /// Every duration setting of the strategy, named as the constructor argument, first delay
    /// first.
    pub(crate) fn durations(&self) -> impl Iterator<Item = (&'static str, Duration)> {
        let (first, second) = match self {
            Self::Fixed { delay } => (Some(("delay", *delay)), None),
            Self::Linear { initial, increment } => {
                (Some(("initial", *initial)), Some(("increment", *increment)))
            }
            Self::Exponential { initial, .. } | Self::Fibonacci { initial } => {
                (Some(("initial", *initial)), None)
            }
            Self::DecorrelatedJitter { base } => (Some(("base", *base)), None),
            Self::Custom(_) => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// The delay at 0-based retry index `retry` without jitter, capped at `cap`.
    ///
    /// For decorrelated jitter this is the largest delay the index can take. Constant time
    /// except for a custom function, which is called once; saturates instead of overflowing.
    pub(crate) fn base_delay(&self, retry: u32, cap: Duration) -> Duration {
        let delay = match self {
            Self::Fixed { delay } => *delay,
            Self::Linear { initial, increment } => increment
                .checked_mul(retry)
                .and_then(|grown| initial.checked_add(grown))
                .unwrap_or(Duration::MAX),
            Self::Exponential { initial, factor } => exponential(*initial, *factor, retry),
            Self::Fibonacci { initial } => fibonacci(*initial, retry),
            Self::DecorrelatedJitter { base } => retry
                .checked_add(1)
                .and_then(|exponent| 3_u128.checked_pow(exponent))
                .map_or(Duration::MAX, |growth| scale(*base, growth)),
            Self::Custom(f) => f.delay(retry),
        };
        delay.min(cap)
    }
}

/// `initial * factor^retry` in floating point, rounded to the nanosecond and saturating.
fn exponential(initial: Duration, factor: f64, retry: u32) -> Duration {
    // `factor` is validated to be at least 1.0, so `<=` means "exactly 1.0"; both shortcuts keep
    // the result exact instead of round-tripping through f64.
    if retry == 0 || factor <= 1.0 {
        return initial;
    }
    // Finite and >= 1 to a non-negative power: finite or +inf, never NaN; +inf saturates.
    // `powi` (repeated squaring) is several times cheaper than `powf`; indices
    // past `i32::MAX` take `powf`, since a factor barely above 1 still grows
    // finitely there.
    let growth = i32::try_from(retry)
        .map_or_else(|_| factor.powf(f64::from(retry)), |exponent| factor.powi(exponent));
    from_f64_nanos(initial.as_nanos() as f64 * growth)
}

/// Fibonacci numbers F(0) = 0, F(1) = 1, …, F(186): every one that fits a `u128`.
const FIBONACCI: [u128; 187] = {
    let mut table = [0_u128; 187];
    table[1] = 1;
    let mut i = 2;
    while i < table.len() {
        table[i] = table[i - 1] + table[i - 2];
        i += 1;
    }
    table
};

/// `initial * F(retry + 1)`, saturating. Any F beyond the table exceeds `Duration::MAX` in
/// nanoseconds (already F(140) does), so indices past it saturate for every non-zero `initial`.
fn fibonacci(initial: Duration, retry: u32) -> Duration {
    if initial.is_zero() {
        return Duration::ZERO;
    }
    usize::try_from(u64::from(retry) + 1)
        .ok()
        .and_then(|index| FIBONACCI.get(index))
        .map_or(Duration::MAX, |&growth| scale(initial, growth))
}

/// One step of decorrelated jitter: `min(cap, random(base, 3 * previous))`, where a missing
/// `previous` means the schedule is at its start (`base`).
pub(crate) fn decorrelated_step(
    base: Duration,
    previous: Option<Duration>,
    cap: Duration,
    random: u64,
) -> Duration {
    let high = previous.unwrap_or(base).saturating_mul(3).max(base);
    base.saturating_add(uniform(high.saturating_sub(base), random)).min(cap)
}

/// A user-supplied delay function, shared behind an `Arc` so that policies stay cheap to clone.
///
/// Created by [`Backoff::custom`](super::Backoff::custom); it receives the 0-based retry index.
#[derive(Clone)]
pub struct DelayFn(Arc<dyn Fn(u32) -> Duration + Send + Sync>);

impl DelayFn {
    /// Wraps `f`.
    pub(crate) fn new(f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Calls the function for the 0-based retry index `retry`, before the cap and jitter.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use conc_core::backoff::{Backoff, Strategy};
    ///
    /// let backoff = Backoff::custom(|n| Duration::from_secs(u64::from(n) + 1)).build()?;
    /// if let Strategy::Custom(f) = backoff.strategy() {
    ///     assert_eq!(f.delay(2), Duration::from_secs(3));
    /// }
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        (self.0)(retry)
    }
}

impl fmt::Debug for DelayFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DelayFn").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{FIBONACCI, Strategy, decorrelated_step};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fibonacci_table_is_the_sequence() {
        assert_eq!(&FIBONACCI[..8], &[0, 1, 1, 2, 3, 5, 8, 13]);
        assert_eq!(FIBONACCI[186], 332_825_110_087_067_562_321_196_029_789_634_457_848);
        // The first Fibonacci number above Duration::MAX in nanoseconds is within the table, so
        // saturating past the table's end is correct for every initial delay of at least 1ns.
        assert!(FIBONACCI[140] > Duration::MAX.as_nanos());
    }

    #[test]
    fn base_delay_saturates_at_the_extremes() {
        let strategies = [
            Strategy::Linear { initial: Duration::MAX, increment: Duration::MAX },
            Strategy::Exponential { initial: Duration::MAX, factor: f64::MAX },
            Strategy::Exponential { initial: Duration::from_nanos(1), factor: 1.5 },
            Strategy::Fibonacci { initial: Duration::from_nanos(1) },
            Strategy::DecorrelatedJitter { base: Duration::from_nanos(1) },
        ];
        for strategy in strategies {
            for retry in [0, 1, 139, 140, 186, 187, u32::MAX - 1, u32::MAX] {
                let _ = strategy.base_delay(retry, Duration::MAX);
            }
            assert_eq!(strategy.base_delay(u32::MAX, Duration::MAX), Duration::MAX, "{strategy:?}");
            assert_eq!(strategy.base_delay(u32::MAX, MS), MS, "{strategy:?}");
        }
    }

    #[test]
    fn exponential_uses_the_whole_index() {
        // 1.000000001^(2^32 - 1) = e^4.29..., so the index must not be clamped to i32.
        let slow =
            Strategy::Exponential { initial: Duration::from_nanos(1), factor: 1.000_000_001 };
        assert_eq!(slow.base_delay(u32::MAX, Duration::MAX), Duration::from_nanos(73));
    }

    #[test]
    fn decorrelated_step_spans_base_to_three_times_previous() {
        let base = 100 * MS;
        assert_eq!(decorrelated_step(base, None, Duration::MAX, 0), base);
        assert_eq!(decorrelated_step(base, None, Duration::MAX, 1 << 63), 200 * MS);
        assert_eq!(decorrelated_step(base, Some(base * 10), Duration::MAX, 1 << 63), 1_550 * MS);
        assert_eq!(decorrelated_step(base, Some(base * 10), 500 * MS, 1 << 63), 500 * MS);
        // A previous delay below `base` (a resumed schedule whose policy changed) still yields
        // at least `base`.
        assert_eq!(decorrelated_step(base, Some(MS), Duration::MAX, u64::MAX), base);
        assert_eq!(decorrelated_step(base, Some(Duration::MAX), Duration::MAX, 0), base);
    }

    #[test]
    fn custom_strategies_debug_without_their_function() {
        let strategy = Strategy::Custom(super::DelayFn::new(|_| MS));
        assert_eq!(format!("{strategy:?}"), "Custom(..)");
    }
}
