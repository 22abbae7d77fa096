//! Staggered wake-ups: spread waiters that were told to come back at the same instant.

use std::time::Duration;

use super::math::uniform;
use super::rng::fresh_seed;

/// The most a [`stagger`] adds to a wait: 50 milliseconds.
///
/// Large enough to spread a hundred waiters over distinct ticks of tokio's
/// millisecond timer, small enough not to matter beside the waits it spreads.
pub const MAX_STAGGER: Duration = Duration::from_millis(50);

/// Returns `wait` plus a random extra of at most `min(wait, MAX_STAGGER)`.
///
/// A limiter or a lock that refuses many callers at once names the same
/// instant to each of them ("retry in 100 ms"); callers that all sleep
/// exactly that long wake together, and all but one are refused again, round
/// after round. Waiting loops pass the named wait through `stagger` after
/// their first refusal, so the retries spread out. The extra never exceeds
/// the wait itself, so short waits stay short, and never exceeds
/// [`MAX_STAGGER`]. Each call draws from the calling thread's own random
/// stream: no lock, no shared atomic, no allocation.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::{MAX_STAGGER, stagger};
///
/// let wait = Duration::from_millis(100);
/// let staggered = stagger(wait);
/// assert!(staggered >= wait && staggered <= wait + MAX_STAGGER);
/// assert_eq!(stagger(Duration::ZERO), Duration::ZERO);
/// ```
pub fn stagger(wait: Duration) -> Duration {
    wait.saturating_add(uniform(wait.min(MAX_STAGGER), fresh_seed()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::{MAX_STAGGER, stagger};

    #[test]
    fn the_extra_is_bounded_by_the_wait_and_the_cap() {
        for wait in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(3),
            Duration::from_secs(60),
            Duration::MAX,
        ] {
            for _ in 0..1_000 {
                let got = stagger(wait);
                assert!(got >= wait, "{got:?} < {wait:?}");
                assert!(
                    got.saturating_sub(wait) <= wait.min(MAX_STAGGER),
                    "{wait:?} staggered to {got:?}"
                );
            }
        }
    }

    #[test]
    fn a_hundred_waiters_land_on_many_distinct_milliseconds() {
        let wait = Duration::from_millis(100);
        let ticks: HashSet<u128> = (0..100).map(|_| stagger(wait).as_millis()).collect();
        // 100 draws over 51 millisecond ticks cover about 44 of them; lockstep would be 1.
        assert!(ticks.len() >= 20, "only {} distinct ticks", ticks.len());
    }
}
