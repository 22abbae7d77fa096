//! [`SlidingLog`]: the sliding log, every admission kept until it ages out.

use std::collections::VecDeque;
use std::fmt;

use conc_core::time::{Clock, CoarseClock};

use super::api::sliding_limiter;
use super::{History, Sliding, lock};

/// The sliding log: never more than `limit` units in any window of length
/// `window`, exactly.
///
/// Every admission is kept with its instant until it is `window` old: an
/// admission at `t` counts for the window `(now − window, now]`, so it stops
/// counting at exactly `t + window`. Admissions at the same instant share one
/// entry. Memory is 16 bytes per entry and at most `limit` entries; that is
/// the price of exactness (a [`SlidingWindow`](crate::SlidingWindow) keeps 24
/// bytes whatever the limit).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::{RateLimitError, SlidingLog};
///
/// let clock = ManualClock::new();
/// let limiter =
///     SlidingLog::builder(3, Duration::from_secs(10)).clock(clock.clone()).build()?;
/// limiter.try_acquire(1)?;
/// clock.advance(Duration::from_secs(4));
/// limiter.try_acquire(2)?;
/// // The first admission stops counting 10 s after it was made.
/// assert_eq!(
///     limiter.try_acquire(1),
///     Err(RateLimitError::Limited { retry_after: Duration::from_secs(6) })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlidingLog<C = CoarseClock> {
    inner: Sliding<Log, C>,
}

/// The admissions still in the window, oldest first: (instant, units).
#[derive(Default)]
pub(super) struct Log {
    entries: VecDeque<(u64, u64)>,
    total: u64,
}

sliding_limiter!(SlidingLog, SlidingLogBuilder, "at most `limit` units in any `window`");

impl<C: Clock> SlidingLog<C> {
    /// Entries kept now (distinct admission instants in the window).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::time::ManualClock;
    /// use conc_ratelimit::SlidingLog;
    ///
    /// let log = SlidingLog::builder(10, Duration::from_secs(1)).clock(ManualClock::new()).build()?;
    /// log.try_acquire(3)?;
    /// log.try_acquire(2)?; // the same instant: the same entry
    /// assert_eq!(log.entries(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn entries(&self) -> usize {
        lock(&self.inner.state).entries.len()
    }
}

impl History for Log {
    /// Drops admissions at or before `now − window`.
    fn advance(&mut self, now: u64, window: u64) {
        while let Some(&(at, units)) = self.entries.front() {
            if at.saturating_add(window) > now {
                break;
            }
            self.entries.pop_front();
            self.total -= units;
        }
    }

    fn room(&self, _now: u64, limit: u64, _window: u64) -> u64 {
        limit - self.total
    }

    fn wait_for(&self, now: u64, n: u64, limit: u64, window: u64) -> u64 {
        if self.total + n <= limit {
            return 0;
        }
        let mut left = self.total;
        for &(at, units) in &self.entries {
            left -= units;
            if left + n <= limit {
                return at.saturating_add(window) - now;
            }
        }
        // Unreachable while n ≤ limit: once every entry aged out, n fits.
        window
    }

    fn record(&mut self, now: u64, n: u64) {
        self.total += n;
        match self.entries.back_mut() {
            Some((at, units)) if *at == now => *units += n,
            _ => self.entries.push_back((now, n)),
        }
    }

    fn reset_after(&self, now: u64, window: u64) -> u64 {
        self.entries.back().map_or(0, |&(at, _)| at.saturating_add(window).saturating_sub(now))
    }
}

/// The entry count and the units they hold, not every entry.
impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("entries", &self.entries.len())
            .field("total", &self.total)
            .finish()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use std::collections::VecDeque;

    fn entry_size<T>(_: &VecDeque<T>) -> usize {
        size_of::<T>()
    }

    /// A log entry is the 16 bytes the docs give.
    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(entry_size(&super::Log::default().entries), 16);
    }
}
