//! Sliding windows: [`SlidingWindow`] (two counters, approximate, O(1) memory)
//! and [`SlidingLog`] (every admission kept, exact, O(limit) memory).
//!
//! | | exact "never more than `limit` in any window"? | state | cost per check |
//! |---|---|---|---|
//! | [`SlidingWindow`] | approximately: it assumes the previous window's requests were spread evenly | 24 bytes | O(1) |
//! | [`SlidingLog`] | exactly | 16 bytes per distinct admission instant, at most `limit` entries | amortised O(1) |
//!
//! Both are one [`Sliding`] core over what they remember of the window (a
//! [`History`]): the core reads the clock, locks the state, moves it to now
//! and asks it how much fits; the two histories only differ in that
//! arithmetic.

mod api;
mod log;
mod window;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, Timeline};

pub use log::{SlidingLog, SlidingLogBuilder};
pub use window::{SlidingWindow, SlidingWindowBuilder};

use crate::quota::nanos;
use crate::stats::Stats;
use crate::time::ns;
use crate::{RateLimitError, wait};

/// What a sliding limiter remembers of its window, and how much fits in it.
///
/// Every method but [`advance`](Self::advance) is called on a history
/// already advanced to `now`. Times are nanoseconds on the limiter's
/// timeline; `limit` is in units, `window` in nanoseconds.
trait History: Default {
    /// Forgets what no longer counts at `now`.
    fn advance(&mut self, now: u64, window: u64);

    /// Units that fit at `now`.
    fn room(&self, now: u64, limit: u64, window: u64) -> u64;

    /// Nanoseconds from `now` until `n` more units fit (0 when they fit now).
    fn wait_for(&self, now: u64, n: u64, limit: u64, window: u64) -> u64;

    /// Counts `n` units admitted at `now`.
    fn record(&mut self, now: u64, n: u64);

    /// Nanoseconds from `now` until nothing admitted so far counts.
    fn reset_after(&self, now: u64, window: u64) -> u64;
}

/// A sliding limiter: `limit` units per `window` over the history `H`.
struct Sliding<H, C> {
    state: Mutex<H>,
    limit: u32,
    window: u64,
    time: Timeline<C>,
    stats: Stats,
}

impl<H: History, C: Clock> Sliding<H, C> {
    /// Validates `limit` and `window`.
    fn new(limit: u32, window: Duration, clock: C) -> Result<Self, ConfigError> {
        config::at_least("limit", limit, 1)?;
        let window = nanos("window", window)?;
        Ok(Self {
            state: Mutex::new(H::default()),
            limit,
            window,
            time: Timeline::new(clock),
            stats: Stats::new(),
        })
    }

    fn try_acquire(&self, n: u32) -> Result<(), RateLimitError> {
        self.stats.record(self.take(n))
    }

    /// [`try_acquire`](Self::try_acquire) without counting.
    fn take(&self, n: u32) -> Result<(), RateLimitError> {
        self.check(n)?;
        if n == 0 {
            return Ok(());
        }
        let (limit, window) = (self.limit.into(), self.window);
        self.at_now(|history, now| {
            let wait = history.wait_for(now, n.into(), limit, window);
            if wait > 0 {
                return Err(RateLimitError::Limited { retry_after: ns(wait) });
            }
            history.record(now, n.into());
            Ok(())
        })
    }

    async fn acquire(&self, n: u32) -> Result<(), RateLimitError> {
        wait::until_ready(Some(&self.stats), || self.take(n)).await
    }

    fn try_acquire_batch(&self, max: u32) -> Result<u32, RateLimitError> {
        self.stats.record(self.take_up_to(max))
    }

    fn take_up_to(&self, max: u32) -> Result<u32, RateLimitError> {
        if max == 0 {
            return Ok(0);
        }
        let (limit, window) = (self.limit.into(), self.window);
        self.at_now(|history, now| {
            let granted = history.room(now, limit, window).min(u64::from(max));
            if granted == 0 {
                let wait = history.wait_for(now, 1, limit, window);
                return Err(RateLimitError::Limited { retry_after: ns(wait) });
            }
            history.record(now, granted);
            Ok(granted as u32)
        })
    }

    fn remaining(&self) -> u32 {
        self.at_now(|history, now| history.room(now, self.limit.into(), self.window) as u32)
    }

    fn retry_after(&self, n: u32) -> Result<Duration, RateLimitError> {
        self.check(n)?;
        Ok(self.at_now(|history, now| {
            ns(history.wait_for(now, n.into(), self.limit.into(), self.window))
        }))
    }

    fn reset_after(&self) -> Duration {
        self.at_now(|history, now| ns(history.reset_after(now, self.window)))
    }

    fn reset(&self) {
        *lock(&self.state) = H::default();
    }

    /// Runs `f` on the history, locked and advanced to the time now.
    #[inline]
    fn at_now<T>(&self, f: impl FnOnce(&mut H, u64) -> T) -> T {
        let now = self.time.now();
        let mut history = lock(&self.state);
        history.advance(now, self.window);
        f(&mut history, now)
    }

    /// Refuses `n` larger than the limit: it could never be admitted.
    fn check(&self, n: u32) -> Result<(), RateLimitError> {
        if n > self.limit {
            return Err(RateLimitError::ExceedsCapacity { requested: n, capacity: self.limit });
        }
        Ok(())
    }

    /// The `Debug` output of the limiter named `name`.
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        H: fmt::Debug,
    {
        f.debug_struct(name)
            .field("limit", &self.limit)
            .field("window", &ns(self.window))
            .field("state", &*lock(&self.state))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks; a poisoned one is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `value` as a `u64`, saturating (a wait past a window near `u64::MAX` ns).
fn saturate(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
