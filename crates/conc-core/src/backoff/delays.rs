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
    seed: u64,
    /// Index of the next delay. Wider than the `u32` retry index so that an unlimited schedule
    /// keeps drawing new random numbers past `u32::MAX` retries.
    position: u64,
    previous: Option<Duration>,
}

impl Delays {
    /// Starts a schedule of `backoff` drawn with `seed`, at retry index `next_index`.
    pub(crate) fn new(
        backoff: Backoff,
        seed: u64,
        next_index: u32,
        previous: Option<Duration>,
    ) -> Self {
        Self { backoff, seed, position: u64::from(next_index), previous }
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

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.backoff.max_retries().is_some_and(|max| self.position >= u64::from(max)) {
            return None;
        }
        let retry = self.retries_so_far();
        let random =
            if self.backoff.is_random() { splitmix64_at(self.seed, self.position) } else { 0 };
        let delay = self.backoff.delay_at(retry, self.previous, random);
        self.previous = Some(delay);
        self.position = self.position.saturating_add(1);
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining().map(usize::try_from) {
            Some(Ok(remaining)) => (remaining, Some(remaining)),
            Some(Err(_)) | None => (usize::MAX, None),
        }
    }
}

impl FusedIterator for Delays {}
