//! The schedule iterator, [`Delays`].

use std::iter::FusedIterator;
use std::time::Duration;

use super::Backoff;
use super::rng::splitmix64_at;

/// One retry loop's schedule: an iterator over the delays to wait before each retry.
///
/// Created by [`Backoff::delays`], [`Backoff::delays_seeded`] and [`Backoff::delays_from`].
/// Yields `max_retries` delays when a retry limit is set and never ends otherwise; once it has
/// returned `None` it keeps returning `None`. It owns a clone of its policy, so it can live in a
/// retry future next to the policy it came from, and it never allocates.
///
/// The random draw for each retry index is a pure function of the seed and the index, so a
/// schedule resumed with [`Backoff::delays_from`] continues exactly where the interrupted one
/// stopped.
///
/// ```
/// use std::time::Duration;
///
/// use conc_core::backoff::Backoff;
///
/// let backoff = Backoff::fixed(Duration::from_secs(1)).max_attempts(3).build()?;
/// let mut delays = backoff.delays();
/// assert_eq!(delays.remaining(), Some(2));
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.retries_so_far(), 1);
/// assert_eq!(delays.previous(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), None); // a third attempt failed: give up
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a schedule does nothing unless iterated"]
pub struct Delays {
    backoff: Backoff,
    /// How the next delay is computed: a shortcut where one applies.
    step: Step,
    /// `max_retries` as a position, read once instead of per delay.
    limit: Option<u64>,
    seed: u64,
    /// Index of the next delay. Wider than the `u32` retry index so that an unlimited schedule
    /// keeps drawing new random numbers past `u32::MAX` retries.
    position: u64,
    previous: Option<Duration>,
}

impl Delays {
    /// Starts a schedule of `backoff` drawn with `seed`, at retry index `next_index`.
    #[inline]
    pub(crate) fn new(
        backoff: Backoff,
        seed: u64,
        next_index: u32,
        previous: Option<Duration>,
    ) -> Self {
        let step = backoff.step_from(next_index);
        let limit = backoff.max_retries().map(u64::from);
        Self { backoff, step, limit, seed, position: u64::from(next_index), previous }
    }

    /// Returns how many delays this schedule has handed out, counting those skipped by
    /// [`Backoff::delays_from`]: the 0-based index of the next delay.
    ///
    /// This is the value to store to resume the schedule later. Saturates at `u32::MAX` on an
    /// unlimited schedule.
    pub fn retries_so_far(&self) -> u32 {
        u32::try_from(self.position).unwrap_or(u32::MAX)
    }

    /// Returns the last delay handed out (or the `previous` a resumed schedule started from),
    /// `None` at the start of a schedule.
    pub fn previous(&self) -> Option<Duration> {
        self.previous
    }

    /// Returns how many delays are left, or `None` for an unlimited schedule.
    pub fn remaining(&self) -> Option<u32> {
        self.backoff.max_retries().map(|max| max.saturating_sub(self.retries_so_far()))
    }

    /// Returns the seed this schedule draws its random numbers from (0 for a schedule without
    /// jitter and without a configured seed, which draws none).
    ///
    /// Store it with [`retries_so_far`](Self::retries_so_far) and [`previous`](Self::previous)
    /// to resume the very same jittered schedule through a policy built with that
    /// [`seed`](super::BackoffBuilder::seed).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Returns the policy this schedule follows.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}

impl Delays {
    /// The next delay by the general formula (jitter, or a strategy without a
    /// shortcut), from `position` and `previous`.
    #[inline]
    fn general_delay(&self) -> Duration {
        let random =
            if self.backoff.is_random() { splitmix64_at(self.seed, self.position) } else { 0 };
        self.backoff.delay_at(self.retries_so_far(), self.previous, random)
    }
}

impl Iterator for Delays {
    type Item = Duration;

    #[inline]
    fn next(&mut self) -> Option<Duration> {
        if self.limit.is_some_and(|limit| self.position >= limit) {
            return None;
        }
        let delay = match &mut self.step {
            Step::Constant(delay) => *delay,
            Step::Fibonacci { next, after, cap } => {
                let delay = (*next).min(*cap);
                (*next, *after) = (*after, next.saturating_add(*after));
                delay
            }
            Step::General => self.general_delay(),
        };
        self.previous = Some(delay);
        self.position = self.position.saturating_add(1);
        Some(delay)
    }

    /// Consumes the schedule in one loop: the state a later `next` would read
    /// (`previous`, `position`) is never kept, and fixed and Fibonacci steps
    /// run without re-dispatching per delay.
    #[inline]
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Duration) -> B,
    {
        let mut acc = init;
        let count = self.limit.map(|limit| limit.saturating_sub(self.position));
        match &mut self.step {
            Step::Constant(delay) => {
                let delay = *delay;
                match count {
                    Some(count) => {
                        for _ in 0..count {
                            acc = f(acc, delay);
                        }
                        acc
                    }
                    None => loop {
                        acc = f(acc, delay);
                    },
                }
            }
            Step::Fibonacci { next, after, cap } => {
                let (mut next, mut after, cap) = (*next, *after, *cap);
                let mut step = |acc| {
                    let delay = next.min(cap);
                    (next, after) = (after, next.saturating_add(after));
                    f(acc, delay)
                };
                match count {
                    Some(count) => {
                        for _ in 0..count {
                            acc = step(acc);
                        }
                        acc
                    }
                    None => loop {
                        acc = step(acc);
                    },
                }
            }
            Step::General => {
                while self.limit.is_none_or(|limit| self.position < limit) {
                    let delay = self.general_delay();
                    self.previous = Some(delay);
                    self.position = self.position.saturating_add(1);
                    acc = f(acc, delay);
                }
                acc
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining().map(usize::try_from) {
            Some(Ok(remaining)) => (remaining, Some(remaining)),
            Some(Err(_)) | None => (usize::MAX, None),
        }
    }
}

impl FusedIterator for Delays {}

/// How a schedule computes its next delay.
///
/// Schedules without randomness whose delays follow from the previous ones by
/// a step cheaper than the formula carry that state forward; they yield
/// exactly what [`Backoff::delay_at`] would (a test compares them).
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// [`Backoff::delay_at`] for every retry.
    General,
    /// The same delay every time: a fixed strategy without jitter, capped.
    Constant(Duration),
    /// A Fibonacci strategy without jitter: `next = initial * F(n + 1)` and
    /// `after = initial * F(n + 2)` for the next index `n`, both saturating,
    /// so each step is one addition; capped as handed out.
    Fibonacci {
        /// The next delay before the cap.
        next: Duration,
        /// The one after it before the cap.
        after: Duration,
        /// `max_delay`, or `Duration::MAX`.
        cap: Duration,
    },
}
