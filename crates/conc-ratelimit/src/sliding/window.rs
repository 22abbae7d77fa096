//! [`SlidingWindow`]: the sliding window counter, over two fixed windows' counts.

use conc_core::time::CoarseClock;

use super::api::sliding_limiter;
use super::{History, Sliding, saturate};

/// The sliding window counter: at most about `limit` requests in any window.
///
/// Time is cut into fixed windows; the limiter counts requests in the current
/// and the previous window and estimates the count over the last `window` as
///
/// ```text
/// previous × (1 − elapsed / window) + current
/// ```
///
/// where `elapsed` is the time since the current window started. A request
/// for `n` is admitted when the estimate plus `n` is at most `limit`; the
/// comparison is done in exact integer arithmetic. This removes the fixed
/// window's 2× burst across a window edge at the cost of assuming the
/// previous window's requests were evenly spread: Cloudflare measured 0.003 %
/// of decisions wrong on real traffic. Use a [`SlidingLog`](crate::SlidingLog)
/// where the bound must be exact.
///
/// The state is three integers behind a mutex held for a few arithmetic
/// operations.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::time::ManualClock;
/// use conc_ratelimit::SlidingWindow;
///
/// let clock = ManualClock::new();
/// let limiter =
///     SlidingWindow::builder(10, Duration::from_secs(60)).clock(clock.clone()).build()?;
/// limiter.try_acquire(10)?;
///
/// // Half-way into the next window, half of the previous window still counts.
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(limiter.remaining(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlidingWindow<C = CoarseClock> {
    inner: Sliding<Counters, C>,
}

/// The counts of the current fixed window (number `index`) and the one before.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    index: u64,
    previous: u64,
    current: u64,
}

sliding_limiter!(SlidingWindow, SlidingWindowBuilder, "about `limit` units per `window`");

impl History for Counters {
    /// Moves the counters to the fixed window holding `now`.
    fn advance(&mut self, now: u64, window: u64) {
        let index = now / window;
        if index == self.index {
            return;
        }
        self.previous = if index == self.index + 1 { self.current } else { 0 };
        self.current = 0;
        self.index = index;
    }

    /// `(limit × window − previous × (window − elapsed) − current × window) / window`.
    fn room(&self, now: u64, limit: u64, window: u64) -> u64 {
        let wide = i128::from(window);
        let elapsed = i128::from(now - self.index * window);
        let slack = i128::from(limit) * wide
            - i128::from(self.previous) * (wide - elapsed)
            - i128::from(self.current) * wide;
        (slack.max(0) / wide) as u64
    }

    fn wait_for(&self, now: u64, n: u64, limit: u64, window: u64) -> u64 {
        let elapsed = u128::from(now - self.index * window);
        let (window, limit) = (u128::from(window), u128::from(limit));
        let (n, previous, current) =
            (u128::from(n), u128::from(self.previous), u128::from(self.current));
        if previous * (window - elapsed) + (current + n) * window <= limit * window {
            return 0;
        }
        if current + n <= limit {
            // Fits in this window once enough of the previous one has slid out:
            // previous × (window − e) ≤ (limit − current − n) × window.
            let keep = (limit - current - n) * window / previous;
            return saturate(window - keep - elapsed);
        }
        // Only in the next window, where this window's count becomes `previous`.
        let keep = (limit - n) * window / current;
        saturate(window - elapsed + window - keep)
    }

    fn record(&mut self, _now: u64, n: u64) {
        self.current += n;
    }

    fn reset_after(&self, now: u64, window: u64) -> u64 {
        let start = self.index * window;
        let end = if self.current > 0 {
            start.saturating_add(window.saturating_mul(2))
        } else if self.previous > 0 {
            start.saturating_add(window)
        } else {
            now
        };
        end - now
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    /// The window's state is the 24 bytes the docs give.
    #[test]
    fn the_state_is_24_bytes() {
        assert_eq!(size_of::<super::Counters>(), 24);
    }
}
